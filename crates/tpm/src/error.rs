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
}
