//! The node's identity over time: attest at start, renew at half the SVID's lifetime with
//! a fresh exchange over mutual TLS (the SVID's key stays where the evidence bound it),
//! back off with jitter while the server is unreachable, and keep the last valid SVID
//! until it expires.
//!
//! ```text
//!  start ─► attest (no client certificate) ─► NodeSvid ─► sleep until half-life
//!              ▲                                              │
//!              └── renew over mTLS with the current SVID ◄────┘
//!  failure ─► log (a policy refusal names its failing rules) ─► backoff 1 s … 60 s ± 20 %
//!             never sleeping past the current SVID's expiry
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use plinth_api::attestation::Hello;
use plinth_api::attestation::attestation_client::AttestationClient;
use plinth_client::ServerTrust;
use plinth_core::{SecureRandom, SpiffeId, UnixTime};
use rustls::client::ResolvesClientCert;
use tokio::sync::watch;
use tonic::transport::Channel;

use rustls::sign::SigningKey;

use crate::Error;
use crate::collect::EvidenceSource;
use crate::tls::SvidClientCert;

/// The first retry delay, and the cap.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Where the agent reads the time (tests move it).
pub trait AgentClock: Send + Sync {
    /// Now.
    fn now(&self) -> UnixTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl AgentClock for SystemClock {
    fn now(&self) -> UnixTime {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        UnixTime::from_millis(millis)
    }
}

/// The node's current SVID.
#[derive(Debug)]
pub struct NodeSvid {
    /// The SPIFFE ID.
    pub spiffe_id: SpiffeId,
    /// DER, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// The key the evidence bound (in the TPM, or in enclave or confidential-VM memory).
    pub key: Arc<dyn SigningKey>,
    /// Expiry.
    pub not_after: UnixTime,
    /// When it was issued (the agent's clock).
    pub issued_at: UnixTime,
    /// The trust bundle's X.509 authorities.
    pub bundle_x509: Vec<Vec<u8>>,
    /// The EAR attestation result.
    pub ear: String,
}

impl NodeSvid {
    /// When to renew: half-way through its life.
    pub const fn renew_at(&self) -> UnixTime {
        self.issued_at.halfway_to(self.not_after)
    }
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ServerEndpoint {
    /// Its address.
    pub addr: std::net::SocketAddr,
    /// Its bundle and SPIFFE ID.
    pub trust: ServerTrust,
    /// Certificate checks at this time (`None`: the system clock).
    pub tls_time: Option<Arc<dyn rustls::time_provider::TimeProvider>>,
}

/// The node: its evidence source, its server, its current SVID.
pub struct Node {
    source: Arc<Mutex<Box<dyn EvidenceSource>>>,
    hello: Hello,
    server: ServerEndpoint,
    clock: Arc<dyn AgentClock>,
    current: watch::Sender<Option<Arc<NodeSvid>>>,
}

impl Node {
    /// A node with this evidence source and server.
    ///
    /// # Errors
    /// The source's error making its hello (reading the TPM's identity).
    pub fn new(
        mut source: Box<dyn EvidenceSource>,
        server: ServerEndpoint,
        clock: Arc<dyn AgentClock>,
    ) -> Result<Self, Error> {
        let hello = source.hello()?;
        let (current, _) = watch::channel(None);
        Ok(Self {
            source: Arc::new(Mutex::new(source)),
            hello,
            server,
            clock,
            current,
        })
    }

    /// Follows the current SVID (None until the first attestation succeeds, and again once
    /// the last one expired without a renewal).
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<NodeSvid>>> {
        self.current.subscribe()
    }

    /// The current SVID, if still valid.
    pub fn current(&self) -> Option<Arc<NodeSvid>> {
        let now = self.clock.now();
        self.current
            .borrow()
            .as_ref()
            .filter(|svid| svid.not_after > now)
            .cloned()
    }

    /// The SVID as a TLS client identity.
    pub fn client_cert(svid: &NodeSvid) -> Arc<dyn ResolvesClientCert> {
        Arc::new(SvidClientCert::new(
            svid.chain.clone(),
            Arc::clone(&svid.key),
        ))
    }

