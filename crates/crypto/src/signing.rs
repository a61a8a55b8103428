//! ECDSA signing keys: the private half of plinth's signing core.
//!
//! An [`EcdsaSigningKey`] holds its private scalar inside aws-lc-rs and offers no getter
//! for it. The only way the private key leaves is [`EcdsaSigningKey::to_pkcs8`], for
//! writing it to its key file, in a buffer that is zeroized when dropped. AWS-LC
//! cleanses the memory of the key when the key is dropped (`OPENSSL_free` zeroes every
//! allocation it returns). `Debug` shows the curve and the public key, nothing else.
//!
//! Signing is aws-lc-rs's ECDSA (constant time in the private scalar and the nonce).
//! The nonce comes from AWS-LC's own DRBG, hedged with a SHA-512 of the private key and
//! the message digest, so an entropy failure does not reveal the key; aws-lc-rs gives no
//! way to supply that randomness, so [`EcdsaSigningKey::sign`] takes no
//! [`SecureRandom`] rather than pretend to use one.

use std::fmt;

use aws_lc_rs::agreement::{self, ECDH_P256, ECDH_P384};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, KeyPair,
};
use plinth_core::SecureRandom;
use zeroize::Zeroizing;

use crate::{CryptoError, Curve, PublicKey, ecdsa_der_from_scalars};

/// How many random scalars may fall outside `[1, n)` before generation gives up (each
/// try fails with probability below 2^-32).
const GENERATE_ATTEMPTS: usize = 8;

/// An ECDSA private key on P-256 (with SHA-256) or P-384 (with SHA-384).
pub struct EcdsaSigningKey {
    curve: Curve,
    key_pair: EcdsaKeyPair,
    public: PublicKey,
}

impl fmt::Debug for EcdsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EcdsaSigningKey({:?}, spki: {})",
            self.curve,
            hex_lower(self.public.spki_der())
        )
    }
}

const fn signing_algorithm(curve: Curve) -> &'static EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &ECDSA_P384_SHA384_FIXED_SIGNING,
    }
}

impl EcdsaSigningKey {
    /// Generates a key on `curve` whose private scalar is drawn from `rng`.
    ///
    /// # Errors
    /// [`CryptoError::Random`] when `rng` fails, [`CryptoError::OperationFailed`] if no
    /// valid scalar came out of eight draws or the provider fails.
    pub fn generate(curve: Curve, rng: &dyn SecureRandom) -> Result<Self, CryptoError> {
        let agreement_alg = match curve {
            Curve::P256 => &ECDH_P256,
            Curve::P384 => &ECDH_P384,
        };
        for _ in 0..GENERATE_ATTEMPTS {
            let mut scalar = Zeroizing::new(vec![0_u8; curve.coordinate_len()]);
            rng.fill(scalar.as_mut_slice())?;
            // The agreement key checks 0 < scalar < n and computes the public point.
            let Ok(private) = agreement::PrivateKey::from_private_key(agreement_alg, &scalar)
            else {
                continue;
            };
            let point = private
                .compute_public_key()
                .map_err(|_| CryptoError::OperationFailed)?;
            let key_pair = EcdsaKeyPair::from_private_key_and_public_key(
                signing_algorithm(curve),
                &scalar,
                point.as_ref(),
            )
            .map_err(|_| CryptoError::OperationFailed)?;
            return Self::from_key_pair(curve, key_pair);
        }
        Err(CryptoError::OperationFailed)
    }

    /// Loads an unencrypted PKCS#8 (RFC 5208/5958) ECDSA private key on `curve`. The
    /// provider checks that the embedded public key matches the private scalar.
    ///
    /// # Errors
    /// [`CryptoError::KeyRejected`] when the bytes are not such a key on that curve.
    pub fn from_pkcs8(curve: Curve, pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let key_pair = EcdsaKeyPair::from_pkcs8(signing_algorithm(curve), pkcs8)
            .map_err(|_| CryptoError::KeyRejected)?;
        Self::from_key_pair(curve, key_pair)
    }

    fn from_key_pair(curve: Curve, key_pair: EcdsaKeyPair) -> Result<Self, CryptoError> {
        let point = key_pair.public_key().as_ref();
        let len = curve.coordinate_len();
        let public = match point.split_first() {
            Some((0x04, xy)) if xy.len() == 2 * len => {
                let (x, y) = xy.split_at(len);
                PublicKey::ec(curve, x, y)?
            }
            _ => return Err(CryptoError::KeyRejected),
        };
        Ok(Self {
            curve,
            key_pair,
            public,
        })
    }

