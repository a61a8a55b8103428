use crate::HashAlg;

/// Why a value could not be made into one of this crate's types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A digest did not have the length its algorithm produces.
    #[error("{alg} digest must be {expected} bytes, got {actual}")]
    DigestLength {
        /// The algorithm the digest claims.
        alg: HashAlg,
        /// The algorithm's output length.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// A hash algorithm name was not one plinth knows.
    #[error("unknown hash algorithm {0:?}")]
    UnknownHashAlg(String),
    /// Text that should be hex was not.
    #[error("invalid hex")]
    InvalidHex,
    /// A nonce was not exactly [`crate::Nonce::LEN`] bytes.
    #[error("nonce must be {expected} bytes, got {actual}")]
    NonceLength {
        /// Required length.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// A presented value is not the nonce that was issued.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// A SPIFFE ID or trust domain broke a rule of the SPIFFE ID specification.
    #[error("invalid SPIFFE ID: {0}")]
    SpiffeId(&'static str),
    /// A time could not be parsed or is out of range.
    #[error("invalid time: {0}")]
    Time(String),
}
