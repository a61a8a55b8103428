//! The server's errors, and their one mapping to gRPC status codes.

use plinth_evidence::Error as EvidenceError;
use tonic::{Code, Status};

/// Metadata key carrying the stable error code, so clients and tests can tell apart
/// refusals that share a gRPC code.
pub const ERROR_CODE_HEADER: &str = "plinth-error-code";

/// Why an attestation or an admin call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// Starting a component failed (CA, policies, listeners).
    #[error("{what}: {reason}")]
    Startup {
        /// The component.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The evidence was refused.
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    /// The evidence names a nonce that was never issued (or was purged).
    #[error("unknown nonce: no such challenge")]
    NonceUnknown,
    /// The nonce was already used: a replay.
    #[error("the nonce was already used")]
    NonceConsumed,
    /// The node is banned.
    #[error("node is banned: {reason}")]
    Banned {
        /// The ban's reason.
        reason: String,
    },
    /// No registration matches and registrations are required, or several match equally.
    #[error("registration: {0}")]
    Registration(String),
    /// Renewal: the caller's SVID is unknown, expired, or names another identity.
    #[error("renewal refused: {0}")]
    Renewal(String),
    /// The admin API was called by someone who may not.
    #[error("admin API: {0}")]
    NotAdmin(String),
    /// An admin request was invalid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Not found (admin API).
    #[error("not found: {0}")]
    NotFound(String),
    /// Minting failed.
    #[error("minting the SVID: {0}")]
    Ca(#[from] plinth_ca::Error),
    /// The datastore failed.
    #[error("datastore: {0}")]
    Store(#[from] plinth_store::Error),
    /// A background task failed.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// A stable code for the audit log, metrics and the `plinth-error-code` header.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Startup { .. } => "startup",
            Self::Evidence(e) => e.code(),
            Self::NonceUnknown => "nonce_unknown",
            Self::NonceConsumed => "nonce_replayed",
            Self::Banned { .. } => "banned",
            Self::Registration(_) => "registration",
            Self::Renewal(_) => "renewal_refused",
            Self::NotAdmin(_) => "not_admin",
            Self::InvalidRequest(_) => "invalid_request",
            Self::NotFound(_) => "not_found",
            Self::Ca(_) => "ca",
            Self::Store(_) => "store",
            Self::Internal(_) => "internal",
        }
    }

    /// The gRPC code: malformed input is InvalidArgument; oversized input
    /// ResourceExhausted; a nonce that cannot be answered (unknown, replayed, expired,
    /// another nonce's evidence) FailedPrecondition — get a fresh challenge; evidence
    /// whose signatures or chains fail Unauthenticated; a policy refusal, a ban, a
    /// refused renewal PermissionDenied; our own failures Internal or Unavailable.
    pub fn grpc_code(&self) -> Code {
        match self {
            Self::Evidence(e) => match e {
                EvidenceError::Malformed { .. } | EvidenceError::UnknownPlatform => {
                    Code::InvalidArgument
                }
                EvidenceError::TooLarge { .. } => Code::ResourceExhausted,
                EvidenceError::PlatformMismatch { .. }
                | EvidenceError::NonceMismatch
                | EvidenceError::ChallengeExpired { .. }
                | EvidenceError::NoPolicy { .. } => Code::FailedPrecondition,
                EvidenceError::Tpm { .. } | EvidenceError::Nitro(_) | EvidenceError::Snp(_) => {
                    Code::Unauthenticated
                }
                EvidenceError::Refused { .. } | EvidenceError::NoBoundKey => Code::PermissionDenied,
                _ => Code::Internal,
            },
            Self::NonceUnknown | Self::NonceConsumed => Code::FailedPrecondition,
            Self::Banned { .. } | Self::Registration(_) | Self::Renewal(_) | Self::NotAdmin(_) => {
                Code::PermissionDenied
            }
            Self::InvalidRequest(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::Store(_) => Code::Unavailable,
            Self::Config(_) | Self::Startup { .. } | Self::Ca(_) | Self::Internal(_) => {
                Code::Internal
            }
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let mut status = Status::new(error.grpc_code(), error.to_string());
        if let Ok(value) = error.code().parse() {
            let _previous = status.metadata_mut().insert(ERROR_CODE_HEADER, value);
        }
        status
    }
}
