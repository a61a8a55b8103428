use plinth_core::UnixTime;
use plinth_crypto::CryptoError;

/// Why a certificate could not be parsed, or a path could not be validated.
///
/// One variant per failure. Variants about a particular certificate in a path name it by
/// its subject (as display text), so a failure can be traced to the certificate that
/// caused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a well-formed certificate.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// Bytes follow the certificate's outer SEQUENCE (strict parsing).
    #[error("{extra} bytes of trailing data after the certificate")]
    TrailingData {
        /// How many bytes follow the certificate.
        extra: usize,
    },
    /// The certificate is larger than the parser's budget.
    #[error("certificate is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// The size given.
        len: usize,
        /// The budget.
        max: usize,
    },
    /// A PEM block could not be decoded.
    #[error("invalid PEM: {0}")]
    InvalidPem(String),
    /// An extension appears more than once (RFC 5280 section 4.2 forbids it).
    #[error("extension {oid} appears more than once")]
    DuplicateExtension {
        /// The extension's OID.
        oid: String,
    },
    /// An extension this crate relies on (`basicConstraints`, `keyUsage`, key identifiers,
    /// `subjectAltName`) could not be decoded.
    #[error("extension {oid} is malformed")]
    InvalidExtension {
        /// The extension's OID.
        oid: String,
    },
    /// The signature algorithm is not one plinth accepts.
    #[error("unsupported signature algorithm {oid}")]
    UnsupportedSignatureAlgorithm {
        /// The algorithm's OID.
        oid: String,
    },
    /// RSASSA-PSS parameters other than MGF1 with the message hash and a salt as long as
    /// the hash (SHA-256, SHA-384 or SHA-512).
    #[error("unsupported RSASSA-PSS parameters: {0}")]
    UnsupportedPssParameters(&'static str),
    /// The signature algorithm inside the signed part (`TBSCertificate` or `TBSCertList`)
    /// differs from the one outside it.
    #[error("signature algorithm in the signed part differs from the outer one")]
    SignatureAlgorithmMismatch,
    /// The certificate's public key is not one plinth can use (algorithm, curve or size).
    #[error("public key of {subject:?} is not supported")]
    UnsupportedPublicKey {
        /// Subject of the certificate holding the key.
        subject: String,
    },
    /// The issuer's key cannot make the certificate's kind of signature (for example an
    /// RSA key and ecdsa-with-SHA256, or ECDSA P-384 with SHA-1). For a CRL, `subject` is
    /// `CRL of <issuer>`.
    #[error("signature algorithm of {subject:?} does not fit its issuer's key")]
    KeyAlgorithmMismatch {
        /// Subject of the certificate whose signature could not be checked.
        subject: String,
    },
    /// The signature does not verify with the issuer's key over the signed bytes.
    #[error("signature of {subject:?} does not verify with its issuer's key")]
    SignatureInvalid {
        /// Subject of the certificate whose signature failed.
        subject: String,
    },
    /// The current time is after the certificate's `notAfter`.
    #[error("certificate expired at {not_after} (now {now})")]
    Expired {
        /// The certificate's `notAfter`.
        not_after: UnixTime,
        /// The time validated at.
        now: UnixTime,
    },
    /// The current time is before the certificate's `notBefore`.
    #[error("certificate not valid before {not_before} (now {now})")]
    NotYetValid {
        /// The certificate's `notBefore`.
        not_before: UnixTime,
        /// The time validated at.
        now: UnixTime,
    },
    /// A certificate carries a critical extension this crate does not process and the
    /// caller did not allow.
    #[error("unknown critical extension {oid} in {subject:?}")]
    UnknownCriticalExtension {
        /// The extension's OID.
        oid: String,
        /// Subject of the certificate carrying it.
        subject: String,
    },
    /// A certificate's `extendedKeyUsage` lists none of the purposes the caller requires.
    #[error("extendedKeyUsage of {subject:?} does not allow the required purpose")]
    ExtendedKeyUsageNotAllowed {
        /// Subject of the certificate.
        subject: String,
    },
    /// An issuing certificate is not a CA (no `basicConstraints`, or cA is false).
    #[error("issuer {subject:?} is not a CA")]
    IssuerNotCa {
        /// Subject of the would-be issuer.
        subject: String,
    },
    /// An issuing certificate has a `keyUsage` extension without `keyCertSign`.
    #[error("issuer {subject:?} may not sign certificates (keyUsage lacks keyCertSign)")]
    IssuerLacksKeyCertSign {
        /// Subject of the would-be issuer.
        subject: String,
    },
    /// An issuer's `pathLenConstraint` allows fewer intermediates than the path has below it.
    #[error("path length constraint {path_len} of {subject:?} exceeded ({below} below it)")]
    PathLenExceeded {
        /// Subject of the constraining CA.
        subject: String,
        /// Its `pathLenConstraint`.
        path_len: u32,
        /// Non-self-issued intermediates below it in the path.
        below: usize,
    },
    /// No path leads from the certificate to a trust anchor.
    #[error("no trusted issuer found for {issuer:?}")]
    UnknownIssuer {
        /// The issuer name the search was stuck at.
        issuer: String,
    },
    /// The path would be longer than the depth budget.
    #[error("certificate path longer than {max} certificates")]
    PathTooLong {
        /// The budget.
        max: usize,
    },
    /// Path building needed more signature checks than its budget.
    #[error("more than {max} signature checks needed to build a path")]
    SignatureBudgetExceeded {
        /// The budget.
        max: usize,
    },
    /// A pinned trust anchor's fingerprint differs from the expected value.
    #[error("trust anchor {subject:?} does not have the pinned SHA-256 fingerprint")]
    AnchorFingerprintMismatch {
        /// Subject of the offered anchor.
        subject: String,
    },
    /// The bytes are not a well-formed certificate revocation list (truncated, wrong
    /// structure, or a version other than v2).
    #[error("malformed CRL: {0}")]
    CrlMalformed(String),
    /// Bytes follow the CRL's outer SEQUENCE.
    #[error("{extra} bytes of trailing data after the CRL")]
    CrlTrailingData {
        /// How many bytes follow the CRL.
        extra: usize,
    },
    /// The CRL is larger than the parser's budget.
    #[error("CRL is {len} bytes, more than the {max} allowed")]
    CrlTooLarge {
        /// The size given.
        len: usize,
        /// The budget.
        max: usize,
    },
    /// The CRL lists more revoked certificates than the parser's budget.
    #[error("CRL lists more than {max} revoked certificates")]
    CrlTooManyEntries {
        /// The budget.
        max: usize,
    },
    /// The CRL, or one of its entries, carries a critical extension (none is processed).
    #[error("unknown critical CRL extension {oid}")]
    CrlUnknownCriticalExtension {
        /// The extension's OID.
        oid: String,
    },
    /// The CRL's signature does not verify with the given key over the `TBSCertList`.
    #[error("signature of the CRL issued by {issuer:?} does not verify with the given key")]
    CrlSignatureInvalid {
        /// The CRL's issuer name (as display text).
        issuer: String,
    },
    /// The crypto provider failed in another way.
    #[error("crypto provider failed")]
    Crypto(#[source] CryptoError),
}
