//! Parse, then verify: [`ParsedDocument`] → [`VerifiedDocument`].

use plinth_core::{BoundKey, Claims, Measurement, Platform, UnixTime};
use plinth_crypto::{HashAlg, PublicKey, SignatureScheme};

use crate::chain::{self, ChainCache, ChainSource, LeafKey};
use crate::cose::Sign1;
use crate::document::AttestationDocument;
use crate::error::Error;
use crate::trust::NitroTrust;

/// The largest document accepted, in bytes. The format's own limits (a 1024-byte leaf,
/// up to [`crate::MAX_CABUNDLE_LEN`] 1024-byte CA certificates, 32 PCRs of at most 64 bytes,
/// 1024 + 512 + 512 bytes of public key, user data and nonce) add up to under 14 KiB; real
/// documents are about 4.5 KiB.
pub const MAX_DOCUMENT_LEN: usize = 16 * 1024;

/// A document whose COSE and CBOR structure is well formed and within every limit, but
/// whose signature and certificate chain have not been checked. Nothing in it is trusted.
pub struct ParsedDocument {
    sign1: Sign1,
    document: AttestationDocument,
}

impl ParsedDocument {
    /// Parses a COSE_Sign1 (tagged or untagged) and its attestation-document payload.
    ///
    /// # Errors
    /// [`Error::DocumentTooLarge`], the structural errors of COSE ([`Error::Truncated`],
    /// [`Error::TrailingData`], [`Error::AlgorithmNotEs384`], …) and of the payload
    /// ([`Error::UnknownField`], [`Error::FieldType`], [`Error::FieldSize`], …).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_DOCUMENT_LEN {
            return Err(Error::DocumentTooLarge {
                len: bytes.len(),
                max: MAX_DOCUMENT_LEN,
            });
        }
        let sign1 = Sign1::parse(bytes)?;
        let document = AttestationDocument::from_payload(&sign1.payload)?;
        Ok(Self { sign1, document })
    }

    /// The document's fields, **unverified**: for diagnostics only, never for decisions.
    pub const fn unverified_document(&self) -> &AttestationDocument {
        &self.document
    }

    /// Verifies the chain and the signature at `now` (see [`verify`]).
    ///
    /// # Errors
    /// As [`verify`].
    pub fn verify(self, trust: &NitroTrust, now: UnixTime) -> Result<VerifiedDocument, Error> {
        let leaf = chain::verify(&self.document, trust, now)?;
        self.finish(leaf)
    }

    /// Verifies the chain (through `cache`) and the signature at `now` (see
    /// [`verify_with_cache`]).
    ///
    /// # Errors
    /// As [`verify`].
    pub fn verify_with_cache(
        self,
        trust: &NitroTrust,
        now: UnixTime,
        cache: &mut ChainCache,
    ) -> Result<VerifiedDocument, Error> {
        let leaf = chain::verify_cached(&self.document, trust, now, cache)?;
        self.finish(leaf)
    }

    fn finish(self, LeafKey { key, source }: LeafKey) -> Result<VerifiedDocument, Error> {
        verify_signature(&key, &self.sign1)?;
        Ok(VerifiedDocument {
            document: self.document,
            chain_source: source,
        })
    }
}

/// The ES384 signature over the Sig_structure, with the leaf's (validated) key.
fn verify_signature(key: &PublicKey, sign1: &Sign1) -> Result<(), Error> {
    key.verify(
        SignatureScheme::EcdsaFixed(HashAlg::Sha384),
        &sign1.to_be_signed(),
        &sign1.signature,
    )
    .map_err(|_| Error::SignatureInvalid)
}

/// Verifies a Nitro attestation document at `now`.
///
/// In order: the size budget; the COSE_Sign1 structure (ES384 only, nothing but `alg` in the
/// protected header, an empty unprotected header, an attached payload, no trailing bytes);
/// the payload's fields by AWS's syntactic rules; `cabundle[0]` against the pinned root
/// fingerprint; the path leaf → cabundle → root, every certificate valid at `now`; the
/// leaf's key (ECDSA P-384, allowed to sign); and the ES384 signature over the
/// Sig_structure built from the protected header bytes exactly as received.
///
/// Freshness is the caller's next step: [`VerifiedDocument::verify_nonce`] and
/// [`VerifiedDocument::verify_age`].
///
/// # Errors
/// The first check that fails, as its [`Error`] variant.
pub fn verify(bytes: &[u8], trust: &NitroTrust, now: UnixTime) -> Result<VerifiedDocument, Error> {
    ParsedDocument::parse(bytes)?.verify(trust, now)
}

