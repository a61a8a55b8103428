//! [`SignedData`]: the three parts every signed X.509 structure shares, certificates
//! (RFC 5280 section 4.1) and CRLs (section 5.1) alike:
//! `SEQUENCE { tbs, signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }`.

use plinth_crypto::{CryptoError, PublicKey, SignatureScheme};

use crate::der::{Reader, TAG_BIT_STRING, TAG_SEQUENCE};
use crate::{Error, algorithm};

/// The signed part as received, the outer algorithm and the signature, split by this
/// crate's own reader so that the bytes a signature covers are located exactly.
#[derive(Clone)]
pub(crate) struct SignedData {
    tbs: Vec<u8>,
    signature_algorithm: Vec<u8>,
    signature: Vec<u8>,
}

impl SignedData {
    /// Splits `der`, which must be exactly one such SEQUENCE. `outer` and `tbs` name the
    /// structure and its signed part in errors ([`Error::Malformed`]).
    pub(crate) fn split(der: &[u8], outer: &'static str, tbs: &'static str) -> Result<Self, Error> {
        let mut whole = Reader::new(der);
        let seq = whole.read_tag(TAG_SEQUENCE, outer)?;
        whole.finish(outer)?;
        let mut parts = Reader::new(seq.value);
        let tbs = parts.read_tag(TAG_SEQUENCE, tbs)?;
        let signature_algorithm = parts.read_tag(TAG_SEQUENCE, "signatureAlgorithm")?;
        let signature_bits = parts.read_tag(TAG_BIT_STRING, "signatureValue")?;
        parts.finish(outer)?;
        let Some((0, signature)) = signature_bits.value.split_first() else {
            return Err(Error::Malformed(
                "signatureValue has unused bits".to_owned(),
            ));
        };
        Ok(Self {
            tbs: tbs.whole.to_vec(),
            signature_algorithm: signature_algorithm.whole.to_vec(),
            signature: signature.to_vec(),
        })
    }

    /// The signed part (TBSCertificate, TBSCertList) exactly as received.
    pub(crate) fn tbs(&self) -> &[u8] {
        &self.tbs
    }

    /// The outer `signatureAlgorithm` `AlgorithmIdentifier` DER.
    pub(crate) fn signature_algorithm(&self) -> &[u8] {
        &self.signature_algorithm
    }

    /// The signature bytes (BIT STRING contents without the unused-bits octet).
    pub(crate) fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The scheme the signer's key must verify the signature with.
    pub(crate) fn scheme(&self) -> Result<SignatureScheme, Error> {
        algorithm::signature_scheme(&self.signature_algorithm)
    }

    /// Verifies the signature with `key` over the signed part as received. A signature
    /// that does not verify becomes `invalid()`, a key that cannot make this kind of
    /// signature `mismatch()`.
    pub(crate) fn verify(
        &self,
        key: &PublicKey,
        invalid: impl FnOnce() -> Error,
        mismatch: impl FnOnce() -> Error,
    ) -> Result<(), Error> {
        key.verify(self.scheme()?, &self.tbs, &self.signature)
            .map_err(|e| match e {
                CryptoError::BadSignature => invalid(),
                CryptoError::UnsupportedScheme { .. } => mismatch(),
                other => Error::Crypto(other),
            })
    }
}
