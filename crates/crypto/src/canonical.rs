//! One encoding per public key, so keys from different sources compare by their material.

use der::Decode;
use spki::SubjectPublicKeyInfoRef;

use crate::{CryptoError, KeyKind, PublicKey};

/// The `SubjectPublicKeyInfo` DER of `key` in the one form [`PublicKey::rsa`] and
/// [`PublicKey::ec`] produce: RSA modulus and exponent as minimal INTEGERs with NULL
/// parameters; EC as the named curve and the uncompressed point.
///
/// Two keys are the same key exactly when their canonical forms are equal, however their
/// certificates or TPM structures happened to encode them; hashes of this form make
/// stable allow-list entries.
///
/// # Errors
/// [`CryptoError::KeyRejected`] when the key cannot be decoded (for example an EC key
/// given as a compressed point).
pub fn canonical_spki(key: &PublicKey) -> Result<Vec<u8>, CryptoError> {
    let info =
        SubjectPublicKeyInfoRef::from_der(key.spki_der()).map_err(|_| CryptoError::KeyRejected)?;
    let key_bytes = info
        .subject_public_key
        .as_bytes()
        .ok_or(CryptoError::KeyRejected)?;
    let canonical = match key.kind() {
        KeyKind::Rsa { .. } => {
            let rsa =
                pkcs1::RsaPublicKey::from_der(key_bytes).map_err(|_| CryptoError::KeyRejected)?;
            PublicKey::rsa(rsa.modulus.as_bytes(), rsa.public_exponent.as_bytes())?
        }
        KeyKind::Ec(curve) => {
            let len = curve.coordinate_len();
            let coordinates = match key_bytes.split_first() {
                Some((0x04, xy)) if xy.len() == 2 * len => xy,
                _ => return Err(CryptoError::KeyRejected),
            };
            let (x, y) = coordinates.split_at(len);
            PublicKey::ec(curve, x, y)?
        }
    };
    Ok(canonical.spki_der().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_encodings_collapse() {
        // A 2048-bit modulus (top bit set, odd) and e = 65537 written with leading zeros.
        let mut modulus = vec![0xc3; 256];
        modulus[255] |= 1;
        let a = PublicKey::rsa(&modulus, &[1, 0, 1]).unwrap();
        let b = PublicKey::rsa(&modulus, &[0, 0, 1, 0, 1]).unwrap();
        assert_eq!(canonical_spki(&a).unwrap(), canonical_spki(&b).unwrap());
        assert_eq!(canonical_spki(&a).unwrap(), a.spki_der());
    }
}