/// As [`verify`], reusing the chains `cache` holds and adding to it.
///
/// # Errors
/// As [`verify`].
pub fn verify_with_cache(
    bytes: &[u8],
    trust: &NitroTrust,
    now: UnixTime,
    cache: &mut ChainCache,
) -> Result<VerifiedDocument, Error> {
    ParsedDocument::parse(bytes)?.verify_with_cache(trust, now, cache)
}

/// A Nitro attestation document whose signature verified with a leaf certificate that
/// chains to the pinned AWS root at the time given. Only this crate makes one.
#[derive(Debug, Clone)]
pub struct VerifiedDocument {
    document: AttestationDocument,
    chain_source: ChainSource,
}

impl VerifiedDocument {
    /// The verified document fields.
    pub const fn document(&self) -> &AttestationDocument {
        &self.document
    }

    /// How the certificate chain was established for this document.
    pub const fn chain_source(&self) -> ChainSource {
        self.chain_source
    }

    /// Whether the enclave runs in debug mode (PCR0, PCR1 and PCR2 all zero).
    pub fn is_debug(&self) -> bool {
        self.document.is_debug()
    }

    /// The key the enclave bound into the document (`public_key`), as a SubjectPublicKeyInfo
    /// plinth accepts (RSA 2048–8192, ECDSA P-256/P-384): the only key an SVID may be minted
    /// for.
    ///
    /// # Errors
    /// [`Error::PublicKeyMissing`] when the document has none; [`Error::PublicKeyNotSpki`]
    /// when its bytes are not such a SubjectPublicKeyInfo (the NSM accepts any bytes).
    pub fn bound_key(&self) -> Result<BoundKey, Error> {
        let bytes = self.document.public_key().ok_or(Error::PublicKeyMissing)?;
        let key = PublicKey::from_spki_der(bytes).map_err(|_| Error::PublicKeyNotSpki)?;
        Ok(BoundKey::from_spki_der(key.spki_der().to_vec()))
    }

    /// Checks, in constant time, that the document's nonce is `expected` (same length, same
    /// bytes; never padded or truncated).
    ///
    /// # Errors
    /// [`Error::NonceMissing`] when the document has no nonce, [`Error::NonceMismatch`]
    /// when it differs.
    pub fn verify_nonce(&self, expected: &[u8]) -> Result<(), Error> {
        let nonce = self.document.nonce().ok_or(Error::NonceMissing)?;
        plinth_crypto::verify_slices_equal(nonce, expected).map_err(|_| Error::NonceMismatch)
    }

    /// Checks that the document was produced at most `max_age_ms` before `now`, and not
    /// after `now` plus `max_skew_ms` (clock skew allowed between AWS and the caller).
    ///
    /// # Errors
    /// [`Error::DocumentTooOld`] or [`Error::TimestampInFuture`].
    pub fn verify_age(
        &self,
        now: UnixTime,
        max_age_ms: u64,
        max_skew_ms: u64,
    ) -> Result<(), Error> {
        let timestamp = self.document.timestamp();
        if timestamp.as_millis() > now.as_millis().saturating_add(max_skew_ms) {
            return Err(Error::TimestampInFuture { timestamp, now });
        }
        if now.as_millis().saturating_sub(timestamp.as_millis()) > max_age_ms {
            return Err(Error::DocumentTooOld {
                timestamp,
                now,
                max_age_ms,
            });
        }
        Ok(())
    }

    /// The normalized claims: every PCR as a measurement named `pcr<index>`, the module id as
    /// hardware id, the bound key when `public_key` is a SubjectPublicKeyInfo (otherwise
    /// none, so nothing can be minted from this document), the nonce, debug mode and the
    /// timestamp.
    pub fn claims(&self) -> Claims {
        Claims {
            platform: Platform::Nitro,
            hardware_id: Some(self.document.module_id().to_owned()),
            measurements: self
                .document
                .pcrs()
                .iter()
                .map(|(index, value)| Measurement {
                    name: format!("pcr{index}"),
                    value: value.clone(),
                })
                .collect(),
            bound_key: self.bound_key().ok(),
            nonce: self.document.nonce().map(<[u8]>::to_vec),
            debug: self.is_debug(),
            produced_at: Some(self.document.timestamp()),
        }
    }
}