    /// A channel to the server, over mutual TLS with the current SVID when there is one.
    ///
    /// # Errors
    /// [`Error::Connect`].
    pub async fn channel(&self) -> Result<Channel, Error> {
        let client = self.current().map(|svid| Self::client_cert(&svid));
        let config = plinth_client::client_config(
            self.server.trust.clone(),
            client,
            self.server.tls_time.clone(),
        )?;
        Ok(plinth_client::connect(self.server.addr, Arc::new(config)).await?)
    }

    /// One attestation: a first one, or a renewal when an SVID is still valid.
    ///
    /// # Errors
    /// [`Error::Connect`], [`Error::Refused`] (a policy refusal names its rules), or the
    /// evidence source's error.
    pub async fn attest(&self) -> Result<Arc<NodeSvid>, Error> {
        let mut client = AttestationClient::new(self.channel().await?);
        let challenge = client
            .challenge(self.hello.clone())
            .await
            .map_err(Error::Refused)?
            .into_inner();
        let source = Arc::clone(&self.source);
        let (evidence, key) = tokio::task::spawn_blocking(move || {
            source
                .lock()
                .map_err(|_| Error::Agent("the evidence source lock is poisoned".into()))?
                .evidence_for_new_key(&challenge)
        })
        .await
        .map_err(|e| Error::Agent(e.to_string()))??;
        let result = client
            .attest(evidence)
            .await
            .map_err(Error::Refused)?
            .into_inner();
        let spiffe_id = SpiffeId::parse(&result.spiffe_id)
            .map_err(|e| Error::Agent(format!("the server returned {}: {e}", result.spiffe_id)))?;
        let svid = Arc::new(NodeSvid {
            spiffe_id,
            chain: result.svid_chain,
            key,
            not_after: UnixTime::from_millis(u64::try_from(result.expires_at_ms).unwrap_or(0)),
            issued_at: self.clock.now(),
            bundle_x509: result.bundle_x509,
            ear: result.ear,
        });
        let _previous = self.current.send_replace(Some(Arc::clone(&svid)));
        Ok(svid)
    }

    /// Keeps the node attested until `shutdown` resolves.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = BACKOFF_MIN;
        loop {
            let wait = match self.attest().await {
                Ok(svid) => {
                    backoff = BACKOFF_MIN;
                    tracing::info!(
                        spiffe_id = %svid.spiffe_id,
                        not_after = %svid.not_after,
                        renew_at = %svid.renew_at(),
                        "node attested"
                    );
                    millis_until(self.clock.now(), svid.renew_at())
                }
                Err(error) => {
                    log_failure(&error);
                    let delay = jittered(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    if let Some(svid) = self.current() {
                        // Keep serving the valid SVID; retry before it runs out.
                        delay.min(millis_until(self.clock.now(), svid.not_after) / 2)
                    } else {
                        delay
                    }
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait.max(Duration::from_millis(100))) => {}
                () = &mut shutdown => return,
            }
        }
    }
}

fn millis_until(now: UnixTime, then: UnixTime) -> Duration {
    Duration::from_millis(then.as_millis().saturating_sub(now.as_millis()))
}

/// ±20 % so that a fleet restarted together does not retry together.
fn jittered(delay: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let spread = if plinth_crypto::SystemRandom.fill(&mut byte).is_ok() {
        u32::from(byte[0] % 41)
    } else {
        20
    };
    delay * (80 + spread) / 100
}

/// Logs why an attestation failed, in words an operator can act on.
fn log_failure(error: &Error) {
    match error {
        Error::Refused(status) if status.code() == tonic::Code::PermissionDenied => {
            tracing::error!(
                reason = status.message(),
                "attestation refused: the node no longer satisfies the server's policy or was banned; fix the named rule and the agent will retry"
            );
        }
        Error::Refused(status) => {
            tracing::warn!(code = ?status.code(), reason = status.message(), "attestation failed; retrying");
        }
        Error::Connect(e) => {
            tracing::warn!(error = %e, "server unreachable; retrying with backoff");
        }
        other => tracing::error!(error = %other, "attestation failed; retrying"),
    }
}
