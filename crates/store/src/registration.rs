//! Registrations: which SPIFFE ID a node or workload gets.
//!
//! Every registration write bumps the registration epoch in its own transaction. A store
//! handle keeps the node registrations in memory, labelled with the epoch read before
//! them ([`Store::node_registrations`]); an SVID minted from that copy names the epoch in
//! its [`crate::Append`], and the append transaction refuses it
//! ([`Error::RegistrationsChanged`]) unless the epoch is still current. So the server reads
//! no registrations per attestation, and a registration written on any replica is never
//! missed by an SVID that commits after it.

use std::sync::{Arc, Mutex};

use plinth_core::{HashAlg, UnixTime};
use plinth_crypto::{Hasher, SecureRandom as _, SystemRandom};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::append::begin_write;
use crate::{Error, Result, Store, conflict_as, db_time, read_time};

/// The most selectors one registration may have.
pub const MAX_SELECTORS: usize = 64;
/// The longest selector, SPIFFE ID or parent ID accepted.
const MAX_ID_LEN: usize = 2048;

/// A registration to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRegistration {
    /// The SPIFFE ID granted.
    pub spiffe_id: String,
    /// `None`: a node registration; `Some(node SPIFFE ID)`: a workload under that node.
    pub parent_id: Option<String>,
    /// Selectors that must all match (order and duplicates do not matter).
    pub selectors: Vec<String>,
    /// SVID lifetime override.
    pub ttl_seconds: Option<u64>,
    /// Whether the identity may use the admin API.
    pub admin: bool,
}

/// A stored registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Random ID (32 hex digits), assigned by the store.
    pub id: String,
    /// The SPIFFE ID granted.
    pub spiffe_id: String,
    /// `None`: a node registration; `Some(node SPIFFE ID)`: a workload under that node.
    pub parent_id: Option<String>,
    /// Selectors, sorted and without duplicates.
    pub selectors: Vec<String>,
    /// SVID lifetime override.
    pub ttl_seconds: Option<u64>,
    /// Whether the identity may use the admin API.
    pub admin: bool,
    /// When it was created.
    pub created_at: UnixTime,
}

/// The node registrations as of one registration epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRegistrations {
    /// The epoch read before the registrations: they are at least this recent.
    pub epoch: i64,
    /// The node registrations (parent `None`), oldest first.
    pub registrations: Vec<Registration>,
}

/// The node registrations a store handle last read ([`Store::node_registrations`]).
#[derive(Debug, Default)]
pub(crate) struct RegistrationCache(Mutex<Option<Arc<NodeRegistrations>>>);

impl RegistrationCache {
    /// A poisoned lock only means another thread panicked while swapping an `Arc`: the
    /// value is whole.
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<NodeRegistrations>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self) -> Option<Arc<NodeRegistrations>> {
        self.slot().clone()
    }

    /// Keeps `read` unless what is cached is newer.
    fn keep(&self, read: &Arc<NodeRegistrations>) {
        let mut slot = self.slot();
        if slot
            .as_ref()
            .is_none_or(|cached| cached.epoch <= read.epoch)
        {
            *slot = Some(Arc::clone(read));
        }
    }

    /// Drops the copy: this handle wrote a registration.
    fn forget(&self) {
        *self.slot() = None;
    }

    /// Drops the copy if it is older than `epoch` (the current epoch, seen by a write).
    pub(crate) fn forget_before(&self, epoch: i64) {
        let mut slot = self.slot();
        if slot.as_ref().is_some_and(|cached| cached.epoch < epoch) {
            *slot = None;
        }
    }
}

/// Reads the registration epoch. Inside an append on PostgreSQL it is read `FOR SHARE`:
/// a registration write waits for the append to commit, and an append waits for a
/// registration write in progress and then reads the epoch it committed.
pub(crate) async fn read_epoch<'e, E>(executor: E, for_share: bool) -> Result<i64>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = if for_share {
        "SELECT epoch FROM registration_epoch WHERE id = 1 FOR SHARE"
    } else {
        "SELECT epoch FROM registration_epoch WHERE id = 1"
    };
    let row = sqlx::query(sql).fetch_one(executor).await?;
    Ok(row.try_get("epoch")?)
}

