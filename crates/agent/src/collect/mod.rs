//! Evidence collectors, one per platform. Each is synchronous: the async agent runs them
//! on a blocking thread.

pub mod tpm;

pub use tpm::{
    CertifiedKey, DEFAULT_EVENT_LOG, DEFAULT_TCTI, MAX_EVENT_LOG, PcrValue, Quote, TpmCollector,
    TpmIdentity, TpmKeyHandle, read_event_log,
};
