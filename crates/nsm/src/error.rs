//! The crate's one error type.

use std::fmt;
use std::path::PathBuf;

use crate::ErrorCode;

/// An optional field of an attestation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// `nonce`.
    Nonce,
    /// `public_key`.
    PublicKey,
    /// `user_data`.
    UserData,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Nonce => "nonce",
            Self::PublicKey => "public_key",
            Self::UserData => "user_data",
        })
    }
}

/// Everything that can go wrong asking the NSM for a document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request field is longer than the NSM accepts.
    #[error("{field} is {len} bytes; the NSM accepts at most {max}")]
    FieldTooLong {
        /// The field.
        field: Field,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `public_key` is present but empty (the NSM's minimum is one byte).
    #[error("public_key is empty")]
    PublicKeyEmpty,
    /// The encoded request is larger than the driver accepts.
    #[error("the request is {len} bytes; the NSM driver accepts at most {max}")]
    RequestTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The CBOR encoder failed (writing to memory: not expected).
    #[error("encoding the request: {0}")]
    Encode(String),
    /// The response is larger than the driver can return.
    #[error("the response is {len} bytes; at most {max} are possible")]
    ResponseTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The response ends inside a CBOR item.
    #[error("the response is truncated")]
    Truncated,
    /// The response is not well-formed CBOR.
    #[error("the response is not well-formed CBOR (at byte {offset})")]
    Malformed {
        /// Where the decoder stopped.
        offset: usize,
    },
    /// The response nests deeper than its format ever does.
    #[error("the response nests too deeply")]
    TooDeep,
    /// Bytes follow the response's CBOR item.
    #[error("{len} bytes follow the response")]
    TrailingData {
        /// How many.
        len: usize,
    },
    /// The response is CBOR, but not of the shape of an attestation response.
    #[error("unexpected response shape: {0}")]
    WrongShape(&'static str),
    /// The response answers another operation.
    #[error("the NSM answered {operation:?} to an attestation request")]
    UnexpectedOperation {
        /// The operation named in the response (at most 64 bytes of it).
        operation: String,
    },
    /// The attestation response carries an empty document.
    #[error("the NSM returned an empty document")]
    EmptyDocument,
    /// The NSM refused the request.
    #[error("the NSM refused the request: {0}")]
    Nsm(ErrorCode),
    /// The NSM refused the request with an error code this crate does not know.
    #[error("the NSM refused the request with unknown error code {code:?}")]
    UnknownErrorCode {
        /// The code's name (at most 64 bytes of it).
        code: String,
    },
    /// The NSM device could not be opened.
    #[error("opening the NSM device {path}: {source}")]
    Open {
        /// The device path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The ioctl failed (`EMSGSIZE`: request too large; `ETIMEDOUT`: the NSM did not answer
    /// within the driver's two minutes; …).
    #[error("NSM ioctl: {0}")]
    Ioctl(std::io::Error),
    /// The driver reported more response bytes than the buffer it was given.
    #[error("the NSM driver reported a {len}-byte response for a {capacity}-byte buffer")]
    DriverResponseLength {
        /// The length reported.
        len: u64,
        /// The buffer's size.
        capacity: usize,
    },
    /// The NSM device exists only on Linux.
    #[error("the NSM device is only available on Linux")]
    Unsupported,
}
