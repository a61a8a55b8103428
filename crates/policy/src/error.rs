//! The crate's one error type.

use std::fmt;

/// Where in a policy file something is: the name the caller gave the text, and a 1-based
/// line and column (columns count characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The name the caller gave the policy text (usually its file path).
    pub source: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` of `text`.
    pub(crate) fn of(source: &str, text: &str, offset: usize) -> Self {
        let before = text.get(..offset.min(text.len())).unwrap_or(text);
        let line = before.matches('\n').count().saturating_add(1);
        let line_start = before.rfind('\n').map_or(0, |i| i.saturating_add(1));
        let column = before
            .get(line_start..)
            .map_or(0, |s| s.chars().count())
            .saturating_add(1);
        Self {
            source: source.to_owned(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.source, self.line, self.column)
    }
}

/// Why a policy was rejected or could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The policy text is larger than [`crate::MAX_POLICY_LEN`].
    #[error("{source_name}: policy is {len} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// The policy's name.
        source_name: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The text is not TOML, or does not match the policy schema (unknown key, wrong type,
    /// missing field). The message is the `toml` crate's.
    #[error("{location}: {message}")]
    Syntax {
        /// Where.
        location: Location,
        /// What the TOML parser said.
        message: String,
    },
    /// A hex value is not hex, or not of the length its field needs.
    #[error("{location}: {field}: not {expected} bytes of hex")]
    BadHex {
        /// Where.
        location: Location,
        /// The field.
        field: &'static str,
        /// The byte lengths the field accepts, for example `48` or `20, 32 or 48`.
        expected: &'static str,
    },
    /// A SPIFFE ID or selector template is malformed.
    #[error("{location}: bad template: {reason}")]
    BadTemplate {
        /// Where.
        location: Location,
        /// What is wrong with it.
        reason: String,
    },
    /// A value is out of its allowed range or set.
    #[error("{location}: {field}: {reason}")]
    InvalidValue {
        /// Where.
        location: Location,
        /// The field.
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
}

/// Why an EAR token could not be issued or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EarError {
    /// The signer failed.
    #[error("signing the EAR failed: {reason}")]
    Signing {
        /// The signer's reason.
        reason: String,
    },
    /// The token or the JWKS is larger than its budget.
    #[error("{what} is {len} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// `token` or `JWKS`.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The token is not a JWS compact serialization of JSON objects, or a required member
    /// is missing or of the wrong type.
    #[error("malformed EAR: {part}")]
    Malformed {
        /// What is wrong.
        part: &'static str,
    },
    /// The JWKS is not a JSON object with a `keys` array.
    #[error("malformed JWKS")]
    MalformedJwks,
    /// The header names an algorithm other than ES256 or ES384.
    #[error("unsupported JWS algorithm {alg:?}")]
    UnsupportedAlgorithm {
        /// The `alg` header.
        alg: String,
    },
    /// No key of the JWKS has the token's `kid` (with a matching curve).
    #[error("no key {kid:?} in the JWKS")]
    UnknownKey {
        /// The `kid` header.
        kid: String,
    },
    /// The signature does not verify with the key.
    #[error("EAR signature invalid")]
    SignatureInvalid,
    /// The payload's `eat_profile` is not the EAR profile.
    #[error("eat_profile is not {expected:?}")]
    WrongProfile {
        /// The profile required.
        expected: &'static str,
    },
}
