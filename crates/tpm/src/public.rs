//! TPMT_PUBLIC: the public area of a TPM object (TPM 2.0 Part 2, §12.2.4).

use std::fmt;

use plinth_core::HashAlg;
use plinth_crypto::{Curve, Hasher, PublicKey};

use crate::Error;
use crate::alg::{self, TPM_ALG_AES, TPM_ALG_CFB, TPM_ALG_ECC, TPM_ALG_NULL, TPM_ALG_RSA};
use crate::codec::Reader;

/// Largest digest a TPM2B_DIGEST may carry (SHA-512).
pub(crate) const MAX_DIGEST: usize = 64;
/// Largest RSA modulus accepted: 4096 bits.
const MAX_RSA_MODULUS: usize = 512;
/// Largest ECC coordinate accepted (P-521 would be 66; plinth supports up to P-384).
const MAX_ECC_COORDINATE: usize = 66;
/// Default RSA public exponent, encoded by the TPM as 0.
const DEFAULT_RSA_EXPONENT: u32 = 65_537;

/// TPMA_OBJECT bits (Part 2, §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectAttributes(u32);

impl ObjectAttributes {
    const FIXED_TPM: u32 = 1 << 1;
    const FIXED_PARENT: u32 = 1 << 4;
    const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    const RESTRICTED: u32 = 1 << 16;
    const DECRYPT: u32 = 1 << 17;
    const SIGN: u32 = 1 << 18;

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
    const fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
    /// The object cannot be duplicated out of its TPM.
    pub const fn fixed_tpm(self) -> bool {
        self.has(Self::FIXED_TPM)
    }
    /// The object cannot be duplicated to another parent.
    pub const fn fixed_parent(self) -> bool {
        self.has(Self::FIXED_PARENT)
    }
    /// The TPM generated the private part itself.
    pub const fn sensitive_data_origin(self) -> bool {
        self.has(Self::SENSITIVE_DATA_ORIGIN)
    }
    /// The key only signs TPM-generated structures (or only decrypts TPM structures).
    pub const fn restricted(self) -> bool {
        self.has(Self::RESTRICTED)
    }
    /// A decryption key.
    pub const fn decrypt(self) -> bool {
        self.has(Self::DECRYPT)
    }
    /// A signing key.
    pub const fn sign(self) -> bool {
        self.has(Self::SIGN)
    }
}

/// A symmetric definition (TPMT_SYM_DEF_OBJECT) usable for credential protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symmetric {
    /// TPM_ALG_NULL: none.
    Null,
    /// AES in CFB mode with a key of this many bits.
    AesCfb {
        /// Key size in bits (128 or 256).
        key_bits: u16,
    },
    /// Any other definition, kept so that it can be refused where it matters.
    Other {
        /// The algorithm.
        algorithm: u16,
        /// Key bits.
        key_bits: u16,
        /// Mode.
        mode: u16,
    },
}

/// A signing or encryption scheme with its hash, as found in a key's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    /// The TPM_ALG_ID of the scheme (TPM_ALG_NULL when the key leaves it open).
    pub scheme: u16,
    /// Its hash, when the scheme has one.
    pub hash: Option<u16>,
}

/// The type-specific part of a public area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyParameters {
    /// An RSA key.
    Rsa {
        /// Scheme.
        scheme: Scheme,
        /// Modulus size in bits.
        key_bits: u16,
        /// Public exponent.
        exponent: u32,
        /// Modulus, big-endian.
        modulus: Vec<u8>,
    },
    /// An ECC key.
    Ecc {
        /// Scheme.
        scheme: Scheme,
        /// Curve.
        curve: Curve,
        /// X coordinate, big-endian.
        x: Vec<u8>,
        /// Y coordinate, big-endian.
        y: Vec<u8>,
    },
}

/// A parsed TPMT_PUBLIC that keeps the exact bytes it was parsed from, because an object's
/// name is the hash of those bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Public {
    raw: Vec<u8>,
    name_alg: HashAlg,
    attributes: ObjectAttributes,
    auth_policy: Vec<u8>,
    symmetric: Symmetric,
    parameters: KeyParameters,
}

impl fmt::Debug for Public {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Public")
            .field("name", &hex::encode(self.name()))
            .field("attributes", &self.attributes)
            .field("parameters", &self.parameters)
            .finish_non_exhaustive()
    }
}

impl Public {
    /// Parses a TPMT_PUBLIC that must fill `bytes` exactly.
    ///
    /// # Errors
    /// A parse error naming what is wrong; [`Error::TrailingBytes`] for leftovers.
    pub fn from_tpmt(bytes: &[u8]) -> Result<Self, Error> {
        let mut reader = Reader::new(bytes, "TPMT_PUBLIC");
        let public = Self::read(&mut reader, bytes)?;
        reader.finish()?;
        Ok(public)
    }

