//! The CA journal: the public parts of every CA authority.

use plinth_core::UnixTime;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::serde_fmt::{base64, millis};
use crate::{Error, Result, Store, check_len, db_time, read_time};

/// The largest certificate or public key stored.
const MAX_DER_LEN: usize = 64 << 10;

/// One CA authority's public parts (never a private key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaJournalEntry {
    /// The authority's ID.
    pub authority_id: u32,
    /// Its rotation state (`prepared`, `active`, `old`, …).
    pub state: String,
    /// Its X.509 CA certificate, DER.
    #[serde(with = "base64")]
    pub x509_certificate_der: Vec<u8>,
    /// Its JWT signing key's ID.
    pub jwt_key_id: String,
    /// Its JWT public key, SubjectPublicKeyInfo DER.
    #[serde(with = "base64")]
    pub jwt_public_spki_der: Vec<u8>,
    /// Certificate validity start.
    #[serde(with = "millis")]
    pub not_before: UnixTime,
    /// Certificate validity end.
    #[serde(with = "millis")]
    pub not_after: UnixTime,
    /// When this entry was (last) recorded.
    #[serde(with = "millis")]
    pub recorded_at: UnixTime,
}

impl Store {
    /// Records (or updates, on a state change) an authority.
    ///
    /// # Errors
    /// [`Error::TooLarge`] for a certificate or key over 64 KiB; [`Error::Database`].
    pub async fn record_authority(&self, entry: &CaJournalEntry) -> Result<()> {
        check_len(
            "CA certificate",
            entry.x509_certificate_der.len(),
            MAX_DER_LEN,
        )?;
        check_len(
            "JWT public key",
            entry.jwt_public_spki_der.len(),
            MAX_DER_LEN,
        )?;
        let _ = sqlx::query(
            "INSERT INTO ca_journal (authority_id, state, x509_certificate_der, jwt_key_id, \
             jwt_public_spki_der, not_before, not_after, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (authority_id) DO UPDATE SET state = excluded.state, \
             x509_certificate_der = excluded.x509_certificate_der, \
             jwt_key_id = excluded.jwt_key_id, \
             jwt_public_spki_der = excluded.jwt_public_spki_der, \
             not_before = excluded.not_before, not_after = excluded.not_after, \
             recorded_at = excluded.recorded_at",
        )
        .bind(i64::from(entry.authority_id))
        .bind(&entry.state)
        .bind(&entry.x509_certificate_der)
        .bind(&entry.jwt_key_id)
        .bind(&entry.jwt_public_spki_der)
        .bind(db_time(entry.not_before)?)
        .bind(db_time(entry.not_after)?)
        .bind(db_time(entry.recorded_at)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every authority recorded, by ID.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn list_authorities(&self) -> Result<Vec<CaJournalEntry>> {
        let rows = sqlx::query(
            "SELECT authority_id, state, x509_certificate_der, jwt_key_id, \
             jwt_public_spki_der, not_before, not_after, recorded_at \
             FROM ca_journal ORDER BY authority_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(authority_from_row).collect()
    }
}

fn authority_from_row(row: &AnyRow) -> Result<CaJournalEntry> {
    let id: i64 = row.try_get("authority_id")?;
    Ok(CaJournalEntry {
        authority_id: u32::try_from(id).map_err(|_| Error::Corrupt {
            what: "authority_id",
            detail: id.to_string(),
        })?,
        state: row.try_get("state")?,
        x509_certificate_der: row.try_get("x509_certificate_der")?,
        jwt_key_id: row.try_get("jwt_key_id")?,
        jwt_public_spki_der: row.try_get("jwt_public_spki_der")?,
        not_before: read_time(row, "not_before")?,
        not_after: read_time(row, "not_after")?,
        recorded_at: read_time(row, "recorded_at")?,
    })
}
