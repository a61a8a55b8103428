use plinth_core::UnixTime;

use crate::{Product, SigningKey};

/// Everything that can go wrong verifying SEV-SNP evidence. Each failure has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A structure ended before all its fields were read (a report shorter than 1184 bytes).
    #[error("{structure} is truncated: {len} bytes, {needed} needed")]
    Truncated {
        /// The structure being read.
        structure: &'static str,
        /// The length given.
        len: usize,
        /// The length needed.
        needed: usize,
    },
    /// Bytes were left over after a complete structure.
    #[error("{structure} has {extra} trailing bytes")]
    TrailingData {
        /// The structure being read.
        structure: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// The report's VERSION is not one whose layout is known (2 to 5).
    #[error("unknown attestation report version {0}")]
    UnknownReportVersion(u32),
    /// SIGNATURE_ALGO is not 1 (ECDSA P-384 with SHA-384).
    #[error("unsupported report signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(u32),
    /// A field holds a value the ABI does not define.
    #[error("{field} has invalid value {value:#x}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// SIGNING_KEY says the report was not signed (MASK_CHIP_KEY without a VLEK).
    #[error("the report is not signed (SIGNING_KEY = none)")]
    ReportNotSigned,
    /// A product name that is not Milan, Genoa or Turin.
    #[error("unknown AMD product {0:?}")]
    UnknownProductName(String),
    /// The product is not named by the caller, the report or the certificate.
    #[error("cannot tell which AMD product produced the report")]
    ProductUnknown,
    /// Two sources name different products.
    #[error("product mismatch: expected {expected}, {source_name} says {found}")]
    ProductMismatch {
        /// The product verification is for.
        expected: Product,
        /// The product the other source names.
        found: Product,
        /// What named it ("report CPUID", "certificate productName").
        source_name: &'static str,
    },
    /// The trust configuration has no ARK for this product.
    #[error("no ARK is pinned for {0}")]
    ProductNotPinned(Product),
    /// A certificate offered as an ARK was refused.
    #[error("ARK for {product} rejected: {reason}")]
    ArkRejected {
        /// The product it was offered for.
        product: Product,
        /// Why.
        reason: &'static str,
    },
    /// A certificate could not be parsed.
    #[error("{role} certificate could not be parsed")]
    Certificate {
        /// Which certificate.
        role: &'static str,
        /// The parser's reason.
        #[source]
        source: plinth_x509::Error,
    },
    /// The VCEK/VLEK does not chain to the pinned ARK at the given time.
    #[error("{kind} does not chain to the pinned ARK-{product}")]
    Chain {
        /// VCEK or VLEK.
        kind: SigningKey,
        /// The product whose ARK was tried.
        product: Product,
        /// The path validator's reason.
        #[source]
        source: plinth_x509::Error,
    },
    /// The certificate chain is well formed but its intermediate is not AMD's for this key
    /// kind and product (`SEV-<product>` for a VCEK, `SEV-VLEK-<product>` for a VLEK).
    #[error("{kind} is issued by {found:?}, expected {expected:?}")]
    UnexpectedIssuer {
        /// VCEK or VLEK.
        kind: SigningKey,
        /// The issuer expected.
        expected: String,
        /// The issuer found.
        found: String,
    },
    /// A certificate given as VCEK/VLEK has neither subject, or no P-384 key.
    #[error("{subject:?} is not a VCEK or VLEK")]
    NotAnEndorsementKey {
        /// Its subject.
        subject: String,
    },
    /// A VCEK was given where a VLEK was required, or the reverse.
    #[error("expected a {expected} certificate, got a {found}")]
    WrongEndorsementKind {
        /// The kind required.
        expected: SigningKey,
        /// The kind given.
        found: SigningKey,
    },
    /// Two certificates of one kind were given.
    #[error("more than one {0} certificate given")]
    DuplicateCertificate(&'static str),
    /// No certificate of a needed kind was given.
    #[error("no {0} certificate available")]
    MissingCertificate(&'static str),
    /// More intermediates or CRLs than the budget.
    #[error("more than {max} intermediates or CRLs")]
    TooManyItems {
        /// The budget.
        max: usize,
    },
    /// The extended report's certificate table is malformed.
    #[error("certificate table: {0}")]
    CertTable(&'static str),
    /// A VCEK/VLEK lacks a required AMD extension.
    #[error("endorsement certificate lacks the {0} extension")]
    MissingVekExtension(&'static str),
    /// A VCEK/VLEK AMD extension could not be decoded.
    #[error("endorsement certificate has a malformed {0} extension")]
    MalformedVekExtension(&'static str),
    /// The VCEK/VLEK's notAfter is before `now`.
    #[error("{kind} expired at {not_after} (now {now})")]
    VekExpired {
        /// VCEK or VLEK.
        kind: SigningKey,
        /// Its notAfter.
        not_after: UnixTime,
        /// The time verified at.
        now: UnixTime,
    },
    /// The VCEK/VLEK's notBefore is after `now`.
    #[error("{kind} not valid before {not_before} (now {now})")]
    VekNotYetValid {
        /// VCEK or VLEK.
        kind: SigningKey,
        /// Its notBefore.
        not_before: UnixTime,
        /// The time verified at.
        now: UnixTime,
    },
    /// A certificate above the VCEK/VLEK is not valid at `now` (checked again when a
    /// pre-verified endorsement is reused).
    #[error("the AMD certificate chain is not valid at {now}")]
    ChainNotValidAt {
        /// The time verified at.
        now: UnixTime,
    },
    /// The report says it was signed by one kind of key, the certificate is the other.
    #[error("report is signed by its {report}, but the certificate is a {certificate}")]
    SigningKeyMismatch {
        /// The report's SIGNING_KEY.
        report: SigningKey,
        /// The certificate's kind.
        certificate: SigningKey,
    },
    /// The report's signature does not verify with the VCEK/VLEK over bytes [0, 0x2A0).
    #[error("report signature does not verify with the endorsement key")]
    SignatureInvalid,
    /// The report's CHIP_ID is not the VCEK's hwID.
    #[error("report CHIP_ID does not match the VCEK hwID")]
    ChipIdMismatch,
    /// A REPORTED_TCB component differs from the VCEK/VLEK's TCB extension.
    #[error("REPORTED_TCB {component} is {report}, the certificate says {certificate}")]
    TcbMismatch {
        /// The component (`bootloader`, `tee`, `snp`, `microcode`, `fmc`, `spl_N`).
        component: &'static str,
        /// The report's level.
        report: u8,
        /// The certificate's level.
        certificate: u8,
    },
    /// A CRL could not be parsed (malformed, trailing data, over a budget, or an unknown
    /// critical extension).
    #[error("CRL could not be parsed")]
    CrlInvalid(#[source] plinth_x509::Error),
    /// A CRL is well formed but is not what AMD issues (its signature algorithm is not
    /// RSASSA-PSS SHA-384).
    #[error("malformed CRL: {0}")]
    CrlMalformed(&'static str),
    /// A CRL is not issued by the pinned ARK of the product.
    #[error("CRL is not issued by the pinned ARK")]
    CrlIssuerMismatch,
    /// A CRL's signature does not verify with the pinned ARK.
    #[error("CRL signature does not verify with the pinned ARK")]
    CrlSignatureInvalid,
    /// A CRL's thisUpdate is after `now`.
    #[error("CRL not valid before {this_update} (now {now})")]
    CrlNotYetValid {
        /// thisUpdate.
        this_update: UnixTime,
        /// The time verified at.
        now: UnixTime,
    },
    /// A CRL's nextUpdate is before `now`: it is stale.
    #[error("CRL expired at {next_update} (now {now})")]
    CrlExpired {
        /// nextUpdate.
        next_update: UnixTime,
        /// The time verified at.
        now: UnixTime,
    },
    /// A certificate of the chain is listed on an AMD CRL.
    #[error("{subject:?} (serial {serial}) is revoked")]
    Revoked {
        /// Its subject.
        subject: String,
        /// Its serial number, hex.
        serial: String,
    },
    /// REPORT_DATA is not SHA-512(nonce ‖ SubjectPublicKeyInfo).
    #[error("REPORT_DATA does not bind this nonce and key")]
    KeyBindingMismatch,
}
