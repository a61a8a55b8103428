use aws_lc_rs::signature::{self as lc_sig, UnparsedPublicKey, VerificationAlgorithm};
use der::asn1::{BitStringRef, ObjectIdentifier, UintRef};
use der::{Any, Decode, Encode};
use plinth_core::HashAlg;
use spki::{AlgorithmIdentifier, SubjectPublicKeyInfo, SubjectPublicKeyInfoRef};

use crate::CryptoError;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// An elliptic curve plinth accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Curve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
}

impl Curve {
    /// Length of one coordinate (and of r and s) in bytes.
    pub const fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }

    const fn oid(self) -> ObjectIdentifier {
        match self {
            Self::P256 => SECP256R1,
            Self::P384 => SECP384R1,
        }
    }
}

/// What kind of public key a [`PublicKey`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// RSA with a modulus of this many bits.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// ECDSA / ECDH on this curve.
    Ec(Curve),
}

/// A signature scheme: padding or algorithm, with its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1(HashAlg),
    /// RSASSA-PSS with MGF1 of the same hash and a salt as long as the hash.
    RsaPss(HashAlg),
    /// ECDSA, signature as a DER `Ecdsa-Sig-Value`.
    EcdsaDer(HashAlg),
    /// ECDSA, signature as fixed-length big-endian `r ‖ s`.
    EcdsaFixed(HashAlg),
}

/// A public key, kept as the SubjectPublicKeyInfo DER it was given or built as.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    kind: KeyKind,
    spki: Vec<u8>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({:?})", self.kind)
    }
}

/// RSA moduli below this many bits are refused.
const MIN_RSA_BITS: usize = 2048;
/// RSA moduli above this many bits are refused (AMD's ARK is 4096).
const MAX_RSA_BITS: usize = 8192;

impl PublicKey {
    /// Builds an RSA key from its big-endian modulus and public exponent.
    ///
    /// # Errors
    /// [`CryptoError::KeyRejected`] for a modulus outside 2048..=8192 bits or a bad encoding.
    pub fn rsa(modulus: &[u8], exponent: &[u8]) -> Result<Self, CryptoError> {
        let rsa = pkcs1::RsaPublicKey {
            modulus: UintRef::new(modulus).map_err(|_| CryptoError::KeyRejected)?,
            public_exponent: UintRef::new(exponent).map_err(|_| CryptoError::KeyRejected)?,
        };
        let inner = rsa.to_der().map_err(|_| CryptoError::KeyRejected)?;
        let spki = encode_spki(RSA_ENCRYPTION, Some(Any::null()), &inner)?;
        Self::from_spki_der(&spki)
    }

    /// Builds an EC key from its big-endian affine coordinates.
    ///
    /// # Errors
    /// [`CryptoError::KeyRejected`] when a coordinate has the wrong length or the point is
    /// not on the curve.
    pub fn ec(curve: Curve, x: &[u8], y: &[u8]) -> Result<Self, CryptoError> {
        let len = curve.coordinate_len();
        if x.len() != len || y.len() != len {
            return Err(CryptoError::KeyRejected);
        }
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(0x04);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        let params = Any::encode_from(&curve.oid()).map_err(|_| CryptoError::KeyRejected)?;
        let spki = encode_spki(EC_PUBLIC_KEY, Some(params), &point)?;
        Self::from_spki_der(&spki)
    }

