//! The normalized claims every platform verifier produces.
//!
//! A verifier turns platform-specific evidence into these few facts, which the policy
//! engine and the registration logic can treat alike. Platform-specific detail stays in
//! each verifier's own verified type.

use std::fmt;

use crate::{Digest, UnixTime};

/// Which kind of hardware produced the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Platform {
    /// A TPM 2.0 (discrete, firmware or virtual).
    Tpm,
    /// An AWS Nitro Enclave.
    Nitro,
    /// An AMD SEV-SNP guest.
    SevSnp,
}

impl Platform {
    /// Lower-case name (`tpm`, `nitro`, `sev-snp`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tpm => "tpm",
            Self::Nitro => "nitro",
            Self::SevSnp => "sev-snp",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A named measurement (`pcr0`, `sha256:pcr7`, `measurement`) and its verified value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurement {
    /// Name, stable per platform.
    pub name: String,
    /// Value.
    pub value: Digest,
}

/// The DER SubjectPublicKeyInfo of a key the evidence proves is held by the hardware:
/// the only key an SVID may be minted for.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BoundKey(Vec<u8>);

impl BoundKey {
    /// Wraps SubjectPublicKeyInfo DER produced by a verifier.
    pub fn from_spki_der(der: Vec<u8>) -> Self {
        Self(der)
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for BoundKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BoundKey({})", hex::encode(&self.0))
    }
}

/// What a verifier established about one piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The platform.
    pub platform: Platform,
    /// A stable identifier of the hardware (EK hash, chip id, enclave module), when known.
    pub hardware_id: Option<String>,
    /// The verified measurements.
    pub measurements: Vec<Measurement>,
    /// The key the evidence binds, when it binds one.
    pub bound_key: Option<BoundKey>,
    /// The qualifying data / nonce the evidence commits to.
    pub nonce: Option<Vec<u8>>,
    /// Whether the hardware reports a debug (non-production) state.
    pub debug: bool,
    /// When the hardware says the evidence was produced, when it says so.
    pub produced_at: Option<UnixTime>,
}
