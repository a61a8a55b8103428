//! Attested nodes and bans.

use plinth_core::UnixTime;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Error, Result, Store, conflict_as, db_time, placeholders, read_time};

/// The last attestation of a node (written with its audit record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's SPIFFE ID.
    pub spiffe_id: String,
    /// `tpm`, `nitro` or `snp`.
    pub platform: String,
    /// The hardware identity, when known.
    pub hardware_id: Option<String>,
    /// The policy last applied.
    pub policy_name: String,
    /// Lower-case hex SHA-256 of that policy's text.
    pub policy_hash: String,
    /// When it first attested.
    pub first_attested_at: UnixTime,
    /// When it last attested.
    pub last_attested_at: UnixTime,
    /// The verdict of the last attestation.
    pub last_verdict: String,
    /// The audit record of the last attestation.
    pub last_attestation_seq: i64,
}

/// What a ban matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BanKind {
    /// A SPIFFE ID.
    SpiffeId,
    /// A hardware identity (EK hash, chip ID, …).
    HardwareId,
}

impl BanKind {
    /// The stored name: `spiffe_id` or `hardware_id`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SpiffeId => "spiffe_id",
            Self::HardwareId => "hardware_id",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text {
            "spiffe_id" => Ok(Self::SpiffeId),
            "hardware_id" => Ok(Self::HardwareId),
            other => Err(Error::Corrupt {
                what: "ban kind",
                detail: other.to_owned(),
            }),
        }
    }
}

/// A ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// What it matches.
    pub kind: BanKind,
    /// The banned SPIFFE ID or hardware ID.
    pub value: String,
    /// Why.
    pub reason: String,
    /// When.
    pub created_at: UnixTime,
}

const NODE_COLUMNS: &str = "spiffe_id, platform, hardware_id, policy_name, policy_hash, \
    first_attested_at, last_attested_at, last_verdict, last_attestation_seq";

impl Store {
    /// Every attested node, by SPIFFE ID.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn list_nodes(&self) -> Result<Vec<Node>> {
        let rows = sqlx::query(&format!(
            "SELECT {NODE_COLUMNS} FROM nodes ORDER BY spiffe_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(node_from_row).collect()
    }

    /// One node.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn get_node(&self, spiffe_id: &str) -> Result<Node> {
        let row = sqlx::query(&format!(
            "SELECT {NODE_COLUMNS} FROM nodes WHERE spiffe_id = $1"
        ))
        .bind(spiffe_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "node",
            key: spiffe_id.to_owned(),
        })?;
        node_from_row(&row)
    }

    /// Forgets a node (its SVIDs and audit records stay).
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn evict_node(&self, spiffe_id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM nodes WHERE spiffe_id = $1")
            .bind(spiffe_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound {
                what: "node",
                key: spiffe_id.to_owned(),
            });
        }
        Ok(())
    }

    /// Bans a SPIFFE ID or hardware ID.
    ///
    /// # Errors
    /// [`Error::Conflict`] if it is banned already.
    pub async fn ban(&self, kind: BanKind, value: &str, reason: &str, now: UnixTime) -> Result<()> {
        let _ = sqlx::query(
            "INSERT INTO bans (kind, value, reason, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(kind.as_str())
        .bind(value)
        .bind(reason)
        .bind(db_time(now)?)
        .execute(&self.pool)
        .await
        .map_err(conflict_as("ban"))?;
        Ok(())
    }

    /// Lifts a ban.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn unban(&self, kind: BanKind, value: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM bans WHERE kind = $1 AND value = $2")
            .bind(kind.as_str())
            .bind(value)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound {
                what: "ban",
                key: format!("{}={value}", kind.as_str()),
            });
        }
        Ok(())
    }

    /// Every ban, oldest first.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn list_bans(&self) -> Result<Vec<Ban>> {
        let rows = sqlx::query(
            "SELECT kind, value, reason, created_at FROM bans ORDER BY created_at, kind, value",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ban_from_row).collect()
    }

    /// The ban matching this SPIFFE ID or hardware ID, if any (a SPIFFE ID ban first).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn find_ban(
        &self,
        spiffe_id: Option<&str>,
        hardware_id: Option<&str>,
    ) -> Result<Option<Ban>> {
        let spiffe_ids: Vec<&str> = spiffe_id.into_iter().collect();
        let hardware_ids: Vec<&str> = hardware_id.into_iter().collect();
        if spiffe_ids.is_empty() && hardware_ids.is_empty() {
            return Ok(None);
        }
        let anonymous = self.backend == crate::Backend::Sqlite;
        let bans = bans_on(&self.pool, anonymous, &spiffe_ids, &hardware_ids).await?;
        Ok(ban_of(&bans, spiffe_id, hardware_id).cloned())
    }
}

/// Every ban on one of `spiffe_ids` or `hardware_ids`, in one query, on any executor
/// (pool or transaction); `anonymous` for SQLite's `?` parameters.
pub(crate) async fn bans_on<'e, E>(
    executor: E,
    anonymous: bool,
    spiffe_ids: &[&str],
    hardware_ids: &[&str],
) -> Result<Vec<Ban>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    // `IN ()` is not SQL; NULL matches nothing.
    let list = |first: usize, count: usize| {
        if count == 0 {
            "NULL".to_owned()
        } else {
            placeholders(anonymous, first, count)
        }
    };
    let sql = format!(
        "SELECT kind, value, reason, created_at FROM bans \
         WHERE (kind = '{}' AND value IN ({})) OR (kind = '{}' AND value IN ({}))",
        BanKind::SpiffeId.as_str(),
        list(1, spiffe_ids.len()),
        BanKind::HardwareId.as_str(),
        list(spiffe_ids.len().saturating_add(1), hardware_ids.len()),
    );
    let mut query = sqlx::query(&sql);
    for value in spiffe_ids.iter().chain(hardware_ids) {
        query = query.bind(*value);
    }
    query
        .fetch_all(executor)
        .await?
        .iter()
        .map(ban_from_row)
        .collect()
}

/// The ban among `bans` that applies to a node with this SPIFFE ID and hardware ID: one
/// on its SPIFFE ID first, then one on its hardware.
pub(crate) fn ban_of<'b>(
    bans: &'b [Ban],
    spiffe_id: Option<&str>,
    hardware_id: Option<&str>,
) -> Option<&'b Ban> {
    let on = |kind: BanKind, value: Option<&str>| {
        bans.iter()
            .find(|b| b.kind == kind && Some(b.value.as_str()) == value)
    };
    on(BanKind::SpiffeId, spiffe_id).or_else(|| on(BanKind::HardwareId, hardware_id))
}

fn node_from_row(row: &AnyRow) -> Result<Node> {
    Ok(Node {
        spiffe_id: row.try_get("spiffe_id")?,
        platform: row.try_get("platform")?,
        hardware_id: row.try_get("hardware_id")?,
        policy_name: row.try_get("policy_name")?,
        policy_hash: row.try_get("policy_hash")?,
        first_attested_at: read_time(row, "first_attested_at")?,
        last_attested_at: read_time(row, "last_attested_at")?,
        last_verdict: row.try_get("last_verdict")?,
        last_attestation_seq: row.try_get("last_attestation_seq")?,
    })
}

fn ban_from_row(row: &AnyRow) -> Result<Ban> {
    let kind: String = row.try_get("kind")?;
    Ok(Ban {
        kind: BanKind::parse(&kind)?,
        value: row.try_get("value")?,
        reason: row.try_get("reason")?,
        created_at: read_time(row, "created_at")?,
    })
}
