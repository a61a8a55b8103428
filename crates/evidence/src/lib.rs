//! From wire evidence to an appraisal: the one path every front end shares (the plinth
//! server, the SPIRE server plugin, `plinth policy check`).
//!
//! ```text
//!  Hello ─► Verifier::challenge ─► ChallengeResponse (to the agent)
//!                               └► PendingChallenge  (kept by the caller: a database row
//!                                   shared by replicas, or a SPIRE attestation stream)
//!  Evidence + PendingChallenge ─► Verifier::verify
//!      nonce (constant time), expiry, platform
//!      TPM:   EK certificate or allow-list, credential activation (the AK is in that TPM),
//!             quote over the nonce, event log against the quote, TPM2_Certify of the key
//!      Nitro: document signature and chain, nonce, public_key
//!      SNP:   report signature and VCEK/VLEK chain, REPORT_DATA = SHA-512(nonce ‖ SPKI)
//!      ─► appraise against every policy of the platform ─► Appraised
//!  Appraised::passed ─► PassedAttestation: the only value an SVID may be minted from
//! ```
//!
//! The crate is pure like the verifiers it drives: bytes, trust anchors, policies, `now`
//! and a random source in; a verified value or a typed [`Error`] out. The pending state of
//! a TPM challenge holds a commitment to the activation secret, never the secret, so the
//! database that keeps it reveals nothing an attacker could answer with.

mod appraised;
mod challenge;
mod error;
mod nitro;
mod snp;
mod tpm;
mod trust;

pub use appraised::{Appraised, PassedAttestation};
pub use challenge::{MAX_EVIDENCE_LEN, NONCE_LEN, PendingChallenge, Verifier};
pub use error::Error;
pub use trust::Trust;
