//! TPMT_SIGNATURE (TPM 2.0 Part 2, §11.3.4) and its verification over received bytes.

use plinth_core::HashAlg;
use plinth_crypto::{SignatureScheme, ecdsa_der_from_scalars};

use crate::Error;
use crate::alg::{self, TPM_ALG_ECDSA, TPM_ALG_NULL, TPM_ALG_RSAPSS, TPM_ALG_RSASSA};
use crate::codec::Reader;
use crate::public::{KeyParameters, Public};

/// Largest RSA signature (4096-bit key).
const MAX_RSA_SIGNATURE: usize = 512;
/// Largest ECDSA scalar accepted.
const MAX_ECC_SCALAR: usize = 66;

/// A parsed TPMT_SIGNATURE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signature {
    /// TPM_ALG_ID of the scheme.
    scheme: u16,
    hash: HashAlg,
    /// The signature in the form the provider verifies (DER for ECDSA).
    provider_form: Vec<u8>,
}

impl Signature {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "TPMT_SIGNATURE");
        let scheme = r.u16()?;
        let (hash, provider_form) = match scheme {
            TPM_ALG_RSASSA | TPM_ALG_RSAPSS => {
                let hash = alg::hash_alg("signature hash", r.u16()?)?;
                (hash, r.tpm2b("RSA signature", MAX_RSA_SIGNATURE)?.to_vec())
            }
            TPM_ALG_ECDSA => {
                let hash = alg::hash_alg("signature hash", r.u16()?)?;
                let sig_r = r.tpm2b("ECDSA r", MAX_ECC_SCALAR)?;
                let sig_s = r.tpm2b("ECDSA s", MAX_ECC_SCALAR)?;
                (
                    hash,
                    ecdsa_der_from_scalars(sig_r, sig_s).map_err(|_| Error::SignatureInvalid)?,
                )
            }
            other => {
                return Err(Error::UnsupportedAlgorithm {
                    field: "signature scheme",
                    alg: other,
                });
            }
        };
        r.finish()?;
        Ok(Self {
            scheme,
            hash,
            provider_form,
        })
    }

    /// The hash the TPM signed with; also the hash of a quote's pcrDigest.
    pub(crate) const fn hash(&self) -> HashAlg {
        self.hash
    }

    /// Verifies this signature over `message` (the bytes exactly as received) with `key`.
    ///
    /// The scheme must suit the key type, and equal the key's own scheme when the key
    /// fixes one.
    pub(crate) fn verify(&self, key: &Public, message: &[u8]) -> Result<(), Error> {
        let crypto_scheme = match (key.parameters(), self.scheme) {
            (KeyParameters::Rsa { .. }, TPM_ALG_RSASSA) => SignatureScheme::RsaPkcs1(self.hash),
            (KeyParameters::Rsa { .. }, TPM_ALG_RSAPSS) => SignatureScheme::RsaPss(self.hash),
            (KeyParameters::Ecc { .. }, TPM_ALG_ECDSA) => SignatureScheme::EcdsaDer(self.hash),
            _ => return Err(Error::SignatureSchemeMismatch),
        };
        let fixed = key.scheme();
        if fixed.scheme != TPM_ALG_NULL
            && (fixed.scheme != self.scheme || fixed.hash != Some(alg::hash_alg_id(self.hash)))
        {
            return Err(Error::SignatureSchemeMismatch);
        }
        key.public_key()?
            .verify(crypto_scheme, message, &self.provider_form)
            .map_err(|e| match e {
                plinth_crypto::CryptoError::BadSignature => Error::SignatureInvalid,
                other => Error::Crypto(other),
            })
    }
}