    /// Parses a TPM2B_PUBLIC (a 16-bit size, then a TPMT_PUBLIC of exactly that size).
    ///
    /// # Errors
    /// As [`Public::from_tpmt`]; the size must cover the rest of `bytes` exactly.
    pub fn from_tpm2b(bytes: &[u8]) -> Result<Self, Error> {
        let mut reader = Reader::new(bytes, "TPM2B_PUBLIC");
        let inner = reader.tpm2b("TPM2B_PUBLIC", usize::from(u16::MAX))?;
        reader.finish()?;
        Self::from_tpmt(inner)
    }

    /// Parses either form: a TPM2B_PUBLIC when the leading size covers exactly the rest.
    ///
    /// # Errors
    /// As [`Public::from_tpmt`].
    pub fn from_either(bytes: &[u8]) -> Result<Self, Error> {
        match bytes {
            [hi, lo, rest @ ..] if usize::from(u16::from_be_bytes([*hi, *lo])) == rest.len() => {
                Self::from_tpm2b(bytes)
            }
            _ => Self::from_tpmt(bytes),
        }
    }

    fn read(reader: &mut Reader<'_>, all: &[u8]) -> Result<Self, Error> {
        let key_type = reader.u16()?;
        let name_alg_id = reader.u16()?;
        let name_alg = alg::hash_alg("nameAlg", name_alg_id)?;
        let attributes = ObjectAttributes(reader.u32()?);
        let auth_policy = reader.tpm2b("authPolicy", MAX_DIGEST)?.to_vec();
        let symmetric = read_symmetric(reader)?;
        let parameters = match key_type {
            TPM_ALG_RSA => {
                let scheme = read_scheme(reader, "RSA scheme")?;
                let key_bits = reader.u16()?;
                let exponent = match reader.u32()? {
                    0 => DEFAULT_RSA_EXPONENT,
                    e => e,
                };
                let modulus = reader.tpm2b("RSA modulus", MAX_RSA_MODULUS)?.to_vec();
                if modulus.len().saturating_mul(8) != usize::from(key_bits) {
                    return Err(Error::InvalidValue {
                        field: "RSA keyBits",
                        value: key_bits.into(),
                    });
                }
                KeyParameters::Rsa {
                    scheme,
                    key_bits,
                    exponent,
                    modulus,
                }
            }
            TPM_ALG_ECC => {
                let scheme = read_scheme(reader, "ECC scheme")?;
                let curve = alg::curve(reader.u16()?)?;
                let _kdf = read_scheme(reader, "ECC KDF")?;
                let x = reader.tpm2b("ECC x", MAX_ECC_COORDINATE)?.to_vec();
                let y = reader.tpm2b("ECC y", MAX_ECC_COORDINATE)?.to_vec();
                KeyParameters::Ecc {
                    scheme,
                    curve,
                    x,
                    y,
                }
            }
            other => {
                return Err(Error::UnsupportedAlgorithm {
                    field: "TPMT_PUBLIC type",
                    alg: other,
                });
            }
        };
        Ok(Self {
            raw: all.to_vec(),
            name_alg,
            attributes,
            auth_policy,
            symmetric,
            parameters,
        })
    }

    /// The exact TPMT_PUBLIC bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The name algorithm.
    pub const fn name_alg(&self) -> HashAlg {
        self.name_alg
    }

    /// The object's name: nameAlg (big-endian TPM_ALG_ID) ‖ H_nameAlg(TPMT_PUBLIC).
    pub fn name(&self) -> Vec<u8> {
        let mut hasher = Hasher::new(self.name_alg);
        hasher.update(&self.raw);
        let digest = hasher.finish();
        let mut name = alg::hash_alg_id(self.name_alg).to_be_bytes().to_vec();
        name.extend_from_slice(digest.as_bytes());
        name
    }

    /// The object attributes.
    pub const fn attributes(&self) -> ObjectAttributes {
        self.attributes
    }

    /// The authorization policy digest (empty when none).
    pub fn auth_policy(&self) -> &[u8] {
        &self.auth_policy
    }

    /// The symmetric definition (for storage keys and EKs).
    pub const fn symmetric(&self) -> Symmetric {
        self.symmetric
    }

    /// The type-specific parameters and unique field.
    pub const fn parameters(&self) -> &KeyParameters {
        &self.parameters
    }

    /// The signing or encryption scheme fixed in the key (TPM_ALG_NULL if left open).
    pub const fn scheme(&self) -> Scheme {
        match &self.parameters {
            KeyParameters::Rsa { scheme, .. } | KeyParameters::Ecc { scheme, .. } => *scheme,
        }
    }

