//! The server's shared state: verifier, CA, datastore, clock, metrics.

use std::collections::HashMap;
use std::sync::Arc;

use plinth_ca::CaDir;
use plinth_core::UnixTime;
use plinth_crypto::SystemRandom;
use plinth_evidence::Verifier;
use plinth_store::Store;

use crate::config::Config;
use crate::metrics::Metrics;

/// Where the server reads the time. Tests fix it to a vector's time; the binary reads
/// the system clock.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> UnixTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        // A clock before 1970 reads as the epoch: every challenge and SVID then looks
        // expired, so the server fails closed.
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        UnixTime::from_millis(millis)
    }
}

/// Everything a request needs.
pub(crate) struct App {
    pub(crate) config: Config,
    pub(crate) verifier: Verifier,
    pub(crate) ca: CaDir,
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: SystemRandom,
    pub(crate) metrics: Metrics,
    /// Policy texts by SHA-256 (hex), so the audit log stores exactly what was applied.
    pub(crate) policy_texts: HashMap<String, plinth_store::PolicyText>,
    /// Challenges recorded with real vectors, answerable once (tests only).
    #[cfg(feature = "test-support")]
    pub(crate) injected: std::sync::Mutex<HashMap<Vec<u8>, plinth_evidence::PendingChallenge>>,
}
