//! The plinth node agent: hardware evidence collectors, SVID renewal, SPIFFE Workload API.
//!
//! This is the only plinth crate that links a system TPM library (tpm2-tss, through
//! tss-esapi): the verifier crates stay pure, and the agent produces the bytes they check.
//!
//! Every platform's collector implements [`collect::EvidenceSource`] (hello, evidence that
//! binds a new SVID key, evidence that binds none); [`node::Node`] runs the exchange over
//! whichever [`Platform`] the configuration names.
//!
//! ```text
//!  TpmCollector::open(tcti)
//!    .identity()            ─► Hello: EK certificate, EK public, AK public (TPMT_PUBLIC)
//!    .activate_credential() ─► the secret the server sealed to the EK for the AK
//!    .quote(selection, n)   ─► TPMS_ATTEST + TPMT_SIGNATURE + the PCR values quoted
//!    .create_certified_key()─► the SVID key: created in the TPM, certified by the AK
//!    .sign_digest()         ─► ECDSA signatures with that key (the TLS client key)
//!  read_event_log(path)     ─► the firmware's TCG event log, within a budget
//!  exchange::TpmSource      ─► the TPM as an EvidenceSource (the wire messages)
//!  NitroCollector / SnpCollector ─► NSM document / SNP report binding an in-memory P-256 key
//! ```

pub mod collect;
mod config;
mod error;
pub mod exchange;
pub mod node;
mod run;
pub mod tls;
pub mod workload;
pub mod workloads;

pub use collect::{
    CertifiedKey, PcrValue, Platform, Quote, TpmCollector, TpmIdentity, TpmKeyHandle,
    read_event_log,
};
pub use config::AgentConfig;
pub use error::Error;
pub use run::run;
