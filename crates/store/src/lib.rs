//! plinth's datastore: SQLite (embedded default) and PostgreSQL (HA), one schema; the
//! tamper-evident audit log.
//!
//! # One schema, two databases
//!
//! A single server keeps everything in `<data dir>/plinth.db` (SQLite, bundled into the
//! binary, WAL mode): nothing to install. Several server replicas share one PostgreSQL
//! database instead. Both run the same SQL: the migrations in `migrations/`, whose only
//! backend-specific word is the byte-string type (BLOB or BYTEA), and one text per query
//! through sqlx's `Any` driver (`$1` placeholders work on both; the group commit binds
//! `?` on SQLite, and reads the registration epoch `FOR SHARE` on PostgreSQL). Queries are
//! checked by the tests against both databases rather than at compile time, so building
//! needs no database. Times are BIGINT Unix milliseconds, booleans BIGINT 0/1.
//!
//! ```text
//!  challenges        nonce → platform, Hello, activation commitment, expiry, consumed_at
//!  registrations     SPIFFE ID ← (parent, selectors), unique per identity
//!  registration_epoch one row: bumped by every registration write (see `registration`)
//!  nodes             last attestation of each node (written with its audit record)
//!  issued_svids      serial → SPIFFE ID, key thumbprint, expiry, audit_seq
//!  bans              (spiffe_id | hardware_id, value)
//!  ca_journal        public parts of each CA authority
//!  audit_log         seq 1, 2, 3 … hash-chained appraisal records
//!  audit_head        one row: the chain head (the append lock)
//!  audit_checkpoints signed chain heads
//!  evidence, policies  content-addressed blobs the audit records point at
//! ```
//!
//! # A nonce is consumed exactly once, on every replica
//!
//! Consuming is one conditional statement:
//! `UPDATE challenges SET consumed_at = now WHERE nonce = $1 AND consumed_at IS NULL AND
//! expires_at > now`. The database serializes concurrent updates of one row (PostgreSQL
//! re-checks the `WHERE` after waiting for the row lock; SQLite has a single writer), so
//! whichever replica gets there first consumes the nonce and every other attempt,
//! concurrent or later, matches no row. Only then is the row read again to say why:
//! [`Error::NonceUnknown`], [`Error::NonceConsumed`] or [`Error::NonceExpired`]. A
//! read-then-write would let two replicas both see "unconsumed".
//!
//! The server reads the challenge first ([`Store::pending_challenge`]: it holds what
//! verification needs; the handle that issued it answers from memory) and consumes it in
//! the transaction that writes the attestation's audit record
//! ([`Append::consume_nonce`]): if that update loses, nothing of the attestation is
//! written and no SVID goes out. [`Store::consume_challenge`] consumes on its own.
//!
//! # One attestation, one transaction (shared)
//!
//! [`Store::append`] writes the audit record, its evidence and policy text, the issued
//! SVID row and the node row, and consumes the nonce, in one transaction (which first
//! refuses an SVID for a banned node, [`Error::Banned`], or one minted from registrations
//! that changed since, [`Error::RegistrationsChanged`]), which commits before the
//! server returns the SVID. A crash (even `kill -9`) at any point leaves
//! either all of it or none: never an SVID without the audit record that justified it,
//! never a gap in the chain. Attestations arriving together share that transaction
//! (group commit, one fsync): see the `append` module.

//! # The hash chain
//!
//! Each [`audit::AuditRecord`] commits to its predecessor:
//!
//! ```text
//!  body_hash   = SHA-256("plinth-audit-body-v1\0" ‖ seq ‖ recorded_at ‖ platform ‖ …)
//!  record_hash = SHA-256("plinth-audit-v1\0" ‖ prev_hash ‖ body_hash)
//!  prev_hash(1) = 32 zero bytes, prev_hash(n) = record_hash(n − 1)
//! ```
//!
//! The body is a fixed-order, length-prefixed encoding of the stored strings exactly as
//! stored (integers big-endian, optional fields tagged): nothing is re-serialized from
//! parsed data, so verification needs no JSON canonicalization. Hashing the body
//! separately lets an export replace records the auditor may not see by their
//! `(seq, body_hash)` "stubs" while the chain is still recomputed end to end (see
//! [`audit::verify_export`]).
//!
//! Appends must not interleave: two replicas reading the same head would fork the chain.
//! The transaction therefore locks the head row (`UPDATE audit_head … RETURNING`: a row
//! lock on PostgreSQL; on SQLite the transaction is `BEGIN IMMEDIATE`, the database's
//! single write lock) after writing the blobs and before the records, computes the next
//! seqs and hashes from it, and moves it at the end.
//!
//! # Signed checkpoints
//!
//! The chain alone proves order and integrity relative to its head; whoever controls the
//! database could rewrite the whole tail. So the server's signing core periodically signs
//! the head ([`audit::Checkpoint`], over [`audit::checkpoint_message`]:
//! `"plinth-audit-checkpoint-v1\0" ‖ seq ‖ head_hash ‖ signed_at`), and
//! [`audit::verify`] checks every checkpoint against the recomputed chain and a set of
//! trusted signer keys. The store never signs: it only keeps what the server signed.

