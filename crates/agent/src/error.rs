//! The agent's one error type.

use std::path::PathBuf;

use plinth_core::HashAlg;

/// Everything that can go wrong collecting evidence.
///
/// TPM failures carry the step that failed (`step`, a short phrase such as "creating the
/// EK") and the tss-esapi error, which holds the TPM response code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TCTI configuration string was not understood.
    #[error("invalid TCTI {tcti:?}: {source}")]
    Tcti {
        /// The string given.
        tcti: String,
        /// What tss-esapi said.
        source: tss_esapi::Error,
    },
    /// A TPM command (or the TSS around it) failed.
    #[error("TPM error while {step}: {source}")]
    Tpm {
        /// What the collector was doing.
        step: &'static str,
        /// The tss-esapi error, with the TPM response code.
        source: tss_esapi::Error,
    },
    /// A PCR that was asked for is not allocated in this TPM (its bank is inactive).
    #[error("PCR {bank}:{index} is not available in this TPM")]
    PcrUnavailable {
        /// The bank.
        bank: HashAlg,
        /// The PCR index.
        index: u8,
    },
    /// The PCR selection asked for is empty, lists a bank twice, or names a PCR above 23.
    #[error("invalid PCR selection: {0}")]
    InvalidPcrSelection(&'static str),
    /// The qualifying data (nonce) does not fit a TPM2B_DATA.
    #[error("qualifying data is {len} bytes; at most {max} fit")]
    NonceTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// PCRs kept changing between the quote and the reads that accompany it.
    #[error("PCRs changed between the quote and the PCR reads, twice")]
    PcrsChanged,
    /// What the TPM produced did not pass plinth's own verifier (checked before it is sent:
    /// a bad marshalling or an unexpected key shape surfaces here, not at the server).
    #[error("self-check of the {what} failed: {source}")]
    SelfCheck {
        /// What was being checked.
        what: &'static str,
        /// The verifier's error.
        source: plinth_tpm::Error,
    },
    /// The name the TPM reports for a key differs from the name of its marshalled public
    /// area: the bytes sent would not be the ones the TPM signs over.
    #[error("the TPM's name of the {0} differs from the name of its marshalled public area")]
    NameMismatch(&'static str),
    /// The TPM answered with something of the wrong shape.
    #[error("unexpected TPM response: {0}")]
    UnexpectedResponse(&'static str),
    /// A stored key blob could not be decoded.
    #[error("invalid key blob: {0}")]
    InvalidKeyBlob(&'static str),
    /// A cryptographic helper failed (encoding a signature).
    #[error(transparent)]
    Crypto(#[from] plinth_crypto::CryptoError),
    /// The event log could not be read.
    #[error("reading the event log {path}: {source}")]
    EventLogRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The event log is larger than the budget.
    #[error("the event log {path} is larger than {max} bytes")]
    EventLogTooLarge {
        /// The file.
        path: PathBuf,
        /// The budget, in bytes.
        max: u64,
    },
    /// The server could not be reached or the TLS setup failed.
    #[error("connecting to the server: {0}")]
    Connect(#[from] plinth_client::Error),
    /// The server refused a call; its message names the failing rule, when a policy
    /// refused.
    #[error("the server refused ({code}): {message}", code = .0.code(), message = .0.message())]
    Refused(tonic::Status),
    /// The agent's configuration or state is unusable.
    #[error("agent: {0}")]
    Agent(String),
    /// The Workload API socket could not be set up (a file that is not a socket in the
    /// way, bind, permissions).
    #[error("Workload API socket {path}: {what}: {source}")]
    WorkloadSocket {
        /// The socket path.
        path: PathBuf,
        /// The step that failed.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Workload API server stopped with an error.
    #[error("Workload API server: {0}")]
    WorkloadServer(tonic::transport::Error),
    /// The Nitro Secure Module could not be reached, refused (with its error code), or
    /// answered with something other than a document; or the nonce is over its limit.
    #[error("Nitro Secure Module: {0}")]
    Nsm(#[from] plinth_nsm::Error),
    /// The document the NSM returned does not parse (checked before it is sent).
    #[error("self-check of the Nitro attestation document failed: {0}")]
    NitroDocument(plinth_nitro::Error),
    /// The document the NSM returned does not carry the challenge's nonce.
    #[error("the Nitro attestation document does not carry the challenge nonce")]
    NitroNonceMismatch,
    /// The document the NSM returned does not carry exactly the public key asked for (the
    /// SVID key's SubjectPublicKeyInfo, or none).
    #[error("the Nitro attestation document does not carry the key asked for")]
    NitroPublicKeyMismatch,
    /// The guest's SEV-SNP report interface (configfs-tsm) is missing or failed.
    #[error("SEV-SNP report interface {path}: {what}: {source}")]
    SnpDevice {
        /// The file or directory.
        path: PathBuf,
        /// The step that failed.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The report interface is not SEV-SNP's (configfs-tsm names another provider).
    #[error("the configfs-tsm report provider is {found:?}, not sev_guest")]
    SnpProvider {
        /// The provider named.
        found: String,
    },
    /// The report interface answered out of bounds (a report or certificate table over
    /// its budget, an unreadable attribute, or a concurrent writer to the report instance).
    #[error("unexpected SEV-SNP report interface response: {0}")]
    SnpUnexpected(&'static str),
    /// The report (or certificate table) the firmware returned does not parse (checked
    /// before it is sent).
    #[error("self-check of the SEV-SNP {what} failed: {source}")]
    SnpSelfCheck {
        /// What was being checked.
        what: &'static str,
        /// The parser's error.
        source: plinth_snp::Error,
    },
    /// The report's REPORT_DATA is not the SHA-512(nonce ‖ key) asked for.
    #[error("the SEV-SNP report does not carry the REPORT_DATA asked for")]
    SnpReportDataMismatch,
    /// The configured VCEK/VLEK certificate cannot be read or is not one.
    #[error("SEV-SNP endorsement certificate {path}: {reason}")]
    SnpVekCertificate {
        /// The file.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
}

impl Error {
    /// The TSS2_RC of a failed TPM command (layer 0: the TPM's own response code, such as
    /// 0x1DF for TPM_RC_INTEGRITY on parameter 1; other layers are tpm2-tss's), when this
    /// is a TPM error.
    pub fn tpm_response_code(&self) -> Option<u32> {
        let Self::Tpm {
            source: tss_esapi::Error::Tss2Error(code),
            ..
        } = self
        else {
            return None;
        };
        // tss-esapi 7.7 keeps the raw code private; both response-code formats display
        // it as "Response code value: 0x…".
        let text = match code {
            tss_esapi::constants::response_code::Tss2ResponseCode::Success => return None,
            tss_esapi::constants::response_code::Tss2ResponseCode::FormatZero(rc) => rc.to_string(),
            tss_esapi::constants::response_code::Tss2ResponseCode::FormatOne(rc) => rc.to_string(),
        };
        let hex = text.rsplit("0x").next()?;
        u32::from_str_radix(hex.trim(), 16).ok()
    }

    /// Wraps a tss-esapi error with the step that failed.
    pub(crate) fn tpm(step: &'static str) -> impl FnOnce(tss_esapi::Error) -> Self {
        move |source| Self::Tpm { step, source }
    }
}
