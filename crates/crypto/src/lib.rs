//! plinth's single cryptography provider.
//!
//! Everything plinth hashes, verifies, encrypts or draws at random goes through this crate,
//! and this crate is the only one that names aws-lc-rs (DESIGN.md says why: constant-time,
//! fast P-384 verification, a FIPS 140-3 mode behind the `fips` feature). Keeping the
//! surface this small means the provider can be audited, or swapped, in one place.
//!
//! What is here:
//! - [`digest`], [`Hasher`] and [`hmac`] over [`HashAlg`];
//! - [`PublicKey`]: RSA and ECDSA public keys held as SubjectPublicKeyInfo DER, with
//!   [`PublicKey::verify`] for every [`SignatureScheme`] plinth accepts;
//! - [`rsa_oaep_encrypt`], [`ecdh_ephemeral`] and [`aes_cfb_encrypt`] for TPM credential
//!   activation;
//! - [`SystemRandom`], the [`SecureRandom`] every caller is handed;
//! - [`verify_slices_equal`], the constant-time comparison.

mod canonical;
mod cipher;
mod hash;
mod key;
mod signing;

pub use canonical::canonical_spki;
pub use cipher::{EcdhOutput, aes_cfb_encrypt, ecdh_ephemeral, rsa_oaep_encrypt};
pub use hash::{Hasher, digest, hmac};
pub use key::{Curve, KeyKind, PublicKey, SignatureScheme, ecdsa_der_from_scalars};
pub use plinth_core::{HashAlg, RandomError, SecureRandom};
pub use signing::EcdsaSigningKey;

/// Why a cryptographic operation failed. Deliberately coarse: a failed signature check says
/// nothing about why, so it cannot become an oracle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The signature does not verify with this key over these bytes.
    #[error("signature does not verify")]
    BadSignature,
    /// The key and scheme pair is not one plinth accepts (for example ECDSA P-384 with SHA-1).
    #[error("unsupported signature scheme {scheme:?} for a {kind:?} key")]
    UnsupportedScheme {
        /// The scheme asked for.
        scheme: SignatureScheme,
        /// The key it was asked of.
        kind: KeyKind,
    },
    /// A public key could not be decoded or is not acceptable (size, curve, point).
    #[error("public key rejected")]
    KeyRejected,
    /// An encryption or key-agreement primitive failed.
    #[error("cryptographic operation failed")]
    OperationFailed,
    /// Two values that had to be equal were not.
    #[error("values differ")]
    Mismatch,
    /// The random number generator failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// The operating system's CSPRNG, through aws-lc-rs.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl SecureRandom for SystemRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        aws_lc_rs::rand::fill(dest).map_err(|_| RandomError)
    }
}

/// Compares two byte strings in constant time (for equal lengths).
///
/// # Errors
/// [`CryptoError::Mismatch`] when they differ in content or length.
pub fn verify_slices_equal(a: &[u8], b: &[u8]) -> Result<(), CryptoError> {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).map_err(|_| CryptoError::Mismatch)
}
