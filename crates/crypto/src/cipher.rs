use aws_lc_rs::agreement::{self, ECDH_P256, ECDH_P384, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::cipher::{AES_128, AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::PublicEncryptingKey;
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384};
use aws_lc_rs::rsa::{OAEP_SHA512_MGF1SHA512, OaepAlgorithm, OaepPublicEncryptingKey};
use plinth_core::{HashAlg, SecureRandom};
use zeroize::Zeroizing;

use crate::{CryptoError, Curve, KeyKind, PublicKey};

/// RSA-OAEP encryption of `plaintext` to `key` with MGF1 over `hash` and `label`.
///
/// # Errors
/// [`CryptoError::KeyRejected`] for a non-RSA key, [`CryptoError::OperationFailed`] when
/// the plaintext is too long for the key.
pub fn rsa_oaep_encrypt(
    key: &PublicKey,
    hash: HashAlg,
    plaintext: &[u8],
    label: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if !matches!(key.kind(), KeyKind::Rsa { .. }) {
        return Err(CryptoError::KeyRejected);
    }
    let algorithm: &'static OaepAlgorithm = match hash {
        HashAlg::Sha1 => &OAEP_SHA1_MGF1SHA1,
        HashAlg::Sha256 => &OAEP_SHA256_MGF1SHA256,
        HashAlg::Sha384 => &OAEP_SHA384_MGF1SHA384,
        HashAlg::Sha512 => &OAEP_SHA512_MGF1SHA512,
    };
    let public =
        PublicEncryptingKey::from_der(key.spki_der()).map_err(|_| CryptoError::KeyRejected)?;
    let oaep = OaepPublicEncryptingKey::new(public).map_err(|_| CryptoError::KeyRejected)?;
    let mut out = vec![0; oaep.ciphertext_size()];
    let written = oaep
        .encrypt(algorithm, plaintext, &mut out, Some(label))
        .map_err(|_| CryptoError::OperationFailed)?
        .len();
    out.truncate(written);
    Ok(out)
}

/// The result of an ephemeral ECDH exchange.
pub struct EcdhOutput {
    /// The shared secret Z: the x-coordinate of the shared point.
    pub shared_x: Zeroizing<Vec<u8>>,
    /// The ephemeral public key's x-coordinate.
    pub ephemeral_x: Vec<u8>,
    /// The ephemeral public key's y-coordinate.
    pub ephemeral_y: Vec<u8>,
}

/// How many times a random scalar may be out of range before giving up (each try fails
/// with probability about 2^-32).
const SCALAR_ATTEMPTS: usize = 8;

/// One-pass ECDH with an ephemeral key drawn from `rng`, against `peer` (P-256 or P-384).
///
/// # Errors
/// [`CryptoError::KeyRejected`] when `peer` is not an EC key on a supported curve,
/// [`CryptoError::Random`] or [`CryptoError::OperationFailed`] otherwise.
pub fn ecdh_ephemeral(peer: &PublicKey, rng: &dyn SecureRandom) -> Result<EcdhOutput, CryptoError> {
    let KeyKind::Ec(curve) = peer.kind() else {
        return Err(CryptoError::KeyRejected);
    };
    let algorithm = match curve {
        Curve::P256 => &ECDH_P256,
        Curve::P384 => &ECDH_P384,
    };
    let len = curve.coordinate_len();
    let private = (0..SCALAR_ATTEMPTS)
        .find_map(|_| {
            let mut scalar = Zeroizing::new(vec![0_u8; len]);
            match rng.fill(scalar.as_mut_slice()) {
                Ok(()) => PrivateKey::from_private_key(algorithm, scalar.as_slice())
                    .ok()
                    .map(Ok),
                Err(e) => Some(Err(CryptoError::Random(e))),
            }
        })
        .ok_or(CryptoError::OperationFailed)??;
    let public = private
        .compute_public_key()
        .map_err(|_| CryptoError::OperationFailed)?;
    let (ephemeral_x, ephemeral_y) = match public.as_ref().split_first() {
        Some((0x04, xy)) if xy.len() == 2 * len => {
            let (x, y) = xy.split_at(len);
            (x.to_vec(), y.to_vec())
        }
        _ => return Err(CryptoError::OperationFailed),
    };
    let peer = UnparsedPublicKey::new(algorithm, peer.spki_der());
    let shared_x = agreement::agree(&private, peer, CryptoError::OperationFailed, |z| {
        Ok(Zeroizing::new(z.to_vec()))
    })?;
    Ok(EcdhOutput {
        shared_x,
        ephemeral_x,
        ephemeral_y,
    })
}

/// AES-CFB (full-block feedback) encryption in place, as TPM 2.0 uses it for credential
/// and duplication blobs. `key` is 16 or 32 bytes.
///
/// # Errors
/// [`CryptoError::KeyRejected`] for another key length, [`CryptoError::OperationFailed`]
/// if the provider fails.
pub fn aes_cfb_encrypt(key: &[u8], iv: [u8; 16], in_out: &mut [u8]) -> Result<(), CryptoError> {
    let algorithm = match key.len() {
        16 => &AES_128,
        32 => &AES_256,
        _ => return Err(CryptoError::KeyRejected),
    };
    let key = UnboundCipherKey::new(algorithm, key).map_err(|_| CryptoError::KeyRejected)?;
    let key = EncryptingKey::cfb128(key).map_err(|_| CryptoError::OperationFailed)?;
    let _context = key
        .less_safe_encrypt(in_out, EncryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| CryptoError::OperationFailed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_128_cfb_known_answer() {
        // NIST SP 800-38A F.3.13, CFB128-AES128.Encrypt, first block.
        let key = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let iv: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f")
            .unwrap()
            .try_into()
            .unwrap();
        let mut block = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        aes_cfb_encrypt(&key, iv, &mut block).unwrap();
        assert_eq!(hex::encode(block), "3b3fd92eb72dad20333449f8e83cfb4a");
    }
}
