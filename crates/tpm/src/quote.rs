//! TPM2_Quote verification: the AK's signature over a TPMS_ATTEST that commits to the
//! challenge and to a digest of the selected PCRs.

use std::collections::BTreeMap;

use plinth_core::{Claims, Digest, HashAlg, Measurement, Platform};
use plinth_crypto::{Hasher, verify_slices_equal};

use crate::Error;
use crate::attest::{Attest, Attested, ClockInfo, PcrSelection};
use crate::public::Public;
use crate::signature::Signature;

/// PCR values as reported alongside a quote, per bank and index. Unverified until a quote
/// covers them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PcrValues {
    banks: BTreeMap<HashAlg, BTreeMap<u8, Digest>>,
}

impl PcrValues {
    /// Adds (or replaces) the value of PCR `index` in `bank`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when the digest is not of the bank's algorithm or the index
    /// is above 31.
    pub fn insert(&mut self, bank: HashAlg, index: u8, value: Digest) -> Result<(), Error> {
        if value.alg() != bank {
            return Err(Error::InvalidValue {
                field: "PCR value length",
                value: 0,
            });
        }
        if index > 31 {
            return Err(Error::InvalidValue {
                field: "PCR index",
                value: index.into(),
            });
        }
        let _previous = self.banks.entry(bank).or_default().insert(index, value);
        Ok(())
    }

    /// The value of one PCR, if supplied.
    pub fn get(&self, bank: HashAlg, index: u8) -> Option<&Digest> {
        self.banks.get(&bank).and_then(|values| values.get(&index))
    }

    /// Every supplied value, by bank then index.
    pub fn iter(&self) -> impl Iterator<Item = (HashAlg, u8, &Digest)> {
        self.banks.iter().flat_map(|(bank, values)| {
            values
                .iter()
                .map(move |(index, value)| (*bank, *index, value))
        })
    }
}

/// A quote whose signature, origin, freshness and PCR digest have all been checked.
/// Only [`verify_quote`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedQuote {
    pcrs: PcrValues,
    selection: Vec<PcrSelection>,
    signing_hash: HashAlg,
    clock_info: ClockInfo,
    firmware_version: u64,
    qualified_signer: Vec<u8>,
    qualifying_data: Vec<u8>,
}

impl VerifiedQuote {
    /// The quoted PCR values — only those the quote selected, now proven.
    pub const fn pcrs(&self) -> &PcrValues {
        &self.pcrs
    }
    /// The selection the TPM quoted, bank by bank.
    pub fn selection(&self) -> &[PcrSelection] {
        &self.selection
    }
    /// The hash of the signature and of the PCR digest.
    pub const fn signing_hash(&self) -> HashAlg {
        self.signing_hash
    }
    /// The TPM clock, reset and restart counts, and the safe flag.
    pub const fn clock_info(&self) -> ClockInfo {
        self.clock_info
    }
    /// The TPM firmware version.
    pub const fn firmware_version(&self) -> u64 {
        self.firmware_version
    }
    /// The qualified name of the AK as the TPM reports it.
    pub fn qualified_signer(&self) -> &[u8] {
        &self.qualified_signer
    }
    /// The qualifying data the quote commits to (the challenge).
    pub fn qualifying_data(&self) -> &[u8] {
        &self.qualifying_data
    }

    /// The normalized claims: every quoted PCR as a measurement named `<bank>:pcr<index>`
    /// and the qualifying data as nonce. A quote alone names no hardware and binds no key:
    /// those come from the EK or AK certificate and from TPM2_Certify ([`crate::CertifiedKey`]).
    pub fn claims(&self) -> Claims {
        Claims {
            platform: Platform::Tpm,
            hardware_id: None,
            measurements: self
                .pcrs
                .iter()
                .map(|(bank, index, value)| Measurement {
                    name: format!("{bank}:pcr{index}"),
                    value: value.clone(),
                })
                .collect(),
            bound_key: None,
            nonce: Some(self.qualifying_data.clone()),
            debug: false,
            produced_at: None,
        }
    }
}

/// Checks that `ak` can only have signed TPM-generated structures on one TPM: a restricted
/// signing key with fixedTPM and fixedParent. Otherwise TPM2_Sign could forge a quote.
pub(crate) fn check_attestation_key(ak: &Public) -> Result<(), Error> {
    let attributes = ak.attributes();
    if !attributes.sign() {
        return Err(Error::AkAttributes("not a signing key"));
    }
    if !attributes.restricted() {
        return Err(Error::AkAttributes("not restricted"));
    }
    if !attributes.fixed_tpm() || !attributes.fixed_parent() {
        return Err(Error::AkAttributes("not fixedTPM and fixedParent"));
    }
    Ok(())
}

/// Parses `attest` and `signature`, checks the signature over the attest bytes as received,
/// then the magic and the qualifying data. Shared by quote, certify and creation checks.
pub(crate) fn verify_attest(
    ak: &Public,
    attest: &[u8],
    signature: &[u8],
    qualifying_data: &[u8],
) -> Result<(Attest, Signature), Error> {
    check_attestation_key(ak)?;
    let parsed = Attest::parse(attest)?;
    let signature = Signature::parse(signature)?;
    signature.verify(ak, attest)?;
    parsed.check_magic()?;
    verify_slices_equal(&parsed.extra_data, qualifying_data)
        .map_err(|_| Error::QualifyingDataMismatch)?;
    Ok((parsed, signature))
}

/// Verifies a TPM2_Quote.
///
/// - `ak`: the attestation key's public area (trust in it comes from credential activation
///   or an AK certificate, checked elsewhere);
/// - `attest`, `signature`: the TPMS_ATTEST and TPMT_SIGNATURE exactly as the TPM produced;
/// - `qualifying_data`: what the quote's extraData must equal — in plinth's exchange the
///   32-byte challenge nonce itself;
/// - `pcrs`: claimed PCR values; every selected PCR must be present, and their digest
///   (with the signature's hash, over the selection in quote order) must equal pcrDigest.
///
/// # Errors
/// The first check that fails, as its own [`Error`] variant.
pub fn verify_quote(
    ak: &Public,
    attest: &[u8],
    signature: &[u8],
    qualifying_data: &[u8],
    pcrs: &PcrValues,
) -> Result<VerifiedQuote, Error> {
    let (parsed, signature) = verify_attest(ak, attest, signature, qualifying_data)?;
    let Attested::Quote {
        selection,
        pcr_digest,
    } = parsed.attested
    else {
        return Err(Error::WrongAttestType {
            expected: "quote",
            found: parsed.kind,
        });
    };
    let mut hasher = Hasher::new(signature.hash());
    let mut quoted = PcrValues::default();
    for bank in &selection {
        for &index in &bank.indices {
            let value = pcrs.get(bank.bank, index).ok_or(Error::MissingPcrValue {
                bank: bank.bank,
                index,
            })?;
            hasher.update(value.as_bytes());
            quoted.insert(bank.bank, index, value.clone())?;
        }
    }
    verify_slices_equal(hasher.finish().as_bytes(), &pcr_digest)
        .map_err(|_| Error::PcrDigestMismatch)?;
    Ok(VerifiedQuote {
        pcrs: quoted,
        selection,
        signing_hash: signature.hash(),
        clock_info: parsed.clock_info,
        firmware_version: parsed.firmware_version,
        qualified_signer: parsed.qualified_signer,
        qualifying_data: parsed.extra_data,
    })
}