mod append;
pub mod audit;
mod authority;
mod blob;
mod challenge;
mod error;
mod log;
mod node;
mod registration;
mod schema;
mod serde_fmt;
mod svid;
mod wal;

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use plinth_core::UnixTime;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::pool::PoolConnectionMetadata;
use sqlx::{AnyConnection, AnyPool, Connection as _, Executor as _, Row as _};

pub use append::Append;
pub use authority::CaJournalEntry;
pub use blob::PolicyText;
pub use challenge::Challenge;
pub use error::Error;
use error::conflict_as;
pub use log::{ChainHead, MAX_EXPORT_RECORDS, MAX_EXPORT_SPAN};
pub use log::{NewAuditRecord, NewIssuedSvid, NodeUpsert};
pub use node::{Ban, BanKind, Node};
pub use registration::MAX_SELECTORS;
pub use registration::{NewRegistration, NodeRegistrations, Registration};
pub use svid::IssuedSvid;

/// The result type of every store operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The largest evidence blob stored (a Nitro document is ~5 KiB, an SNP report with its
/// certificate table ~10 KiB, a TPM quote with a full event log well under 1 MiB).
pub const MAX_EVIDENCE_LEN: usize = 1 << 20;
/// The largest text field of an audit record (claims, result), and of a policy text.
pub const MAX_TEXT_LEN: usize = 1 << 20;
/// The largest serialized Hello stored with a challenge.
pub const MAX_HELLO_LEN: usize = 256 << 10;
/// The most records one page of [`Store::audit_records`] returns.
pub const MAX_PAGE: u32 = 1000;

/// How long a SQLite connection waits for the write lock before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 30_000;
/// Connections per pool.
const MAX_CONNECTIONS: u32 = 8;
/// How long to wait for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);
/// A pooled PostgreSQL connection idle this long is pinged before it is used again.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server (possibly shared by several replicas).
    Postgres,
}

/// A handle on the datastore: a connection pool and the audit appender task. Cheap to
/// clone; clones share both.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    appender: append::Appender,
    remembered: Arc<challenge::Remembered>,
    registrations: Arc<registration::RegistrationCache>,
}

impl Store {
    /// Opens (creating if needed, for `sqlite://…?mode=rwc`) the database at `url` and
    /// applies the schema migrations. Accepts `sqlite://<path>[?mode=rwc]` and
    /// `postgres://…` (or `postgresql://…`). Starts the audit appender task on the
    /// current Tokio runtime.
    ///
    /// # Errors
    /// [`Error::UnsupportedUrl`], [`Error::Database`] when it cannot connect,
    /// [`Error::Migrate`] when the schema cannot be applied.
    pub async fn open(url: &str) -> Result<Self> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(Error::UnsupportedUrl(redact(url)));
        };
        sqlx::any::install_default_drivers();
        // sqlx pings every connection it hands out by default: a round trip (on SQLite,
        // a hand-off to the connection's worker thread and back) before each query, as
        // costly as the query itself. A SQLite connection is in-process and cannot go
        // stale; a PostgreSQL connection is pinged only after it sat idle (when a
        // restarted server or a middlebox may have dropped it).
        let mut options = AnyPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false);
        options = match backend {
            Backend::Sqlite => options.after_connect(sqlite_session),
            Backend::Postgres => options.before_acquire(ping_if_idle),
        };
        let pool = options.connect(url).await?;
        schema::migrate(&pool, backend).await?;
        let _ = sqlx::query(
            "INSERT INTO audit_head (id, head_seq, head_hash) VALUES (1, 0, $1) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(audit::GENESIS_HASH.to_vec())
        .execute(&pool)
        .await?;
        let remembered = Arc::new(challenge::Remembered::default());
        let registrations = Arc::new(registration::RegistrationCache::default());
        let appender = append::Appender::start(
            pool.clone(),
            backend,
            Arc::clone(&remembered),
            Arc::clone(&registrations),
        );
        if backend == Backend::Sqlite {
            wal::start_checkpointer(pool.clone(), appender.finished.clone());
        }
        Ok(Self {
            pool,
            backend,
            appender,
            remembered,
            registrations,
        })
    }

    /// Opens (creating it and the directory if needed) `<dir>/plinth.db`.
    ///
    /// # Errors
    /// [`Error::DataDir`] when the directory cannot be created or its path is not UTF-8;
    /// otherwise as [`Store::open`].
    pub async fn open_sqlite(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let file = dir.join("plinth.db");
        let path = file.to_str().ok_or_else(|| Error::DataDir {
            path: file.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path is not UTF-8"),
        })?;
        // sqlx percent-decodes the path and splits the options off at '?'.
        let escaped = path
            .replace('%', "%25")
            .replace('?', "%3F")
            .replace('#', "%23");
        Self::open(&format!("sqlite://{escaped}?mode=rwc")).await
    }

    /// Which database this is.
    pub const fn backend(&self) -> Backend {
        self.backend
    }

    /// Writes the audit records queued, then closes every connection (waiting for those
    /// in use to be returned). Appends after this fail.
    pub async fn close(&self) {
        self.appender.close().await;
        self.pool.close().await;
    }
}

