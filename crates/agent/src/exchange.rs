//! The node's half of the attestation exchange, for each collector: the hello it sends
//! and the evidence that answers a challenge.

use plinth_api::attestation::{
    ChallengeResponse, Evidence, Hello, PcrValue as WirePcrValue, TpmEvidence, TpmHello, evidence,
    hello,
};
use plinth_core::HashAlg;

use crate::{CertifiedKey, Error, TpmCollector};

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

/// Answers a TPM challenge: activates the credential, quotes the PCRs the server asked
/// for with the nonce, and creates the SVID key in the TPM, certified by the AK with the
/// nonce. Returns the evidence and the new key (whose handle signs for the SVID later).
///
/// # Errors
/// [`Error::UnexpectedResponse`] for a challenge without a credential or with an unknown
/// bank; the collector's errors.
pub fn tpm_evidence(
    collector: &mut TpmCollector,
    challenge: &ChallengeResponse,
    event_log: Option<Vec<u8>>,
) -> Result<(Evidence, CertifiedKey), Error> {
    let credential = challenge
        .credential
        .as_ref()
        .ok_or(Error::UnexpectedResponse("a TPM challenge without a credential"))?;
    let secret =
        collector.activate_credential(&credential.id_object, &credential.encrypted_secret)?;
    let mut selection = Vec::new();
    for bank in &challenge.pcr_selection {
        let alg = HashAlg::ALL
            .into_iter()
            .find(|alg| alg.name() == bank.bank)
            .ok_or(Error::UnexpectedResponse("the challenge names an unknown PCR bank"))?;
        let pcrs = bank
            .pcrs
            .iter()
            .map(|&i| u8::try_from(i))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| Error::UnexpectedResponse("the challenge names a PCR index over 255"))?;
        selection.push((alg, pcrs));
    }
    let quote = collector.quote(&selection, &challenge.nonce)?;
    let key = collector.create_certified_key(&challenge.nonce)?;
    let evidence = Evidence {
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
            key_public: key.public.clone(),
            certify: key.attest.clone(),
            certify_signature: key.signature.clone(),
        })),
    };
    Ok((evidence, key))
}
