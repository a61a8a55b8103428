use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A hash algorithm used for measurements, PCR banks and signatures.
///
/// Deliberately exhaustive: adding an algorithm should make every match site think.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashAlg {
    /// SHA-1: still found in TPM PCR banks and legacy event logs.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// Every algorithm, in a fixed order.
    pub const ALL: [Self; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    /// Output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The algorithm named `name` ([`Self::name`]'s inverse), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// Lower-case name, as used in JSON (`sha256`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlg {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownHashAlg(s.to_owned()))
    }
}

/// A digest together with the algorithm that produced it; its length always matches.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    alg: HashAlg,
    bytes: Vec<u8>,
}

impl Digest {
    /// Wraps `bytes` as a digest of `alg`.
    ///
    /// # Errors
    /// [`Error::DigestLength`] when the length is not `alg`'s output length.
    pub fn new(alg: HashAlg, bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() == alg.output_len() {
            Ok(Self {
                alg,
                bytes: bytes.to_vec(),
            })
        } else {
            Err(Error::DigestLength {
                alg,
                expected: alg.output_len(),
                actual: bytes.len(),
            })
        }
    }

    /// Parses a hex string as a digest of `alg`.
    ///
    /// # Errors
    /// [`Error::InvalidHex`] or [`Error::DigestLength`].
    pub fn from_hex(alg: HashAlg, text: &str) -> Result<Self, Error> {
        let bytes = hex::decode(text.trim()).map_err(|_| Error::InvalidHex)?;
        Self::new(alg, &bytes)
    }

    /// The all-zero digest of `alg`: the reset value of most PCRs.
    pub fn zero(alg: HashAlg) -> Self {
        Self {
            alg,
            bytes: vec![0; alg.output_len()],
        }
    }

    /// The algorithm.
    pub const fn alg(&self) -> HashAlg {
        self.alg
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Lower-case hex of the bytes.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.bytes)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.alg, self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_length_error() {
        assert_eq!(
            Digest::new(HashAlg::Sha256, &[0; 20]),
            Err(Error::DigestLength {
                alg: HashAlg::Sha256,
                expected: 32,
                actual: 20
            })
        );
    }

    #[test]
    fn hash_alg_names_round_trip() {
        for alg in HashAlg::ALL {
            assert_eq!(alg.name().parse::<HashAlg>(), Ok(alg));
        }
        assert!(matches!(
            "md5".parse::<HashAlg>(),
            Err(Error::UnknownHashAlg(_))
        ));
    }
}
