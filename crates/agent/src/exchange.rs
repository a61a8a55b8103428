//! The node's half of the attestation exchange, for each collector: the hello it sends
//! and the evidence that answers a challenge.

use plinth_api::attestation::{
    ChallengeResponse, Evidence, Hello, PcrValue as WirePcrValue, TpmEvidence, TpmHello, evidence,
    hello,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use plinth_core::HashAlg;
use rustls::sign::SigningKey;

use crate::collect::EvidenceSource;
use crate::tls::TpmSigningKey;
use crate::{CertifiedKey, Error, TpmCollector};

/// The TPM as an [`EvidenceSource`]. The collector is shared with the TLS signers of the
/// keys it creates (the TPM serves one command at a time); the event log is read afresh
/// for every quote.
#[derive(Debug)]
pub struct TpmSource {
    tpm: Arc<Mutex<TpmCollector>>,
    event_log: Option<PathBuf>,
}

impl TpmSource {
    /// The TPM behind `collector`, quoting with the event log at `event_log` (none sent
    /// when `None`).
    pub fn new(collector: TpmCollector, event_log: Option<PathBuf>) -> Self {
        Self {
            tpm: Arc::new(Mutex::new(collector)),
            event_log,
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, TpmCollector>, Error> {
        self.tpm
            .lock()
            .map_err(|_| Error::Agent("the TPM collector lock is poisoned".into()))
    }

    fn event_log(&self) -> Result<Option<Vec<u8>>, Error> {
        self.event_log
            .as_deref()
            .map(crate::read_event_log)
            .transpose()
    }
}

impl EvidenceSource for TpmSource {
    fn hello(&mut self) -> Result<Hello, Error> {
        tpm_hello(&mut *self.lock()?)
    }

    fn evidence_for_new_key(
        &mut self,
        challenge: &ChallengeResponse,
    ) -> Result<(Evidence, Arc<dyn SigningKey>), Error> {
        let log = self.event_log()?;
        let (evidence, key) = tpm_evidence(&mut *self.lock()?, challenge, log)?;
        let signer: Arc<dyn SigningKey> =
            Arc::new(TpmSigningKey::new(Arc::clone(&self.tpm), key.key));
        Ok((evidence, signer))
    }

    fn evidence_without_key(&mut self, challenge: &ChallengeResponse) -> Result<Evidence, Error> {
        let log = self.event_log()?;
        tpm_quote_evidence(&mut *self.lock()?, challenge, log)
    }
}

/// The TPM's hello: its EK (certificate and public area) and AK.
///
/// # Errors
/// The collector's error.
pub fn tpm_hello(collector: &mut TpmCollector) -> Result<Hello, Error> {
    let identity = collector.identity()?;
    Ok(Hello {
        platform: Some(hello::Platform::Tpm(TpmHello {
            ek_certificate: identity.ek_certificate.unwrap_or_default(),
            ek_public: identity.ek_public,
            ak_public: identity.ak_public,
        })),
    })
}

/// Answers a TPM challenge without binding a key (what SPIRE's node attestation needs):
/// activates the credential and quotes the PCRs the server asked for with the nonce.
///
/// # Errors
/// [`Error::UnexpectedResponse`] for a challenge without a credential or with an unknown
/// bank; the collector's errors.
pub fn tpm_quote_evidence(
    collector: &mut TpmCollector,
    challenge: &ChallengeResponse,
    event_log: Option<Vec<u8>>,
) -> Result<Evidence, Error> {
    let credential = challenge
        .credential
        .as_ref()
        .ok_or(Error::UnexpectedResponse(
            "a TPM challenge without a credential",
        ))?;
    let secret =
        collector.activate_credential(&credential.id_object, &credential.encrypted_secret)?;
    let mut selection = Vec::new();
    for bank in &challenge.pcr_selection {
        let alg = HashAlg::from_name(&bank.bank).ok_or(Error::UnexpectedResponse(
            "the challenge names an unknown PCR bank",
        ))?;
        let pcrs = bank
            .pcrs
            .iter()
            .map(|&i| u8::try_from(i))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| Error::UnexpectedResponse("the challenge names a PCR index over 255"))?;
        selection.push((alg, pcrs));
    }
    let quote = collector.quote(&selection, &challenge.nonce)?;
    Ok(Evidence {
        nonce: challenge.nonce.clone(),
        platform: Some(evidence::Platform::Tpm(TpmEvidence {
            activated_secret: secret.to_vec(),
            quote: quote.attest,
            quote_signature: quote.signature,
            pcr_values: quote
                .pcrs
                .iter()
                .map(|p| WirePcrValue {
                    bank: p.bank.name().to_owned(),
                    index: u32::from(p.index),
                    value: p.value.as_bytes().to_vec(),
                })
                .collect(),
            event_log: event_log.unwrap_or_default(),
            ..TpmEvidence::default()
        })),
    })
}

/// Answers a TPM challenge for an SVID: [`tpm_quote_evidence`], plus the SVID key created
/// in the TPM and certified by the AK with the nonce. Returns the evidence and the new key
/// (whose handle signs for the SVID later).
///
/// # Errors
/// As [`tpm_quote_evidence`], and the collector's errors creating the key.
pub fn tpm_evidence(
    collector: &mut TpmCollector,
    challenge: &ChallengeResponse,
    event_log: Option<Vec<u8>>,
) -> Result<(Evidence, CertifiedKey), Error> {
    let mut evidence = tpm_quote_evidence(collector, challenge, event_log)?;
    let key = collector.create_certified_key(&challenge.nonce)?;
    if let Some(evidence::Platform::Tpm(tpm)) = &mut evidence.platform {
        tpm.key_public.clone_from(&key.public);
        tpm.certify.clone_from(&key.attest);
        tpm.certify_signature.clone_from(&key.signature);
    }
    Ok((evidence, key))
}
