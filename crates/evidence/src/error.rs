//! The one error type of evidence handling.

use plinth_core::{Platform, UnixTime};

/// Why a hello or a piece of evidence was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A message or field could not be decoded.
    #[error("malformed {field}: {reason}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A field exceeds its budget.
    #[error("{field} is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The budget.
        max: usize,
    },
    /// The message names no platform, or one this server does not know.
    #[error("the message names no known platform")]
    UnknownPlatform,
    /// The evidence is for another platform than the challenge.
    #[error("the challenge was issued for {expected}, the evidence is for {found}")]
    PlatformMismatch {
        /// The challenge's platform.
        expected: Platform,
        /// The evidence's platform.
        found: Platform,
    },
    /// The evidence names another nonce than the challenge it is checked against.
    #[error("the evidence answers another challenge")]
    NonceMismatch,
    /// The challenge expired before the evidence arrived.
    #[error("the challenge expired at {expires_at}, now is {now}")]
    ChallengeExpired {
        /// When it expired.
        expires_at: UnixTime,
        /// Now.
        now: UnixTime,
    },
    /// No policy is loaded for the platform, so nothing could pass.
    #[error("no {platform} policy is loaded")]
    NoPolicy {
        /// The platform.
        platform: Platform,
    },
    /// The TPM evidence failed a check.
    #[error("TPM {step}: {source}")]
    Tpm {
        /// The step that failed.
        step: &'static str,
        /// The verifier's error.
        source: plinth_tpm::Error,
    },
    /// The Nitro attestation document failed a check.
    #[error("Nitro document: {0}")]
    Nitro(#[from] plinth_nitro::Error),
    /// The SEV-SNP report failed a check.
    #[error("SEV-SNP report: {0}")]
    Snp(#[from] plinth_snp::Error),
    /// No randomness for the nonce or the credential.
    #[error("the system random source failed")]
    Random,
    /// The appraisal did not pass: the policy and its failing rules.
    #[error("refused by policy {policy}: {}", failures.join("; "))]
    Refused {
        /// The policy that came closest to passing.
        policy: String,
        /// Each failing rule: name, observed and expected values.
        failures: Vec<String>,
    },
    /// The evidence passed, but binds no key an SVID could be minted for.
    #[error("the evidence binds no key")]
    NoBoundKey,
}

impl Error {
    /// A stable code for logs, metrics and the audit log.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed",
            Self::TooLarge { .. } => "too_large",
            Self::UnknownPlatform => "unknown_platform",
            Self::PlatformMismatch { .. } => "platform_mismatch",
            Self::NonceMismatch => "nonce_mismatch",
            Self::ChallengeExpired { .. } => "nonce_expired",
            Self::NoPolicy { .. } => "no_policy",
            Self::Tpm { .. } => "tpm_verification_failed",
            Self::Nitro(_) => "nitro_verification_failed",
            Self::Snp(_) => "snp_verification_failed",
            Self::Random => "random_failed",
            Self::Refused { .. } => "policy_refused",
            Self::NoBoundKey => "no_bound_key",
        }
    }

    pub(crate) fn tpm(step: &'static str) -> impl FnOnce(plinth_tpm::Error) -> Self {
        move |source| Self::Tpm { step, source }
    }

    pub(crate) fn malformed(field: &'static str) -> impl FnOnce(prost::DecodeError) -> Self {
        move |e| Self::Malformed {
            field,
            reason: e.to_string(),
        }
    }
}
