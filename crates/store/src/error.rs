use crate::audit::AuditError;

/// Everything that can go wrong in the datastore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No challenge was ever issued with this nonce (or it has been purged).
    #[error("unknown nonce")]
    NonceUnknown,
    /// The nonce was already consumed: a replay.
    #[error("nonce already consumed")]
    NonceConsumed,
    /// The nonce expired before it was presented.
    #[error("nonce expired")]
    NonceExpired,
    /// A ban on the node's SPIFFE ID or hardware ID existed when its attestation was to
    /// be committed: nothing of it was written.
    #[error("the node is banned: {}", .0.reason)]
    Banned(crate::Ban),
    /// The SVID was minted from registrations that changed before its attestation could
    /// commit (its registration epoch is not the current one): nothing of it was written.
    /// Mint again from [`crate::Store::node_registrations`].
    #[error("the registrations changed since the SVID was minted")]
    RegistrationsChanged,
    /// The row asked for does not exist.
    #[error("{what} not found: {key}")]
    NotFound {
        /// What kind of row.
        what: &'static str,
        /// The key looked up.
        key: String,
    },
    /// A row with the same unique key already exists.
    #[error("{what} already exists")]
    Conflict {
        /// What kind of row.
        what: &'static str,
    },
    /// A value is larger than the store accepts.
    #[error("{what} is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size (bytes, or rows for exports).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A policy text does not hash to the policy hash it was given with.
    #[error("policy text does not hash to {expected}")]
    PolicyHashMismatch {
        /// The hash given.
        expected: String,
    },
    /// A time does not fit the database's signed 64-bit milliseconds.
    #[error("time out of range")]
    TimeOutOfRange,
    /// A stored value cannot be read back as the type it should have.
    #[error("corrupt {what} in the database: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The database URL names no supported backend.
    #[error("unsupported database URL (expected sqlite:// or postgres://): {0}")]
    UnsupportedUrl(String),
    /// The data directory could not be prepared.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The random number generator failed (generating an ID).
    #[error(transparent)]
    Random(#[from] plinth_core::RandomError),
    /// The audit log or a checkpoint does not verify.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// Applying the schema migrations failed.
    #[error("schema migration: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// The transaction that held this audit record, with others appended beside it,
    /// failed to commit: nothing of it was written.
    #[error("audit append failed, nothing written: {0}")]
    AppendFailed(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(error)
    }
}

/// Maps a unique-key violation to [`Error::Conflict`], anything else to
/// [`Error::Database`].
pub(crate) fn conflict_as(what: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict { what },
        _ => Error::Database(error),
    }
}
