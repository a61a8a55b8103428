use std::path::PathBuf;
use std::time::Duration;

use plinth_core::{RandomError, SpiffeId, TrustDomain, UnixTime};
use plinth_crypto::CryptoError;

use crate::AuthorityState;

/// Why the CA refused, or failed, to do something.
///
/// Failures caused by the request (an ID outside the trust domain, a TTL past the CA's
/// expiry) are kept apart from failures of the CA's own material (a key that does not
/// match its certificate, a key file others can read) and of its backends (PKCS#11, I/O).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SPIFFE ID belongs to another trust domain than the CA's.
    #[error("{id} is not in the CA's trust domain {trust_domain}")]
    ForeignTrustDomain {
        /// The ID asked for.
        id: SpiffeId,
        /// The CA's trust domain.
        trust_domain: TrustDomain,
    },
    /// An SVID's SPIFFE ID must have a path (X.509-SVID §2: the trust domain's own ID
    /// names signing certificates, never workloads).
    #[error("{id} has no path; an SVID must name a workload")]
    SpiffeIdWithoutPath {
        /// The ID asked for.
        id: SpiffeId,
    },
    /// The requested lifetime is below one second.
    #[error("an SVID must live at least one second")]
    TtlTooShort,
    /// The requested lifetime exceeds the CA's configured maximum.
    #[error("TTL {requested:?} exceeds the maximum {max:?}")]
    TtlTooLong {
        /// The lifetime asked for.
        requested: Duration,
        /// The configured maximum.
        max: Duration,
    },
    /// The credential would outlive the certificate chain that signs it.
    #[error("would expire at {not_after}, after the CA's own expiry at {ca_not_after}")]
    TtlBeyondCaExpiry {
        /// When the credential would expire.
        not_after: UnixTime,
        /// When the first certificate of the signing chain expires.
        ca_not_after: UnixTime,
    },
    /// The signing chain is not yet valid at the time given.
    #[error("the CA is not valid before {not_before} (now {now})")]
    CaNotYetValid {
        /// The latest notBefore of the signing chain.
        not_before: UnixTime,
        /// The time given.
        now: UnixTime,
    },
    /// The bound key is not a public key plinth can certify (RSA 2048–8192 bits, ECDSA
    /// P-256 or P-384, in a standard SubjectPublicKeyInfo encoding).
    #[error("the bound key is not a supported public key")]
    UnsupportedSubjectKey,
    /// The bound key is one of the CA's own keys.
    #[error("refusing to certify one of the CA's own keys")]
    SubjectKeyIsCaKey,
    /// A JWT-SVID needs at least one audience.
    #[error("a JWT-SVID needs at least one audience")]
    EmptyAudience,
    /// An audience value is empty or too long.
    #[error("audience {index} is empty or longer than {max} bytes")]
    InvalidAudience {
        /// Its position in the list.
        index: usize,
        /// The longest value accepted.
        max: usize,
    },
    /// Too many audience values.
    #[error("{count} audiences, more than the {max} allowed")]
    TooManyAudiences {
        /// How many were given.
        count: usize,
        /// The most accepted.
        max: usize,
    },
    /// The CA's key does not match its certificate (or a signer's public key does not
    /// match the key it is meant to be).
    #[error("the key of {what} does not match its certificate")]
    KeyDoesNotMatchCertificate {
        /// Which key.
        what: String,
    },
    /// A signer's algorithm is not the one expected for it.
    #[error("{what} signs with {actual}, expected {expected}")]
    AlgorithmMismatch {
        /// Which key.
        what: String,
        /// The algorithm expected.
        expected: &'static str,
        /// The signer's algorithm.
        actual: &'static str,
    },
    /// The CA's configuration is inconsistent (a default TTL above the maximum, a zero
    /// lifetime).
    #[error("invalid CA configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: &'static str,
    },
    /// A private key file can be read or written by other users than its owner.
    #[error(
        "key file {path} has mode {mode:o}; it must not be accessible to group or others (0600)"
    )]
    KeyFilePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A private key file is not an unencrypted PKCS#8 key of the expected kind.
    #[error("key file {path} is not an unencrypted PKCS#8 ECDSA key for {algorithm}")]
    KeyRejected {
        /// The file.
        path: PathBuf,
        /// The algorithm expected ("P-256 or P-384" for upstream keys).
        algorithm: &'static str,
    },
    /// A file the CA was about to create already exists.
    #[error("{path} already exists")]
    AlreadyExists {
        /// The file or directory.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The CA directory's state file is missing a field, malformed, or inconsistent.
    #[error("CA state {path}: {reason}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate of the CA (or of its upstream) is malformed or does not validate.
    #[error("{what}: {source}")]
    Certificate {
        /// Which certificate or chain.
        what: String,
        /// The cause.
        #[source]
        source: plinth_x509::Error,
    },
    /// A certificate's name cannot be reproduced exactly as an issuer name (a
    /// multi-valued RDN, a repeated attribute type, or an unusual string type).
    #[error("the name {name} cannot be used as an issuer name: {reason}")]
    UnsupportedIssuerName {
        /// The name, as text.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A certificate meant to sign certificates is not a CA (basicConstraints cA) or may
    /// not sign certificates (keyUsage without keyCertSign).
    #[error("{what} is not a CA certificate allowed to sign certificates")]
    NotACaCertificate {
        /// Which certificate.
        what: String,
    },
    /// An authority was given no certificates.
    #[error("authority {id} has no certificates")]
    NoCertificates {
        /// The authority.
        id: u32,
    },
    /// The CA is signed by an upstream CA, and rotating it needs the upstream's files.
    #[error("this CA is signed by an upstream CA: give its certificate and key")]
    UpstreamRequired,
    /// The CA is self-signed; upstream files were given anyway.
    #[error("this CA has a self-signed root: an upstream CA cannot be given now")]
    UpstreamNotExpected,
    /// The upstream chain does not end at a self-signed root.
    #[error("the upstream chain must end at a self-signed root certificate")]
    UpstreamChainIncomplete,
    /// The certificate could not be encoded (a value outside what X.509 can carry).
    #[error("certificate encoding failed: {0}")]
    Encoding(String),
    /// A signature could not be made.
    #[error("signing failed in {backend}: {reason}")]
    Signing {
        /// The signer's backend (`software`, `pkcs11`).
        backend: &'static str,
        /// What failed.
        reason: String,
    },
    /// A PKCS#11 operation failed.
    #[error("PKCS#11 {operation}: {reason}")]
    Pkcs11 {
        /// The operation.
        operation: &'static str,
        /// The module's error.
        reason: String,
    },
    /// No PKCS#11 token has this label.
    #[error("no PKCS#11 token labelled {label:?}")]
    Pkcs11TokenNotFound {
        /// The label asked for.
        label: String,
    },
    /// No key on the token has this label.
    #[error("no key labelled {label:?} on the token")]
    Pkcs11KeyNotFound {
        /// The label asked for.
        label: String,
    },
    /// A key with this label already exists on the token.
    #[error("a key labelled {label:?} already exists on the token")]
    Pkcs11KeyExists {
        /// The label.
        label: String,
    },
    /// The CA uses a PKCS#11 token and no PIN was supplied.
    #[error("the CA key is on a PKCS#11 token: a user PIN is required")]
    Pkcs11PinRequired,
    /// No authority with this generation number.
    #[error("no authority {id}")]
    UnknownAuthority {
        /// The generation asked for.
        id: u32,
    },
    /// The CA has no active authority.
    #[error("the CA has no active authority")]
    NoActiveAuthority,
    /// A rotation step was asked of an authority in the wrong state.
    #[error("cannot {action} authority {id}: it is {state}")]
    InvalidRotation {
        /// The authority.
        id: u32,
        /// Its state.
        state: AuthorityState,
        /// The step asked for.
        action: &'static str,
    },
    /// A new authority is already prepared; activate or retire it first.
    #[error("authority {id} is already prepared")]
    AlreadyPrepared {
        /// The prepared authority.
        id: u32,
    },
    /// Activating now could hand out SVIDs that peers holding the previous bundle cannot
    /// verify: the prepared authority must be in the bundle for one refresh hint first.
    #[error(
        "authority {id} can be activated from {earliest} (one bundle refresh hint after it was prepared)"
    )]
    ActivateTooEarly {
        /// The authority.
        id: u32,
        /// The earliest time it can be activated.
        earliest: UnixTime,
    },
    /// Retiring now would leave SVIDs signed by this authority unverifiable before they
    /// expire.
    #[error(
        "authority {id} can be retired from {earliest} (when the last SVID it signed has expired)"
    )]
    RetireTooEarly {
        /// The authority.
        id: u32,
        /// The earliest time it can be retired.
        earliest: UnixTime,
    },
    /// A cryptographic primitive failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The random number generator failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}
