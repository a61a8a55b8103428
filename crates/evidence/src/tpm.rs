//! TPM evidence: EK identity, credential activation, quote, event log, certified key.

use plinth_api::attestation::{TpmEvidence as WireEvidence, TpmHello};
use plinth_core::{BoundKey, HashAlg, Platform, SecureRandom, UnixTime};
use plinth_policy::{Evidence, TpmEvidence, TpmIdentity};
use plinth_tpm::{
    ActivationCommitment, AllowListedEk, CredentialChallenge, PcrValues, Public, VerifiedEk,
    VerifiedEventLog, VerifiedQuote,
};

use crate::appraised::Facts;
use crate::challenge::budget;
use crate::{Error, Trust};

/// Budgets for the TPM fields an agent sends.
const MAX_PUBLIC_LEN: usize = 1024;
const MAX_CERTIFICATE_LEN: usize = 8 * 1024;
const MAX_ATTEST_LEN: usize = 2048;
const MAX_EVENT_LOG_LEN: usize = 1 << 20;
/// Four banks of 24 PCRs.
const MAX_PCR_VALUES: usize = 96;

/// The hello's EK and AK, parsed.
fn keys(hello: &TpmHello) -> Result<(Public, Public), Error> {
    budget("ek_public", hello.ek_public.len(), MAX_PUBLIC_LEN)?;
    budget("ak_public", hello.ak_public.len(), MAX_PUBLIC_LEN)?;
    budget(
        "ek_certificate",
        hello.ek_certificate.len(),
        MAX_CERTIFICATE_LEN,
    )?;
    let parse = |field: &'static str, bytes: &[u8]| {
        Public::from_either(bytes).map_err(|e| Error::Malformed {
            field,
            reason: e.to_string(),
        })
    };
    let ek = parse("ek_public", &hello.ek_public)?;
    let ak = parse("ak_public", &hello.ak_public)?;
    Ok((ek, ak))
}

/// MakeCredential to the hello's EK, bound to its AK.
pub(crate) fn make_credential(
    hello: &TpmHello,
    rng: &dyn SecureRandom,
) -> Result<(CredentialChallenge, ActivationCommitment), Error> {
    let (ek, ak) = keys(hello)?;
    let (credential, pending) =
        plinth_tpm::make_credential(&ek, &ak, rng).map_err(Error::tpm("credential"))?;
    Ok((credential, pending.commitment()))
}

/// How the TPM was identified.
enum Identity {
    Certified(Box<VerifiedEk>),
    AllowListed(AllowListedEk),
}

/// Verified TPM evidence.
pub(crate) struct Verified {
    quote: VerifiedQuote,
    event_log: Option<VerifiedEventLog>,
    identity: Identity,
    ek_hash: String,
    bound_key: Option<BoundKey>,
}

impl Verified {
    pub(crate) fn evidence(&self) -> Evidence<'_> {
        Evidence::Tpm(TpmEvidence {
            quote: &self.quote,
            event_log: self.event_log.as_ref(),
            identity: match &self.identity {
                Identity::Certified(ek) => TpmIdentity::Ek(ek),
                Identity::AllowListed(ek) => TpmIdentity::AllowListedEk(ek),
            },
        })
    }

    pub(crate) fn facts(&self) -> Facts {
        let mut selectors = vec![format!("tpm:ek_hash:{}", self.ek_hash)];
        if let Some(enabled) = self
            .event_log
            .as_ref()
            .and_then(|log| log.boot_state().secure_boot())
        {
            selectors.push(format!("tpm:secure_boot:{enabled}"));
        }
        Facts {
            platform: Platform::Tpm,
            hardware_id: Some(self.ek_hash.clone()),
            bound_key: self.bound_key.clone(),
            selectors,
        }
    }
}

/// Verifies TPM evidence answering a challenge issued for `hello`.
pub(crate) fn verify(
    trust: &Trust,
    hello: &TpmHello,
    commitment: [u8; 32],
    evidence: &WireEvidence,
    nonce: &[u8],
    now: UnixTime,
) -> Result<Verified, Error> {
    let (ek, ak) = keys(hello)?;
    let ek_key = ek.public_key().map_err(Error::tpm("EK public key"))?;
    let ek_hash = plinth_tpm::EkAllowList::spki_sha256(&ek_key)
        .map_err(Error::tpm("EK public key"))?
        .to_hex();
    let identity = if hello.ek_certificate.is_empty() {
        Identity::AllowListed(
            trust
                .ek_allow
                .check(&ek_key)
                .map_err(Error::tpm("EK allow-list"))?,
        )
    } else {
        let verified =
            plinth_tpm::verify_ek_certificate(&hello.ek_certificate, &trust.ek_roots, now)
                .map_err(Error::tpm("EK certificate"))?;
        verified
            .check_public_matches(&ek)
            .map_err(Error::tpm("EK certificate"))?;
        Identity::Certified(Box::new(verified))
    };
    let _activated = ActivationCommitment::from_bytes(commitment)
        .verify(&ak, &evidence.activated_secret)
        .map_err(Error::tpm("credential activation"))?;

    budget("quote", evidence.quote.len(), MAX_ATTEST_LEN)?;
    budget(
        "quote_signature",
        evidence.quote_signature.len(),
        MAX_ATTEST_LEN,
    )?;
    budget("pcr_values", evidence.pcr_values.len(), MAX_PCR_VALUES)?;
    let mut pcrs = PcrValues::default();
    for value in &evidence.pcr_values {
        let bank = HashAlg::from_name(&value.bank).ok_or_else(|| Error::Malformed {
            field: "pcr_values",
            reason: format!("unknown bank {:?}", value.bank),
        })?;
        let index = u8::try_from(value.index).map_err(|_| Error::Malformed {
            field: "pcr_values",
            reason: format!("PCR index {} out of range", value.index),
        })?;
        let digest =
            plinth_core::Digest::new(bank, &value.value).map_err(|e| Error::Malformed {
                field: "pcr_values",
                reason: e.to_string(),
            })?;
        pcrs.insert(bank, index, digest)
            .map_err(Error::tpm("PCR values"))?;
    }
    let quote = plinth_tpm::verify_quote(
        &ak,
        &evidence.quote,
        &evidence.quote_signature,
        nonce,
        &pcrs,
    )
    .map_err(Error::tpm("quote"))?;

    let event_log = if evidence.event_log.is_empty() {
        None
    } else {
        budget("event_log", evidence.event_log.len(), MAX_EVENT_LOG_LEN)?;
        Some(
            plinth_tpm::verify_event_log(&evidence.event_log, &quote)
                .map_err(Error::tpm("event log"))?,
        )
    };

    let bound_key = if evidence.key_public.is_empty() {
        None
    } else {
        budget("key_public", evidence.key_public.len(), MAX_PUBLIC_LEN)?;
        budget("certify", evidence.certify.len(), MAX_ATTEST_LEN)?;
        budget(
            "certify_signature",
            evidence.certify_signature.len(),
            MAX_ATTEST_LEN,
        )?;
        let certified = plinth_tpm::verify_certify(
            &ak,
            &evidence.certify,
            &evidence.certify_signature,
            &evidence.key_public,
            nonce,
        )
        .map_err(Error::tpm("certified key"))?;
        Some(BoundKey::from_spki_der(certified.spki_der().to_vec()))
    };
    Ok(Verified {
        quote,
        event_log,
        identity,
        ek_hash,
        bound_key,
    })
}