    /// The private key as PKCS#8 v1 DER, for writing to its key file and nothing else.
    /// The buffer is zeroized when dropped.
    ///
    /// # Errors
    /// [`CryptoError::OperationFailed`] if the provider cannot serialize the key.
    pub fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let document = self
            .key_pair
            .to_pkcs8v1()
            .map_err(|_| CryptoError::OperationFailed)?;
        Ok(Zeroizing::new(document.as_ref().to_vec()))
    }

    /// The curve.
    pub const fn curve(&self) -> Curve {
        self.curve
    }

    /// The public key (SubjectPublicKeyInfo).
    pub const fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `message` (hashed with SHA-256 on P-256, SHA-384 on P-384); the signature is
    /// the fixed-length big-endian `r ‖ s` ([`crate::SignatureScheme::EcdsaFixed`]).
    ///
    /// # Errors
    /// [`CryptoError::OperationFailed`] if the provider fails.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        // aws-lc-rs ignores this argument: the nonce comes from AWS-LC's hedged DRBG.
        let unused = aws_lc_rs::rand::SystemRandom::new();
        self.key_pair
            .sign(&unused, message)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| CryptoError::OperationFailed)
    }

    /// Signs `message` as [`EcdsaSigningKey::sign`] does, with the signature as a DER
    /// `Ecdsa-Sig-Value` ([`crate::SignatureScheme::EcdsaDer`]).
    ///
    /// # Errors
    /// [`CryptoError::OperationFailed`] if the provider fails.
    pub fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let fixed = self.sign(message)?;
        let (r, s) = fixed.split_at(fixed.len() / 2);
        ecdsa_der_from_scalars(r, s).map_err(|_| CryptoError::OperationFailed)
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _infallible = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use plinth_core::{HashAlg, RandomError};

    use super::*;
    use crate::SignatureScheme;

    /// Fills with a counter: deterministic keys for tests.
    struct CountingRandom(std::sync::atomic::AtomicU8);

    impl SecureRandom for CountingRandom {
        fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
            for b in dest {
                *b = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        }
    }

    struct FailingRandom;

    impl SecureRandom for FailingRandom {
        fn fill(&self, _dest: &mut [u8]) -> Result<(), RandomError> {
            Err(RandomError)
        }
    }

    #[test]
    fn signs_and_verifies_on_both_curves() {
        for (curve, hash) in [
            (Curve::P256, HashAlg::Sha256),
            (Curve::P384, HashAlg::Sha384),
        ] {
            let key = EcdsaSigningKey::generate(curve, &crate::SystemRandom).unwrap();
            let fixed = key.sign(b"message").unwrap();
            assert_eq!(fixed.len(), 2 * curve.coordinate_len());
            key.public_key()
                .verify(SignatureScheme::EcdsaFixed(hash), b"message", &fixed)
                .unwrap();
            let der = key.sign_der(b"message").unwrap();
            key.public_key()
                .verify(SignatureScheme::EcdsaDer(hash), b"message", &der)
                .unwrap();
            assert_eq!(
                key.public_key()
                    .verify(SignatureScheme::EcdsaFixed(hash), b"other", &fixed),
                Err(CryptoError::BadSignature)
            );
        }
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_key() {
        let key = EcdsaSigningKey::generate(Curve::P384, &crate::SystemRandom).unwrap();
        let pkcs8 = key.to_pkcs8().unwrap();
        let again = EcdsaSigningKey::from_pkcs8(Curve::P384, &pkcs8).unwrap();
        assert_eq!(again.public_key(), key.public_key());
    }

    #[test]
    fn rejects_pkcs8_of_another_curve_with_key_rejected() {
        let key = EcdsaSigningKey::generate(Curve::P256, &crate::SystemRandom).unwrap();
        let pkcs8 = key.to_pkcs8().unwrap();
        assert!(matches!(
            EcdsaSigningKey::from_pkcs8(Curve::P384, &pkcs8),
            Err(CryptoError::KeyRejected)
        ));
        assert!(matches!(
            EcdsaSigningKey::from_pkcs8(Curve::P256, b"not a key"),
            Err(CryptoError::KeyRejected)
        ));
    }

    #[test]
    fn generation_uses_the_given_rng() {
        let a = EcdsaSigningKey::generate(Curve::P256, &CountingRandom(1.into())).unwrap();
        let b = EcdsaSigningKey::generate(Curve::P256, &CountingRandom(1.into())).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert!(matches!(
            EcdsaSigningKey::generate(Curve::P256, &FailingRandom),
            Err(CryptoError::Random(RandomError))
        ));
    }

    /// Pins the Debug output: curve and public key only, never the scalar (01 02 .. 20).
    #[test]
    fn debug_shows_only_the_public_key() {
        let key = EcdsaSigningKey::generate(Curve::P256, &CountingRandom(1.into())).unwrap();
        let debug = format!("{key:?}");
        assert_eq!(
            debug,
            "EcdsaSigningKey(P256, spki: 3059301306072a8648ce3d020106082a8648ce3d030107034200\
             04515c3d6eb9e396b904d3feca7f54fdcd0cc1e997bf375dca515ad0a6c3b4035f4536be3a50f318fb\
             f9a5475902a221502bef0d57e08c53b2cc0a56f17d9f9354)"
        );
        let scalar: Vec<u8> = (1..=32).collect();
        assert!(!debug.contains(&hex_lower(&scalar)));
    }
}
