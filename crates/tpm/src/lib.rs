//! A pure TPM 2.0 evidence verifier.
//!
//! Bytes, trust anchors and "now" go in; a verified value or a specific [`Error`] comes out.
//! There is no I/O, no clock, no system C library: TPM structures are parsed here from their
//! wire form, and every signature is checked over the original bytes through
//! `plinth-crypto`.
//!
//! ```text
//!  EK certificate ─► verify_ek_certificate(cert, roots, now) ──────────► VerifiedEk
//!  EK public + AK public ─► make_credential(ek, ak, rng) ─► challenge ─► TPM ─► secret
//!                   PendingActivation::verify(secret) ─────────────────► ActivatedAk
//!  TPMS_ATTEST + TPMT_SIGNATURE ─► verify_quote(ak, …, nonce, pcrs) ──► VerifiedQuote
//!  event log + VerifiedQuote ─► verify_event_log(log, quote) ─────────► VerifiedEventLog
//!                                                           .boot_state() ─► BootState
//!  TPMS_ATTEST + TPMT_SIGNATURE ─► verify_certify(ak, …, key, nonce) ─► CertifiedKey (SPKI)
//! ```
//!
//! The parsers are written here rather than taken from a marshalling crate: every
//! structure is read through one bounds-checked cursor (the private `codec` module) that
//! rejects trailing bytes and over-budget sizes with a typed error naming the structure,
//! and the verifier keeps the exact received bytes that signatures and names are computed
//! over. (tpm2-protocol was considered; its API changed in every minor release of 2025.)

mod alg;
mod attest;
mod certify;
mod codec;
mod credential;
mod ek;
mod error;
pub mod eventlog;
mod public;
mod quote;
mod signature;

pub use attest::{ClockInfo, PcrSelection};
pub use certify::{CertifiedKey, VerifiedCreation, verify_certify, verify_creation};
pub use credential::{
    ActivatedAk, ActivationCommitment, CredentialChallenge, PendingActivation, make_credential,
};
pub use ek::{
    AllowListedEk, EkAllowList, EkRoots, VerifiedAkCertificate, VerifiedEk, verify_ak_certificate,
    verify_ek_certificate,
};
pub use error::Error;
pub use eventlog::{BootState, EventLog, ReplayedPcrs, VerifiedEventLog, verify_event_log};
pub use public::{KeyParameters, ObjectAttributes, Public, Scheme, Symmetric};
pub use quote::{PcrValues, VerifiedQuote, verify_quote};
