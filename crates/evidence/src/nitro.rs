//! Nitro evidence: the attestation document, its nonce and its public key.

use plinth_api::attestation::NitroEvidence;
use plinth_core::{Platform, UnixTime};
use plinth_nitro::VerifiedDocument;
use plinth_policy::Evidence;

use crate::appraised::Facts;
use crate::challenge::budget;
use crate::{Error, Trust};

/// A Nitro document is a few kilobytes: the certificate chain is most of it.
const MAX_DOCUMENT_LEN: usize = 64 * 1024;
/// The PCRs that identify an enclave image (0–2), its parent instance's role (3 and 4)
/// and its signing certificate (8).
const SELECTOR_PCRS: [u8; 6] = [0, 1, 2, 3, 4, 8];

/// A verified document.
pub(crate) struct Verified(VerifiedDocument, Option<plinth_core::BoundKey>);

impl Verified {
    pub(crate) const fn evidence(&self) -> Evidence<'_> {
        Evidence::Nitro(&self.0)
    }

    pub(crate) fn facts(&self) -> Facts {
        let selectors = SELECTOR_PCRS
            .iter()
            .filter_map(|&i| {
                self.0
                    .document()
                    .pcr(i)
                    .map(|d| format!("nitro:pcr{i}:{}", d.to_hex()))
            })
            .collect();
        Facts {
            platform: Platform::Nitro,
            hardware_id: Some(self.0.document().module_id().to_owned()),
            bound_key: self.1.clone(),
            selectors,
        }
    }
}

/// Verifies a document answering `nonce`. Its `public_key`, when present, must be a key
/// plinth accepts; it is the key an SVID will be minted for.
pub(crate) fn verify(
    trust: &Trust,
    evidence: &NitroEvidence,
    nonce: &[u8],
    now: UnixTime,
) -> Result<Verified, Error> {
    budget("document", evidence.document.len(), MAX_DOCUMENT_LEN)?;
    let document = plinth_nitro::verify(&evidence.document, &trust.nitro, now)?;
    document.verify_nonce(nonce)?;
    let key = match document.document().public_key() {
        Some(_) => Some(document.bound_key()?),
        None => None,
    };
    Ok(Verified(document, key))
}
