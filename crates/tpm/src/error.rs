use plinth_core::HashAlg;
use plinth_crypto::CryptoError;

/// Everything that can go wrong verifying TPM evidence. Each failure has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A structure ended before all its fields were read.
    #[error("{structure} is truncated")]
    Truncated {
        /// The structure being read.
        structure: &'static str,
    },
    /// Bytes were left over after a complete structure.
    #[error("{structure} has {extra} trailing bytes")]
    TrailingBytes {
        /// The structure being read.
        structure: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// A size field exceeds what the field may hold.
    #[error("{field} is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// The field.
        field: &'static str,
        /// The size claimed.
        len: usize,
        /// The budget.
        max: usize,
    },
    /// A field holds a value the specification does not allow there.
    #[error("{field} has invalid value {value:#x}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u32,
    },
    /// An algorithm identifier plinth does not support in this position.
    #[error("unsupported {field} algorithm {alg:#06x}")]
    UnsupportedAlgorithm {
        /// The field.
        field: &'static str,
        /// The TPM_ALG_ID.
        alg: u16,
    },
    /// A TPMS_ATTEST did not start with TPM_GENERATED_VALUE: the TPM did not produce it.
    #[error("attestation magic {0:#010x} is not TPM_GENERATED_VALUE")]
    NotTpmGenerated(u32),
    /// A TPMS_ATTEST of another type than the operation needs.
    #[error("expected a {expected} attestation, got type {found:#06x}")]
    WrongAttestType {
        /// The type required.
        expected: &'static str,
        /// The TPMI_ST_ATTEST found.
        found: u16,
    },
    /// The signature does not verify over the attestation bytes with the given key.
    #[error("signature does not verify with the attestation key")]
    SignatureInvalid,
    /// The signature's scheme does not fit the key (or the key's fixed scheme).
    #[error("signature scheme does not match the signing key")]
    SignatureSchemeMismatch,
    /// The attestation key is not a restricted signing key fixed to its TPM, so it could
    /// have signed a forged attestation structure.
    #[error("attestation key is not a restricted, fixedTPM signing key: {0}")]
    AkAttributes(&'static str),
    /// The qualifying data (extraData) is not the value derived from the challenge nonce.
    #[error("qualifying data does not match the challenge")]
    QualifyingDataMismatch,
    /// The quote selects a PCR for which no value was supplied.
    #[error("no value supplied for quoted PCR {bank}:{index}")]
    MissingPcrValue {
        /// The bank.
        bank: HashAlg,
        /// The PCR index.
        index: u8,
    },
    /// The digest of the supplied PCR values differs from the quoted pcrDigest.
    #[error("supplied PCR values do not match the quoted PCR digest")]
    PcrDigestMismatch,
    /// The certified name is not the name of the public area supplied with it.
    #[error("certified name does not match the supplied public area")]
    CertifiedNameMismatch,
    /// The certified key lacks a required attribute or has a forbidden one.
    #[error("certified key is not acceptable: {0}")]
    CertifiedKeyAttributes(&'static str),
    /// The creation hash does not match the supplied creation data.
    #[error("creation hash does not match the creation data")]
    CreationHashMismatch,
    /// The secret returned by ActivateCredential is not the one that was sealed to the EK.
    #[error("credential activation secret does not match")]
    ActivationSecretMismatch,
    /// The EK cannot be used to make a credential (type, scheme or symmetric definition).
    #[error("EK is not usable for credential activation: {0}")]
    UnusableEk(&'static str),
    /// A key in a TPM structure was rejected by the crypto provider.
    #[error("key rejected: {0}")]
    Crypto(#[from] CryptoError),
    /// The EK certificate could not be parsed or its path to a vendor root failed
    /// validation (signature, validity period, CA constraints, extensions).
    #[error("EK certificate rejected")]
    EkCertificate(#[source] plinth_x509::Error),
    /// The EK certificate does not chain to any of the configured TPM vendor roots.
    #[error("EK certificate does not chain to a trusted TPM vendor root (issuer {issuer:?})")]
    EkUntrustedRoot {
        /// The issuer name at which path building found no trusted certificate.
        issuer: String,
    },
    /// The EK public area presented by the TPM is not the key in its EK certificate.
    #[error("EK public key does not match the EK certificate")]
    EkPublicMismatch,
    /// The EK (of a TPM without an EK certificate) is not on the allow-list.
    #[error("EK is not on the allow-list (SPKI SHA-256 {spki_sha256})")]
    EkNotAllowListed {
        /// SHA-256 of the EK's canonical `SubjectPublicKeyInfo` DER.
        spki_sha256: plinth_core::Digest,
    },
    /// The AK certificate could not be parsed or does not chain to a trusted CA.
    #[error("AK certificate rejected")]
    AkCertificate(#[source] plinth_x509::Error),
    /// The AK public area presented is not the key the AK certificate certifies.
    #[error("AK public key does not match the AK certificate")]
    AkCertificateKeyMismatch,
    /// A TPM CA certificate given as a root or intermediate could not be parsed.
    #[error("TPM CA certificate rejected")]
    TpmCaCertificate(#[source] plinth_x509::Error),
    /// The certificate offered as an EK or AK certificate is a CA certificate
    /// (basicConstraints cA=TRUE): a root or intermediate, not a TPM key's certificate.
    #[error("certificate is a CA certificate, not an EK or AK certificate")]
    NotAnEndEntityCertificate,
    /// The event log ended inside an event (or is empty).
    #[error("event log is truncated in event {event} (which starts at byte {offset})")]
    EventLogTruncated {
        /// The event's index.
        event: usize,
        /// Where the event starts in the log.
        offset: usize,
    },
    /// An event's data is larger than the per-event budget.
    #[error("event {event} has {size} bytes of data, more than the {max} allowed")]
    EventTooLarge {
        /// The event's index.
        event: usize,
        /// The size the event claims.
        size: usize,
        /// The budget.
        max: usize,
    },
    /// The event log has more events than the budget allows.
    #[error("event log has more than {max} events")]
    TooManyEvents {
        /// The budget.
        max: usize,
    },
    /// The Spec ID event of a crypto-agile log is malformed.
    #[error("Spec ID event is invalid: {0}")]
    InvalidSpecId(&'static str),
    /// An event lacks the digest of a bank the Spec ID event declares.
    #[error(
        "event {event} has no digest for algorithm {alg:#06x}, which the Spec ID event declares"
    )]
    EventDigestMissing {
        /// The event's index.
        event: usize,
        /// The TPM_ALG_ID of the missing bank.
        alg: u16,
    },
    /// An event carries a digest of an algorithm the Spec ID event does not declare (so its
    /// size, and everything after it, is unknown).
    #[error(
        "event {event} has a digest for algorithm {alg:#06x}, which the Spec ID event does not declare"
    )]
    EventDigestUndeclared {
        /// The event's index.
        event: usize,
        /// The TPM_ALG_ID.
        alg: u16,
    },
    /// An event carries two digests of one algorithm.
    #[error("event {event} has two digests for algorithm {alg:#06x}")]
    EventDigestDuplicate {
        /// The event's index.
        event: usize,
        /// The TPM_ALG_ID.
        alg: u16,
    },
    /// An extended event names a PCR a PC Client TPM does not have.
    #[error("event {event} extends PCR {pcr}, which does not exist")]
    EventPcrOutOfRange {
        /// The event's index.
        event: usize,
        /// The PCR index in the event.
        pcr: u32,
    },
    /// The verified quote covers no PCR bank the event log carries.
    #[error("the quote covers no PCR bank that the event log carries")]
    EventLogNoQuotedBank,
    /// The event log's replay of a quoted PCR differs from the quoted value.
    #[error(
        "event log replay of PCR {pcr} ({bank}) does not match the quote: the last event extended into it is {}; {}",
        crate::error::event_or_none(*last_event),
        match consistent_through {
            Some(event) => format!("the quote matches the replay through event {event}, so the log diverges after it"),
            None => "no prefix of the log reproduces the quoted value".to_owned(),
        }
    )]
    EventLogReplayMismatch {
        /// The bank.
        bank: HashAlg,
        /// The PCR.
        pcr: u8,
        /// The index of the last event of the log extended into this PCR.
        last_event: Option<usize>,
        /// The last event after which the replay equals the quoted value, when one does.
        consistent_through: Option<usize>,
    },
    /// In a verified PCR, an event whose digest is defined as the hash of its data carries
    /// data that does not hash to it: the data is forged or corrupt.
    #[error(
        "event {event} (type {event_type:#010x}) has data that does not hash to its verified digest"
    )]
    EventDataMismatch {
        /// The event's index.
        event: usize,
        /// The event type.
        event_type: u32,
    },
    /// No verified dbx to compare with a reference.
    #[error("dbx was not measured into a verified PCR 7")]
    DbxNotMeasured,
    /// The measured dbx lacks entries of the reference set.
    #[error("dbx lacks {missing} of the {reference} reference entries")]
    DbxOutdated {
        /// How many reference entries are absent.
        missing: usize,
        /// How many the reference set has.
        reference: usize,
    },
}

/// Formats an optional event index for messages.
pub(crate) fn event_or_none(event: Option<usize>) -> String {
    event.map_or_else(|| "none".to_owned(), |event| format!("event {event}"))
}
