//! Evidence collectors, one per platform, behind one interface ([`EvidenceSource`]). Each
//! is synchronous: the async agent runs them on a blocking thread.

pub mod nitro;
pub mod snp;
pub mod tpm;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use plinth_api::attestation::{ChallengeResponse, Evidence, Hello};
use rustls::sign::SigningKey;
use serde::Deserialize;

use crate::Error;
use crate::exchange::TpmSource;

pub use tpm::{
    CertifiedKey, DEFAULT_EVENT_LOG, DEFAULT_TCTI, MAX_EVENT_LOG, PcrValue, Quote, TpmCollector,
    TpmIdentity, TpmKeyHandle, read_event_log,
};

/// One platform's half of the attestation exchange (DESIGN.md, "The attestation exchange").
pub trait EvidenceSource: Send {
    /// The hello that opens an exchange: TPM identity material; nothing yet for SNP and
    /// Nitro.
    ///
    /// # Errors
    /// The device's error.
    fn hello(&mut self) -> Result<Hello, Error>;

    /// Evidence answering `challenge` that binds a new SVID key, and that key as a TLS
    /// signing key (its private half stays where the evidence says it is: in the TPM, or
    /// in the enclave's or confidential VM's memory).
    ///
    /// # Errors
    /// The device's error, or [`Error::UnexpectedResponse`] for a challenge of the wrong
    /// shape.
    fn evidence_for_new_key(
        &mut self,
        challenge: &ChallengeResponse,
    ) -> Result<(Evidence, Arc<dyn SigningKey>), Error>;

    /// Evidence answering `challenge` that binds no key (SPIRE mints its own SVIDs).
    ///
    /// # Errors
    /// As [`EvidenceSource::evidence_for_new_key`].
    fn evidence_without_key(&mut self, challenge: &ChallengeResponse) -> Result<Evidence, Error>;
}

/// The hardware whose evidence the agent collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Platform {
    /// A TPM 2.0, through tss-esapi (`tcti`).
    Tpm,
    /// An AWS Nitro Enclave, through the NSM device (`/dev/nsm`).
    Nitro,
    /// An AMD SEV-SNP guest, through `/dev/sev-guest`.
    Snp,
}

impl std::str::FromStr for Platform {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tpm" => Ok(Self::Tpm),
            "nitro" => Ok(Self::Nitro),
            "snp" => Ok(Self::Snp),
            _ => Err("expected tpm, nitro or snp"),
        }
    }
}

/// Opens `platform`'s evidence source (blocking: it talks to the device). `tcti` and
/// `event_log` are the TPM's; `snp_vek_certificate` is a VCEK/VLEK file (DER) an SEV-SNP
/// guest sends when its host provides no certificate table.
///
/// # Errors
/// The device's error; [`Error::SnpVekCertificate`].
pub fn open(
    platform: Platform,
    tcti: &str,
    event_log: Option<PathBuf>,
    snp_vek_certificate: Option<&Path>,
) -> Result<Box<dyn EvidenceSource>, Error> {
    Ok(match platform {
        Platform::Tpm => Box::new(TpmSource::new(TpmCollector::open(tcti)?, event_log)),
        Platform::Nitro => Box::new(nitro::NitroCollector::open(Path::new(
            nitro::DEFAULT_NSM_DEVICE,
        ))?),
        Platform::Snp => {
            let collector = snp::SnpCollector::open()?;
            Box::new(match snp_vek_certificate {
                Some(path) => {
                    collector.with_vek_certificate(snp::read_vek_certificate(path)?, path)?
                }
                None => collector,
            })
        }
    })
}