/// Bumps the registration epoch, first thing in a transaction that writes registrations.
async fn bump_epoch(tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<()> {
    let _ = sqlx::query("UPDATE registration_epoch SET epoch = epoch + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const COLUMNS: &str = "id, spiffe_id, parent_id, selectors_json, ttl_seconds, admin, created_at";

impl Store {
    /// Creates a registration with a fresh random ID. Selectors are sorted and
    /// de-duplicated first.
    ///
    /// # Errors
    /// [`Error::Conflict`] when one with the same SPIFFE ID, parent and selectors exists;
    /// [`Error::TooLarge`] past [`MAX_SELECTORS`] or for over-long strings.
    pub async fn create_registration(
        &self,
        new: &NewRegistration,
        now: UnixTime,
    ) -> Result<Registration> {
        let mut selectors = new.selectors.clone();
        selectors.sort();
        selectors.dedup();
        crate::check_len("selectors", selectors.len(), MAX_SELECTORS)?;
        for text in selectors
            .iter()
            .chain(std::iter::once(&new.spiffe_id))
            .chain(new.parent_id.iter())
        {
            crate::check_len("registration field", text.len(), MAX_ID_LEN)?;
        }
        let mut id = [0_u8; 16];
        SystemRandom.fill(&mut id)?;
        let registration = Registration {
            id: hex::encode(id),
            spiffe_id: new.spiffe_id.clone(),
            parent_id: new.parent_id.clone(),
            selectors,
            ttl_seconds: new.ttl_seconds,
            admin: new.admin,
            created_at: now,
        };
        let ttl = registration
            .ttl_seconds
            .map(i64::try_from)
            .transpose()
            .map_err(|_| Error::TimeOutOfRange)?;
        let selectors_json =
            serde_json::to_string(&registration.selectors).map_err(|e| Error::Corrupt {
                what: "selectors",
                detail: e.to_string(),
            })?;
        let mut tx = begin_write(&self.pool, self.backend).await?;
        bump_epoch(&mut tx).await?;
        let _ = sqlx::query(
            "INSERT INTO registrations \
             (id, spiffe_id, parent_id, selectors_json, ttl_seconds, admin, created_at, \
              identity_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&registration.id)
        .bind(&registration.spiffe_id)
        .bind(registration.parent_id.as_deref().unwrap_or(""))
        .bind(selectors_json)
        .bind(ttl)
        .bind(i64::from(registration.admin))
        .bind(db_time(now)?)
        .bind(identity_key(&registration))
        .execute(&mut *tx)
        .await
        .map_err(conflict_as("registration"))?;
        tx.commit().await?;
        self.registrations.forget();
        Ok(registration)
    }

    /// Every registration, oldest first.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    pub async fn list_registrations(&self) -> Result<Vec<Registration>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM registrations ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(registration_from_row).collect()
    }

    /// The node registrations, from memory when this handle has read them since the last
    /// registration write it saw. A copy may be stale (another replica wrote since): an
    /// SVID minted from it is refused when appended ([`Error::RegistrationsChanged`]), and
    /// the copy is dropped, so the next call reads the current ones.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    pub async fn node_registrations(&self) -> Result<Arc<NodeRegistrations>> {
        if let Some(cached) = self.registrations.get() {
            return Ok(cached);
        }
        // The epoch first: the list read after it is at least that recent, so a copy is
        // never labelled newer than it is.
        let epoch = read_epoch(&self.pool, false).await?;
        let read = Arc::new(NodeRegistrations {
            epoch,
            registrations: self.registrations_under(None).await?,
        });
        self.registrations.keep(&read);
        Ok(read)
    }

    /// The registrations under `parent_id` (`None`: node registrations), oldest first.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    pub async fn registrations_under(&self, parent_id: Option<&str>) -> Result<Vec<Registration>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM registrations WHERE parent_id = $1 ORDER BY created_at, id"
        ))
        .bind(parent_id.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(registration_from_row).collect()
    }

    /// One registration.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn get_registration(&self, id: &str) -> Result<Registration> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM registrations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "registration",
            key: id.to_owned(),
        })?;
        registration_from_row(&row)
    }

    /// Deletes a registration.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn delete_registration(&self, id: &str) -> Result<()> {
        let mut tx = begin_write(&self.pool, self.backend).await?;
        bump_epoch(&mut tx).await?;
        let done = sqlx::query("DELETE FROM registrations WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound {
                what: "registration",
                key: id.to_owned(),
            });
        }
        tx.commit().await?;
        self.registrations.forget();
        Ok(())
    }
}

/// SHA-256 over the length-prefixed SPIFFE ID, parent (tagged) and sorted selectors: the
/// uniqueness key.
fn identity_key(registration: &Registration) -> String {
    let mut h = Hasher::new(HashAlg::Sha256);
    let mut put = |s: &str| {
        h.update(&u64::try_from(s.len()).unwrap_or(u64::MAX).to_be_bytes());
        h.update(s.as_bytes());
    };
    put(&registration.spiffe_id);
    match &registration.parent_id {
        None => put(""),
        Some(parent) => {
            put("\u{1}");
            put(parent);
        }
    }
    for selector in &registration.selectors {
        put(selector);
    }
    h.finish().to_hex()
}

fn registration_from_row(row: &AnyRow) -> Result<Registration> {
    let parent: String = row.try_get("parent_id")?;
    let selectors_json: String = row.try_get("selectors_json")?;
    let ttl: Option<i64> = row.try_get("ttl_seconds")?;
    let admin: i64 = row.try_get("admin")?;
    Ok(Registration {
        id: row.try_get("id")?,
        spiffe_id: row.try_get("spiffe_id")?,
        parent_id: (!parent.is_empty()).then_some(parent),
        selectors: serde_json::from_str(&selectors_json).map_err(|e| Error::Corrupt {
            what: "selectors_json",
            detail: e.to_string(),
        })?,
        ttl_seconds: ttl
            .map(u64::try_from)
            .transpose()
            .map_err(|_| Error::Corrupt {
                what: "ttl_seconds",
                detail: "negative".into(),
            })?,
        admin: admin != 0,
        created_at: read_time(row, "created_at")?,
    })
}
