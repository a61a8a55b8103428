use std::fmt;

use subtle::ConstantTimeEq;

use crate::{Error, RandomError, SecureRandom};

/// A 32-byte single-use challenge value.
///
/// Equality is only available in constant time, through [`Nonce::verify_matches`].
#[derive(Clone)]
pub struct Nonce([u8; Nonce::LEN]);

impl Nonce {
    /// Length of every plinth nonce.
    pub const LEN: usize = 32;

    /// Draws a fresh nonce from `rng`.
    ///
    /// # Errors
    /// [`RandomError`] when the generator fails.
    pub fn random(rng: &dyn SecureRandom) -> Result<Self, RandomError> {
        let mut bytes = [0; Self::LEN];
        rng.fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// Wraps exactly [`Nonce::LEN`] bytes; never pads or truncates.
    ///
    /// # Errors
    /// [`Error::NonceLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        <[u8; Self::LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| Error::NonceLength {
                expected: Self::LEN,
                actual: bytes.len(),
            })
    }

    /// The nonce bytes.
    pub const fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    /// Checks, in constant time, that `presented` is this nonce.
    ///
    /// # Errors
    /// [`Error::NonceMismatch`] when it is not (a different length included).
    pub fn verify_matches(&self, presented: &[u8]) -> Result<(), Error> {
        // `subtle` returns early only on a length difference, which is public.
        if bool::from(self.0.as_slice().ct_eq(presented)) {
            Ok(())
        } else {
            Err(Error::NonceMismatch)
        }
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_length_error_never_pads() {
        assert_eq!(
            Nonce::from_slice(&[1; 31]).err(),
            Some(Error::NonceLength {
                expected: 32,
                actual: 31
            })
        );
        assert_eq!(
            Nonce::from_slice(&[1; 33]).err(),
            Some(Error::NonceLength {
                expected: 32,
                actual: 33
            })
        );
    }

    #[test]
    fn nonce_mismatch_on_content_and_length() {
        let n = Nonce::from_slice(&[7; 32]).unwrap();
        assert_eq!(n.verify_matches(&[7; 32]), Ok(()));
        assert_eq!(n.verify_matches(&[7; 31]), Err(Error::NonceMismatch));
        let mut other = [7; 32];
        other[31] = 8;
        assert_eq!(n.verify_matches(&other), Err(Error::NonceMismatch));
    }
}