/// Per-connection SQLite settings: WAL (readers never block the writer), a long busy
/// timeout (writers queue for the single write lock instead of failing), foreign keys, and
/// full fsync at commit (an acknowledged attestation survives power loss).
fn sqlite_session(
    conn: &mut AnyConnection,
    _meta: PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        let _ = conn.execute("PRAGMA journal_mode = WAL").await?;
        let _ = conn
            .execute(&*format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"))
            .await?;
        let _ = conn.execute("PRAGMA foreign_keys = ON").await?;
        let _ = conn.execute("PRAGMA synchronous = FULL").await?;
        // WAL checkpoints run in their own task (wal.rs), not inside a commit.
        let _ = conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
        Ok(())
    })
}

/// Before a PostgreSQL connection is handed out: pings it if it sat idle for
/// [`PING_IF_IDLE_FOR`] or longer (a broken one is then discarded and another taken).
#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature sqlx's before_acquire callback takes"
)]
fn ping_if_idle(
    conn: &mut AnyConnection,
    meta: PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        if meta.idle_for >= PING_IF_IDLE_FOR {
            conn.ping().await?;
        }
        Ok(true)
    })
}

/// Drops a URL's password (everything between "://" and the last '@') before it goes
/// into an error message.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            let scheme = url.get(..start).unwrap_or_default();
            let rest = url.get(at..).unwrap_or_default();
            format!("{scheme}://…{rest}")
        }
        _ => url.to_owned(),
    }
}

/// A time as the database stores it.
fn db_time(time: UnixTime) -> Result<i64> {
    i64::try_from(time.as_millis()).map_err(|_| Error::TimeOutOfRange)
}

/// A time read back from the database.
fn read_time(row: &AnyRow, column: &'static str) -> Result<UnixTime> {
    let millis: i64 = row.try_get(column)?;
    u64::try_from(millis)
        .map(UnixTime::from_millis)
        .map_err(|_| Error::Corrupt {
            what: column,
            detail: format!("negative time {millis}"),
        })
}

/// An optional time read back from the database.
fn read_opt_time(row: &AnyRow, column: &'static str) -> Result<Option<UnixTime>> {
    let millis: Option<i64> = row.try_get(column)?;
    millis
        .map(|m| {
            u64::try_from(m)
                .map(UnixTime::from_millis)
                .map_err(|_| Error::Corrupt {
                    what: column,
                    detail: format!("negative time {m}"),
                })
        })
        .transpose()
}

/// A 32-byte hash read back from the database.
fn read_hash(row: &AnyRow, column: &'static str) -> Result<[u8; 32]> {
    let bytes: Vec<u8> = row.try_get(column)?;
    to_hash(bytes, column)
}

fn to_hash(bytes: Vec<u8>, what: &'static str) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(bytes).map_err(|bytes| Error::Corrupt {
        what,
        detail: format!("{} bytes, expected 32", bytes.len()),
    })
}

/// Checks a value against its budget.
fn check_len(what: &'static str, len: usize, max: usize) -> Result<()> {
    if len > max {
        Err(Error::TooLarge { what, len, max })
    } else {
        Ok(())
    }
}

/// `count` bound parameters from the `first`th, comma-separated: `?` on SQLite (bound in
/// order; a numbered one is looked up by a linear scan for every value bound), `$n` on
/// PostgreSQL (which takes only those).
pub(crate) fn placeholders(anonymous: bool, first: usize, count: usize) -> String {
    let params: Vec<String> = (first..first.saturating_add(count))
        .map(|n| {
            if anonymous {
                "?".to_owned()
            } else {
                format!("${n}")
            }
        })
        .collect();
    params.join(", ")
}

/// Lower-case hex SHA-256.
fn sha256_hex(bytes: &[u8]) -> String {
    plinth_crypto::digest(plinth_core::HashAlg::Sha256, bytes).to_hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_from_urls() {
        assert_eq!(
            redact("postgres://user:secret@db:5432/plinth"),
            "postgres://…@db:5432/plinth"
        );
        assert_eq!(redact("mysql://host/db"), "mysql://host/db");
    }
}
