use std::fmt;

use plinth_core::UnixTime;

/// Which layer of the document a structural error was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Part {
    /// The outer COSE_Sign1 structure.
    CoseSign1,
    /// The CBOR attestation document carried as the COSE payload.
    Payload,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CoseSign1 => "COSE_Sign1",
            Self::Payload => "attestation document payload",
        })
    }
}

/// Where in the document's certificate chain a certificate sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChainPosition {
    /// `cabundle[i]`: index 0 is the root, the last entry issues the leaf.
    CaBundle(usize),
    /// The `certificate` field: the leaf that signed the document.
    Leaf,
}

impl fmt::Display for ChainPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CaBundle(i) => write!(f, "cabundle[{i}]"),
            Self::Leaf => f.write_str("leaf certificate"),
        }
    }
}

/// Why a Nitro attestation document was rejected.
///
/// Every variant is caused by the bytes, the trust configuration or the time given; there is
/// no "internal" failure. Display texts never echo attacker bytes beyond short, hex-encoded
/// or length-capped excerpts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The COSE algorithm in the protected header is not ES384 (-35).
    #[error("COSE algorithm must be ES384 (-35), found {found}")]
    AlgorithmNotEs384 {
        /// The algorithm found, as text (`absent` when the header has none).
        found: String,
    },
    /// A certificate of the document could not be parsed.
    #[error("{position}: {reason}")]
    CertificateParse {
        /// Which certificate.
        position: ChainPosition,
        /// What the X.509 parser said.
        reason: plinth_x509::Error,
    },
    /// No valid path leads from the leaf through the cabundle to the pinned root at `now`:
    /// a certificate expired or not yet valid, a signature, a CA constraint.
    #[error("certificate chain: {reason}")]
    Chain {
        /// What the X.509 path validator said.
        reason: plinth_x509::Error,
    },
    /// The document's `digest` is not `SHA384`.
    #[error("digest must be \"SHA384\", found {found:?}")]
    DigestNotSha384 {
        /// The value found (capped).
        found: String,
    },
    /// The document is larger than [`crate::MAX_DOCUMENT_LEN`].
    #[error("document is {len} bytes, more than the {max}-byte budget")]
    DocumentTooLarge {
        /// The document's length.
        len: usize,
        /// The budget.
        max: usize,
    },
    /// The document was produced longer ago than the caller allows.
    #[error("document produced at {timestamp} is older than {max_age_ms} ms at {now}")]
    DocumentTooOld {
        /// The document's timestamp.
        timestamp: UnixTime,
        /// The time the caller gave.
        now: UnixTime,
        /// The maximum age allowed.
        max_age_ms: u64,
    },
    /// A pinned root fingerprint given as text is not 64 hex digits (trust configuration).
    #[error("a root fingerprint must be 64 hex digits (SHA-256)")]
    FingerprintHex,
    /// A key of the payload map appears twice.
    #[error("field {name:?} appears more than once")]
    DuplicateField {
        /// The key (capped).
        name: String,
    },
    /// A PCR index appears twice in `pcrs`.
    #[error("PCR {index} appears more than once")]
    DuplicatePcr {
        /// The index.
        index: u8,
    },
    /// A field holds a value of the wrong CBOR type.
    #[error("field {field} must be {expected}")]
    FieldType {
        /// The field.
        field: &'static str,
        /// The CBOR type the field must have.
        expected: &'static str,
    },
    /// A field, or a list or map of them, is shorter or longer than its limit.
    #[error("field {field} has size {len}, outside {min}..={max}")]
    FieldSize {
        /// The field.
        field: &'static str,
        /// Its size: bytes for strings, entries for maps and arrays.
        len: usize,
        /// The smallest size allowed.
        min: usize,
        /// The largest size allowed.
        max: usize,
    },
    /// A payload map key is not a text string.
    #[error("payload keys must be text strings")]
    KeyNotText,
    /// The leaf certificate has a keyUsage extension without digitalSignature.
    #[error("leaf certificate keyUsage does not allow digital signatures")]
    LeafKeyUsage,
    /// The leaf certificate's key is not an ECDSA P-384 key.
    #[error("leaf certificate key is not an ECDSA P-384 key")]
    LeafKeyNotP384,
    /// CBOR that could not be decoded (other than running out of input).
    #[error("malformed CBOR in the {part}: {reason}")]
    MalformedCbor {
        /// Where.
        part: Part,
        /// The decoder's description.
        reason: String,
    },
    /// Well-formed CBOR that is not a COSE_Sign1 structure.
    #[error("not a COSE_Sign1 structure: {reason}")]
    MalformedCose {
        /// What was wrong.
        reason: &'static str,
    },
    /// A mandatory field is missing.
    #[error("mandatory field {name} is missing")]
    MissingField {
        /// The field.
        name: &'static str,
    },
    /// PCR 0, 1 or 2 is missing: the enclave image cannot be identified, nor debug mode told.
    #[error("PCR {index} is missing")]
    MissingPcr {
        /// The index.
        index: u8,
    },
    /// The caller expected a nonce but the document carries none.
    #[error("the document carries no nonce")]
    NonceMissing,
    /// The document's nonce is not the one the caller issued.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// The COSE payload is detached (nil); Nitro documents always carry it.
    #[error("COSE payload is missing")]
    PayloadMissing,
    /// The payload is not a CBOR map.
    #[error("the payload must be a CBOR map")]
    PayloadNotMap,
    /// A PCR index is 32 or more.
    #[error("PCR index {index} is out of range 0..=31")]
    PcrIndex {
        /// The index found.
        index: u64,
    },
    /// A PCR value is not 32, 48 or 64 bytes long.
    #[error("PCR {index} is {len} bytes; must be 32, 48 or 64")]
    PcrLength {
        /// The index.
        index: u8,
        /// The value's length.
        len: usize,
    },
    /// The caller asked for the bound key but the document carries no `public_key`.
    #[error("the document carries no public_key")]
    PublicKeyMissing,
    /// `public_key` is not a DER SubjectPublicKeyInfo of a key plinth accepts.
    #[error("public_key is not a SubjectPublicKeyInfo of an accepted key")]
    PublicKeyNotSpki,
    /// `cabundle[0]` is not the pinned AWS root: its SHA-256 fingerprint differs.
    #[error("cabundle root {found} is not the pinned root {pinned}")]
    RootNotPinned {
        /// Hex SHA-256 of `cabundle[0]`.
        found: String,
        /// Hex SHA-256 the trust configuration pins.
        pinned: String,
    },
    /// The ES384 signature does not verify over the Sig_structure with the leaf's key.
    #[error("COSE signature does not verify")]
    SignatureInvalid,
    /// The signature is not 96 bytes (`r ‖ s` for P-384).
    #[error("COSE signature is {len} bytes; ES384 needs 96")]
    SignatureLength {
        /// Its length.
        len: usize,
    },
    /// The document's timestamp lies after `now` by more than the allowed skew.
    #[error("document timestamp {timestamp} lies in the future of {now}")]
    TimestampInFuture {
        /// The document's timestamp.
        timestamp: UnixTime,
        /// The time the caller gave.
        now: UnixTime,
    },
    /// The document's timestamp is zero.
    #[error("timestamp must be greater than zero")]
    TimestampZero,
    /// Bytes follow the end of the CBOR structure.
    #[error("{len} trailing bytes after the {part}")]
    TrailingData {
        /// Where.
        part: Part,
        /// How many bytes are left over.
        len: usize,
    },
    /// The input ended in the middle of a CBOR item.
    #[error("the {part} is truncated")]
    Truncated {
        /// Where.
        part: Part,
    },
    /// A header parameter other than `alg` (protected) or any parameter (unprotected) is present.
    #[error("unexpected COSE header parameter {label} in the {which} header")]
    UnexpectedHeaderParameter {
        /// The parameter's label, as text.
        label: String,
        /// `protected` or `unprotected`.
        which: &'static str,
    },
    /// The COSE structure carries a CBOR tag other than 18 (COSE_Sign1).
    #[error("unexpected CBOR tag {tag}; only COSE_Sign1 (18) is accepted")]
    UnexpectedTag {
        /// The tag.
        tag: u64,
    },
    /// The payload has a field the AWS document format does not define.
    #[error("unknown field {name:?}")]
    UnknownField {
        /// The key (capped).
        name: String,
    },
}

/// Longest excerpt of attacker text an error carries.
const EXCERPT_LEN: usize = 64;

/// Caps attacker-chosen text placed in an error.
pub(crate) fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_LEN).collect()
}
