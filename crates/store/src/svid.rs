//! Issued X.509-SVIDs.

use plinth_core::UnixTime;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Error, Result, Store, db_time, read_time};

/// An X.509-SVID the server issued: a node SVID, written by [`Store::append`] in the
/// transaction of the audit record that justified it (`audit_seq`); or a workload SVID,
/// written by [`Store::record_workload_svid`] naming its node's last attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedSvid {
    /// The certificate serial number, lower-case hex.
    pub serial_hex: String,
    /// The SPIFFE ID it names.
    pub spiffe_id: String,
    /// base64url (no padding) SHA-256 of the key's SubjectPublicKeyInfo.
    pub key_thumbprint: String,
    /// When it expires.
    pub not_after: UnixTime,
    /// When it was issued (the audit record's time).
    pub issued_at: UnixTime,
    /// The audit record that justified it.
    pub audit_seq: i64,
}

const COLUMNS: &str = "serial_hex, spiffe_id, key_thumbprint, not_after, issued_at, audit_seq";

impl Store {
    /// Records a workload X.509-SVID issued under a node whose current identity rests on
    /// the attestation recorded at `node_attestation_seq` (the node's last attestation):
    /// the audit trail of a workload SVID is its node's appraisal.
    ///
    /// # Errors
    /// [`Error::Conflict`] for a serial issued before; [`Error::Database`] (also when
    /// `node_attestation_seq` names no record).
    pub async fn record_workload_svid(
        &self,
        svid: &crate::NewIssuedSvid,
        issued_at: UnixTime,
        node_attestation_seq: i64,
    ) -> Result<IssuedSvid> {
        let _ = sqlx::query(&format!(
            "INSERT INTO issued_svids ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(&svid.serial_hex)
        .bind(&svid.spiffe_id)
        .bind(&svid.key_thumbprint)
        .bind(db_time(svid.not_after)?)
        .bind(db_time(issued_at)?)
        .bind(node_attestation_seq)
        .execute(&self.pool)
        .await
        .map_err(crate::error::conflict_as("issued SVID"))?;
        Ok(IssuedSvid {
            serial_hex: svid.serial_hex.clone(),
            spiffe_id: svid.spiffe_id.clone(),
            key_thumbprint: svid.key_thumbprint.clone(),
            not_after: svid.not_after,
            issued_at,
            audit_seq: node_attestation_seq,
        })
    }

    /// One issued SVID by serial.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn get_svid(&self, serial_hex: &str) -> Result<IssuedSvid> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM issued_svids WHERE serial_hex = $1"
        ))
        .bind(serial_hex)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "SVID",
            key: serial_hex.to_owned(),
        })?;
        svid_from_row(&row)
    }

    /// How many issued SVIDs have not expired at `now`.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn count_outstanding(&self, now: UnixTime) -> Result<u64> {
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM issued_svids WHERE not_after > $1")
            .bind(db_time(now)?)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Every SVID issued for `spiffe_id`, oldest first.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn list_svids_for(&self, spiffe_id: &str) -> Result<Vec<IssuedSvid>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM issued_svids WHERE spiffe_id = $1 ORDER BY audit_seq"
        ))
        .bind(spiffe_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(svid_from_row).collect()
    }
}

fn svid_from_row(row: &AnyRow) -> Result<IssuedSvid> {
    Ok(IssuedSvid {
        serial_hex: row.try_get("serial_hex")?,
        spiffe_id: row.try_get("spiffe_id")?,
        key_thumbprint: row.try_get("key_thumbprint")?,
        not_after: read_time(row, "not_after")?,
        issued_at: read_time(row, "issued_at")?,
        audit_seq: row.try_get("audit_seq")?,
    })
}