    /// Decodes and checks a DER SubjectPublicKeyInfo (RSA, or EC on P-256/P-384).
    ///
    /// # Errors
    /// [`CryptoError::KeyRejected`] for anything else, or a key the provider refuses.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, CryptoError> {
        let info = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| CryptoError::KeyRejected)?;
        let key_bytes = info
            .subject_public_key
            .as_bytes()
            .ok_or(CryptoError::KeyRejected)?;
        let kind = match info.algorithm.oid {
            RSA_ENCRYPTION => {
                let rsa = pkcs1::RsaPublicKey::from_der(key_bytes)
                    .map_err(|_| CryptoError::KeyRejected)?;
                let modulus = rsa.modulus.as_bytes();
                let bits = modulus.len().saturating_mul(8)
                    - usize::try_from(modulus.first().map_or(0, |b| b.leading_zeros()))
                        .map_err(|_| CryptoError::KeyRejected)?;
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(CryptoError::KeyRejected);
                }
                KeyKind::Rsa { bits }
            }
            EC_PUBLIC_KEY => {
                let curve_oid = info
                    .algorithm
                    .parameters
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                    .ok_or(CryptoError::KeyRejected)?;
                let curve = match curve_oid {
                    SECP256R1 => Curve::P256,
                    SECP384R1 => Curve::P384,
                    _ => return Err(CryptoError::KeyRejected),
                };
                // Let the provider check the point is on the curve, now rather than later.
                let probe: &'static dyn VerificationAlgorithm = match curve {
                    Curve::P256 => &lc_sig::ECDSA_P256_SHA256_ASN1,
                    Curve::P384 => &lc_sig::ECDSA_P384_SHA384_ASN1,
                };
                let _parsed = UnparsedPublicKey::new(probe, der)
                    .parse()
                    .map_err(|_| CryptoError::KeyRejected)?;
                KeyKind::Ec(curve)
            }
            _ => return Err(CryptoError::KeyRejected),
        };
        Ok(Self {
            kind,
            spki: der.to_vec(),
        })
    }

    /// What kind of key this is.
    pub const fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Verifies `signature` over `message` with this key under `scheme`.
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedScheme`] when the scheme does not fit the key,
    /// [`CryptoError::BadSignature`] when the signature does not verify.
    pub fn verify(
        &self,
        scheme: SignatureScheme,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let algorithm = self.verification_algorithm(scheme)?;
        UnparsedPublicKey::new(algorithm, &self.spki)
            .verify(message, signature)
            .map_err(|_| CryptoError::BadSignature)
    }

    fn verification_algorithm(
        &self,
        scheme: SignatureScheme,
    ) -> Result<&'static dyn VerificationAlgorithm, CryptoError> {
        use HashAlg::{Sha1, Sha256, Sha384, Sha512};
        use SignatureScheme::{EcdsaDer, EcdsaFixed, RsaPkcs1, RsaPss};
        let algorithm: &'static dyn VerificationAlgorithm = match (self.kind, scheme) {
            (KeyKind::Rsa { .. }, RsaPkcs1(Sha1)) => {
                &lc_sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
            }
            (KeyKind::Rsa { .. }, RsaPkcs1(Sha256)) => &lc_sig::RSA_PKCS1_2048_8192_SHA256,
            (KeyKind::Rsa { .. }, RsaPkcs1(Sha384)) => &lc_sig::RSA_PKCS1_2048_8192_SHA384,
            (KeyKind::Rsa { .. }, RsaPkcs1(Sha512)) => &lc_sig::RSA_PKCS1_2048_8192_SHA512,
            (KeyKind::Rsa { .. }, RsaPss(Sha256)) => &lc_sig::RSA_PSS_2048_8192_SHA256,
            (KeyKind::Rsa { .. }, RsaPss(Sha384)) => &lc_sig::RSA_PSS_2048_8192_SHA384,
            (KeyKind::Rsa { .. }, RsaPss(Sha512)) => &lc_sig::RSA_PSS_2048_8192_SHA512,
            (KeyKind::Ec(Curve::P256), EcdsaDer(Sha1)) => &lc_sig::ECDSA_P256_SHA1_ASN1,
            (KeyKind::Ec(Curve::P256), EcdsaDer(Sha256)) => &lc_sig::ECDSA_P256_SHA256_ASN1,
            (KeyKind::Ec(Curve::P256), EcdsaDer(Sha384)) => &lc_sig::ECDSA_P256_SHA384_ASN1,
            (KeyKind::Ec(Curve::P256), EcdsaDer(Sha512)) => &lc_sig::ECDSA_P256_SHA512_ASN1,
            (KeyKind::Ec(Curve::P384), EcdsaDer(Sha256)) => &lc_sig::ECDSA_P384_SHA256_ASN1,
            (KeyKind::Ec(Curve::P384), EcdsaDer(Sha384)) => &lc_sig::ECDSA_P384_SHA384_ASN1,
            (KeyKind::Ec(Curve::P384), EcdsaDer(Sha512)) => &lc_sig::ECDSA_P384_SHA512_ASN1,
            (KeyKind::Ec(Curve::P256), EcdsaFixed(Sha256)) => &lc_sig::ECDSA_P256_SHA256_FIXED,
            (KeyKind::Ec(Curve::P384), EcdsaFixed(Sha384)) => &lc_sig::ECDSA_P384_SHA384_FIXED,
            (kind, scheme) => return Err(CryptoError::UnsupportedScheme { scheme, kind }),
        };
        Ok(algorithm)
    }
}

fn encode_spki(
    oid: ObjectIdentifier,
    parameters: Option<Any>,
    key: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let info = SubjectPublicKeyInfo::<Any, BitStringRef<'_>> {
        algorithm: AlgorithmIdentifier { oid, parameters },
        subject_public_key: BitStringRef::from_bytes(key).map_err(|_| CryptoError::KeyRejected)?,
    };
    info.to_der().map_err(|_| CryptoError::KeyRejected)
}

/// Encodes big-endian ECDSA scalars `r` and `s` (as a TPM or SNP report carries them) as
/// a DER `Ecdsa-Sig-Value`, the form [`SignatureScheme::EcdsaDer`] takes.
///
/// # Errors
/// [`CryptoError::BadSignature`] when a scalar cannot be encoded (empty, or too long).
pub fn ecdsa_der_from_scalars(r: &[u8], s: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let encode = || -> der::Result<Vec<u8>> {
        let r = UintRef::new(r)?;
        let s = UintRef::new(s)?;
        let body_len = (r.encoded_len()? + s.encoded_len()?)?;
        let mut out = Vec::new();
        let _header_len =
            der::Header::new(der::Tag::Sequence, body_len)?.encode_to_vec(&mut out)?;
        let _r_len = r.encode_to_vec(&mut out)?;
        let _s_len = s.encode_to_vec(&mut out)?;
        Ok(out)
    };
    encode().map_err(|_| CryptoError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_must_be_on_curve() {
        assert_eq!(
            PublicKey::ec(Curve::P256, &[1; 32], &[2; 32]),
            Err(CryptoError::KeyRejected)
        );
        assert_eq!(
            PublicKey::ec(Curve::P256, &[1; 31], &[2; 32]),
            Err(CryptoError::KeyRejected)
        );
    }

    #[test]
    fn small_rsa_rejected() {
        let mut modulus = vec![0xc5; 128];
        modulus[127] |= 1;
        assert_eq!(
            PublicKey::rsa(&modulus, &[1, 0, 1]),
            Err(CryptoError::KeyRejected)
        );
    }

    #[test]
    fn scalars_encode_as_der_integers() {
        let der = ecdsa_der_from_scalars(&[0x00, 0x80], &[0x01]).unwrap();
        assert_eq!(der, [0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x01]);
    }
}
