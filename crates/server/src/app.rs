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

/// The trust bundle as the API hands it out, built once: the CA does not change while
/// the server runs (a rotation takes a restart), and every attestation returns it.
pub(crate) struct PublishedBundle {
    /// The X.509 authorities (DER).
    pub(crate) x509: Vec<Vec<u8>>,
    /// As PEM.
    pub(crate) x509_pem: String,
    /// Both kinds of authority as a SPIFFE bundle JWKS.
    pub(crate) spiffe_jwks: String,
    /// The JWT authorities as a JWKS.
    pub(crate) jwt_jwks: String,
}

impl PublishedBundle {
    pub(crate) fn of(ca: &CaDir) -> Self {
        let bundle = ca.ca().bundle();
        Self {
            x509: bundle.x509_authorities().to_vec(),
            x509_pem: bundle.x509_pem(),
            spiffe_jwks: bundle.to_spiffe_jwks(),
            jwt_jwks: bundle.to_jwt_jwks(),
        }
    }
}

/// Everything a request needs.
pub(crate) struct App {
    pub(crate) config: Config,
    pub(crate) verifier: Verifier,
    pub(crate) ca: CaDir,
    /// The CA's trust bundle in the forms the API hands out.
    pub(crate) bundle: PublishedBundle,
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: SystemRandom,
    pub(crate) metrics: Metrics,
    /// Runs evidence verification: one thread per core.
    pub(crate) verify_pool: crate::verify_pool::VerifyPool,
    /// Policy texts by SHA-256 (hex), so the audit log stores exactly what was applied.
    pub(crate) policy_texts: HashMap<String, plinth_store::PolicyText>,
    /// Challenges recorded with real vectors, answerable once (tests only).
    #[cfg(feature = "test-support")]
    pub(crate) injected: std::sync::Mutex<HashMap<Vec<u8>, plinth_evidence::PendingChallenge>>,
}
