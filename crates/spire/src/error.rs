//! The one error type of the plugins, and its one mapping to the gRPC status SPIRE relays.

use std::path::PathBuf;

use tonic::{Code, Status};

/// Everything the plugins refuse or fail at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The process was not started by a go-plugin host (the magic cookie is missing).
    #[error(
        "this binary is a SPIRE plugin: it is started by spire-server or spire-agent \
         (`plugin_cmd`), not by hand (environment {key}={expected} not set)"
    )]
    NotAPluginHost {
        /// The cookie variable.
        key: &'static str,
        /// Its expected value.
        expected: &'static str,
    },
    /// The host offers no plugin protocol version this plugin speaks.
    #[error("the host offers plugin protocol versions {offered:?}; this plugin speaks only 1")]
    ProtocolVersion {
        /// What `PLUGIN_PROTOCOL_VERSIONS` held.
        offered: String,
    },
    /// Setting up the socket, writing the handshake or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("serving gRPC: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// An RPC arrived before `Configure` succeeded.
    #[error("the plugin is not configured")]
    NotConfigured,
    /// The configuration is not acceptable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file named by the configuration could not be read.
    #[error("reading {path}: {source}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A policy file does not parse.
    #[error("policy {path}: {source}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// The policy error (with line and column).
        source: plinth_policy::Error,
    },
    /// A trust-anchor certificate does not parse.
    #[error("trust anchor {path}: {source}")]
    TrustAnchor {
        /// The file.
        path: PathBuf,
        /// The TPM crate's certificate error.
        source: plinth_tpm::Error,
    },
    /// The built-in trust anchors failed to load.
    #[error("built-in trust anchors: {0}")]
    BuiltinTrust(plinth_evidence::Error),
    /// The attestation stream broke the protocol (a message out of order, the stream ended
    /// early).
    #[error("attestation protocol: {0}")]
    Protocol(&'static str),
    /// A payload, challenge or challenge response is not the message it must be.
    #[error("malformed {what}: {source}")]
    Malformed {
        /// Which message.
        what: &'static str,
        /// The decoder's error.
        source: prost::DecodeError,
    },
    /// The evidence was refused (or could not be checked).
    #[error(transparent)]
    Evidence(#[from] plinth_evidence::Error),
    /// The evidence passed but names no stable hardware identifier (an SEV-SNP report
    /// with the chip ID masked), so no agent ID can be derived.
    #[error("the evidence carries no stable hardware identifier")]
    NoHardwareId,
    /// The agent ID built from the appraisal is not a valid SPIFFE ID.
    #[error("agent ID: {0}")]
    AgentId(plinth_core::Error),
    /// The system clock is unusable.
    #[error("the system clock is before the Unix epoch or out of range")]
    Clock,
    /// The agent-side collector failed.
    #[error("collecting evidence: {0}")]
    Collector(#[from] plinth_agent::Error),
    /// The collector was asked for a platform it does not gather.
    #[error("the challenge is for another platform than this agent collects")]
    UnexpectedChallenge,
    /// The collector's worker thread went away.
    #[error("the evidence collector stopped")]
    CollectorStopped,
}

impl Error {
    /// The gRPC status SPIRE relays to the agent, with public text only: the detail goes
    /// to the log (stderr), where the SPIRE operator sees it.
    ///
    /// - malformed payload or challenge response, bad configuration, a broken exchange:
    ///   `InvalidArgument`;
    /// - not configured: `FailedPrecondition`;
    /// - evidence that fails verification or policy, a wrong or expired nonce:
    ///   `PermissionDenied`;
    /// - our own failures (clock, randomness, collector, I/O): `Internal`.
    pub fn to_status(&self) -> Status {
        let (code, message) = match self {
            Self::NotConfigured => (Code::FailedPrecondition, "plinth: not configured"),
            Self::Config(_)
            | Self::ConfigFile { .. }
            | Self::Policy { .. }
            | Self::TrustAnchor { .. } => (Code::InvalidArgument, "plinth: invalid configuration"),
            Self::Protocol(_) => (
                Code::InvalidArgument,
                "plinth: attestation protocol violated",
            ),
            Self::Malformed { what, .. } => match *what {
                "payload" => (Code::InvalidArgument, "plinth: malformed payload"),
                "challenge" => (Code::InvalidArgument, "plinth: malformed challenge"),
                _ => (
                    Code::InvalidArgument,
                    "plinth: malformed challenge response",
                ),
            },
            Self::Evidence(e) => evidence_status(e),
            Self::NoHardwareId => (
                Code::PermissionDenied,
                "plinth: evidence carries no stable hardware identifier",
            ),
            Self::UnexpectedChallenge => (
                Code::InvalidArgument,
                "plinth: challenge for another platform",
            ),
            Self::NotAPluginHost { .. }
            | Self::ProtocolVersion { .. }
            | Self::Io { .. }
            | Self::Transport(_)
            | Self::BuiltinTrust(_)
            | Self::AgentId(_)
            | Self::Clock
            | Self::Collector(_)
            | Self::CollectorStopped => (Code::Internal, "plinth: internal error"),
        };
        Status::new(code, message)
    }
}

/// Evidence errors: what the attester sent is malformed (`InvalidArgument`), or it was
/// checked and refused (`PermissionDenied`); only our own failures are `Internal`.
fn evidence_status(error: &plinth_evidence::Error) -> (Code, &'static str) {
    use plinth_evidence::Error as E;
    match error {
        E::Malformed { .. } | E::TooLarge { .. } | E::UnknownPlatform => {
            (Code::InvalidArgument, "plinth: malformed evidence")
        }
        E::NonceMismatch | E::ChallengeExpired { .. } => (
            Code::PermissionDenied,
            "plinth: evidence does not answer the challenge",
        ),
        E::Refused { .. } => (Code::PermissionDenied, "plinth: refused by policy"),
        E::NoPolicy { .. } => (
            Code::PermissionDenied,
            "plinth: no policy accepts this platform",
        ),
        E::Random => (Code::Internal, "plinth: internal error"),
        _ => (
            Code::PermissionDenied,
            "plinth: evidence failed verification",
        ),
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        error.to_status()
    }
}