    /// The public key, for the crypto provider.
    ///
    /// # Errors
    /// [`Error::Crypto`] when the provider rejects the key (size, point not on curve).
    pub fn public_key(&self) -> Result<PublicKey, Error> {
        Ok(match &self.parameters {
            KeyParameters::Rsa {
                exponent, modulus, ..
            } => PublicKey::rsa(modulus, &exponent.to_be_bytes())?,
            KeyParameters::Ecc { curve, x, y, .. } => PublicKey::ec(*curve, x, y)?,
        })
    }
}

fn read_symmetric(reader: &mut Reader<'_>) -> Result<Symmetric, Error> {
    let algorithm = reader.u16()?;
    if algorithm == TPM_ALG_NULL {
        return Ok(Symmetric::Null);
    }
    let key_bits = reader.u16()?;
    let mode = reader.u16()?;
    Ok(match (algorithm, mode) {
        (TPM_ALG_AES, TPM_ALG_CFB) => Symmetric::AesCfb { key_bits },
        _ => Symmetric::Other {
            algorithm,
            key_bits,
            mode,
        },
    })
}

/// Reads a TPMT_*_SCHEME: the scheme, then (unless NULL or a scheme without details) its
/// hash, then ECDAA's counter.
fn read_scheme(reader: &mut Reader<'_>, field: &'static str) -> Result<Scheme, Error> {
    use crate::alg::{
        TPM_ALG_ECDAA, TPM_ALG_ECDH, TPM_ALG_ECDSA, TPM_ALG_ECSCHNORR, TPM_ALG_OAEP, TPM_ALG_RSAES,
        TPM_ALG_RSAPSS, TPM_ALG_RSASSA, TPM_ALG_SM2,
    };
    let scheme = reader.u16()?;
    let hash = match scheme {
        TPM_ALG_NULL | TPM_ALG_RSAES => None,
        TPM_ALG_ECDAA => {
            let hash = reader.u16()?;
            let _count = reader.u16()?;
            Some(hash)
        }
        // The signing and encryption schemes, and the KDF schemes (MGF1 0x0007,
        // KDF1_SP800_56A 0x0020, KDF2 0x0021, KDF1_SP800_108 0x0022), all carry a hash.
        TPM_ALG_RSASSA
        | TPM_ALG_RSAPSS
        | TPM_ALG_OAEP
        | TPM_ALG_ECDSA
        | TPM_ALG_ECDH
        | TPM_ALG_SM2
        | TPM_ALG_ECSCHNORR
        | 0x0007
        | 0x0020..=0x0022 => Some(reader.u16()?),
        other => return Err(Error::UnsupportedAlgorithm { field, alg: other }),
    };
    Ok(Scheme { scheme, hash })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GCE_AK: &[u8] =
        include_bytes!("../../../testdata/tpm/quotes/gce-cos85/ak_pub.tpmt_public.bin");

    #[test]
    fn parses_gce_ak() {
        let ak = Public::from_tpmt(GCE_AK).unwrap();
        assert_eq!(ak.name_alg(), HashAlg::Sha256);
        assert!(ak.attributes().restricted() && ak.attributes().sign());
        assert!(matches!(
            ak.parameters(),
            KeyParameters::Rsa { key_bits: 2048, .. }
        ));
        assert!(ak.public_key().is_ok());
        let mut tpm2b = u16::try_from(GCE_AK.len()).unwrap().to_be_bytes().to_vec();
        tpm2b.extend_from_slice(GCE_AK);
        assert_eq!(Public::from_either(&tpm2b).unwrap(), ak);
        assert_eq!(Public::from_either(GCE_AK).unwrap(), ak);
    }

    #[test]
    fn rejects_truncated_public_with_truncated() {
        for len in 0..GCE_AK.len() {
            let err = Public::from_tpmt(&GCE_AK[..len]).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Truncated { .. } | Error::TooLarge { .. } | Error::InvalidValue { .. }
                ),
                "{len}: {err:?}"
            );
        }
        assert_eq!(
            Public::from_tpmt(&GCE_AK[..10]).unwrap_err(),
            Error::Truncated {
                structure: "TPMT_PUBLIC"
            }
        );
    }

    #[test]
    fn rejects_trailing_bytes_in_public_with_trailing_bytes() {
        let mut long = GCE_AK.to_vec();
        long.push(0);
        assert_eq!(
            Public::from_tpmt(&long),
            Err(Error::TrailingBytes {
                structure: "TPMT_PUBLIC",
                extra: 1
            })
        );
    }
}
