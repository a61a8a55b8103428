//! The plinth attestation server: fresh hardware evidence in, a hardware-bound SPIFFE
//! identity out, and a record a compliance team can trust.
//!
//! ```text
//!  agent ── TLS (server SVID; client SVID on renewal) ──► Attestation.Challenge(Hello)
//!        │                                                  Verifier::challenge ─► nonce row
//!        └──────────────────────────────────────────────► Attestation.Attest(Evidence)
//!             the pending nonce (from memory on the replica that issued it)
//!             ─► Verifier::verify (verification pool) ─► registration (node
//!                registrations from memory) ─► renewal checks
//!             ─► Ca::mint_x509_svid + EAR
//!             ─► ban check + registration epoch check + consume the nonce + audit
//!                record + issued SVID + node row: ONE transaction, shared with the
//!                attestations queued meanwhile (group commit) ─► result (a banned
//!                node, or a nonce another replica consumed first: a refusal, recorded
//!                as such; registrations written since they were read: minted again)
//!  operator ── admin.sock (0600) or TLS with an admin SVID ──► Admin
//!  Prometheus ──► /metrics      load balancers ──► grpc.health.v1
//! ```
//!
//! Every attestation, refused or not, is appended to the hash-chained audit log before
//! the caller hears the outcome; an SVID is never returned unless its record committed. A
//! background task signs a checkpoint of the chain's head with the CA's JWT key every
//! `checkpoint_every_records` records or `checkpoint_every_seconds`, and once more at
//! shutdown. Shutdown stops accepting, lets in-flight attestations finish (up to
//! `shutdown_grace_seconds`) and then closes the database.
//!
//! Errors map to gRPC codes in one place ([`Error::grpc_code`]); the stable error code
//! travels in the `plinth-error-code` metadata and the audit record.

mod admin;
mod app;
mod attest;
mod config;
mod db;
mod ear;
mod error;
mod metrics;
mod registry;
mod tls;
mod verify_pool;
mod workload;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use plinth_api::admin::admin_server::AdminServer;
use plinth_api::attestation::attestation_server::AttestationServer;
use plinth_ca::{CaDir, InitOptions};
use plinth_core::{TrustDomain, UnixTime};
use plinth_crypto::SystemRandom;
use plinth_evidence::{MAX_EVIDENCE_LEN, Trust, Verifier};
use plinth_policy::Policy;
use plinth_store::audit::Checkpoint;
use plinth_store::{CaJournalEntry, PolicyText, Store};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server as TonicServer;

pub use app::{Clock, SystemClock};
pub use config::Config;
pub use ear::AuthorityEarSigner;
pub use error::{ERROR_CODE_HEADER, Error};
pub use tls::{SERVER_ID_PATH, server_id};

use crate::admin::{AdminService, Transport};
use crate::app::App;
use crate::attest::AttestationService;

/// gRPC messages larger than this are refused by the transport before any handler runs;
/// below it, the handlers' own budgets ([`MAX_EVIDENCE_LEN`]) apply and are audited.
const MAX_MESSAGE_LEN: usize = 4 * MAX_EVIDENCE_LEN;
/// How often the gauges and the challenge purge run.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(5);

/// A running server.
pub struct RunningServer {
    app: Arc<App>,
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    admin_socket: PathBuf,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<(), Error>>>,
}

/// Starts a server from `config`, reading the system clock.
///
/// # Errors
/// [`Error::Config`] and [`Error::Startup`] for anything that keeps it from serving.
pub async fn start(config: Config) -> Result<RunningServer, Error> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// Starts a server whose clock is `clock` (tests replay vectors at their own time).
///
/// # Errors
/// As [`start`].
pub async fn start_with_clock(
    config: Config,
    clock: Arc<dyn Clock>,
) -> Result<RunningServer, Error> {
    let now = clock.now();
    let rng = SystemRandom;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| Error::Startup {
        what: "data directory",
        reason: format!("{}: {e}", config.data_dir.display()),
    })?;
    let ca = open_or_init_ca(&config, now, &rng)?;
    let store = match &config.database_url {
        Some(url) => Store::open(url).await,
        None => Store::open_sqlite(&config.data_dir).await,
    }
    .map_err(|e| Error::Startup {
        what: "datastore",
        reason: e.to_string(),
    })?;
    record_ca_journal(&store, &ca, now).await?;
    let (policies, policy_texts) = load_policies(&config.policies)?;
    let verifier = Verifier::new(load_trust(&config)?, policies);
    let identity = Arc::new(tls::ServerIdentity::mint(
        ca.ca(),
        Duration::from_secs(config.server_svid_ttl_seconds),
        now,
        &rng,
    )?);
    let acceptor = tls::acceptor(ca.ca(), Arc::clone(&identity))?;
    let app = Arc::new(App {
        metrics: metrics::Metrics::new(),
        verify_pool: verify_pool::VerifyPool::start(
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        )
        .map_err(|e| Error::Internal(format!("starting the verification threads: {e}")))?,
        config,
        verifier,
        bundle: app::PublishedBundle::of(&ca),
        ca,
        store,
        clock,
        rng,
        policy_texts,
        #[cfg(feature = "test-support")]
        injected: std::sync::Mutex::new(HashMap::new()),
    });

    let listener = TcpListener::bind(app.config.listen)
        .await
        .map_err(|e| Error::Startup {
            what: "listening",
            reason: format!("{}: {e}", app.config.listen),
        })?;
    let addr = listener.local_addr().map_err(|e| Error::Startup {
        what: "listening",
        reason: e.to_string(),
    })?;
    let admin_socket = app.config.admin_socket_path();
    let admin_listener = bind_admin_socket(&admin_socket)?;
    let metrics_listener = match app.config.metrics_listen {
        Some(at) => Some(TcpListener::bind(at).await.map_err(|e| Error::Startup {
            what: "metrics listener",
            reason: format!("{at}: {e}"),
        })?),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().and_then(metrics::describe);

    if let Ok(authority) = app.ca.ca().active() {
        app.metrics.set_ca_expiry(authority.not_after().as_secs());
    }
    let (shutdown, signal) = watch::channel(false);
    let mut tasks = spawn_services(
        &app,
        listener,
        admin_listener,
        metrics_listener,
        acceptor,
        &signal,
    )
    .await?;
    tasks.push(tokio::spawn(roll_server_svid(
        Arc::clone(&app),
        identity,
        signal.clone(),
    )));
    tracing::info!(
        %addr,
        admin_socket = %admin_socket.display(),
        metrics = ?metrics_addr,
        trust_domain = app.ca.ca().trust_domain().as_str(),
        policies = app.verifier.policies().len(),
        "plinth server listening"
    );
    Ok(RunningServer {
        app,
        addr,
        metrics_addr,
        admin_socket,
        shutdown,
        tasks,
    })
}

/// Spawns the TLS API, the admin socket, `/metrics` and housekeeping.
async fn spawn_services(
    app: &Arc<App>,
    listener: TcpListener,
    admin_listener: UnixListener,
    metrics_listener: Option<TcpListener>,
    acceptor: tokio_rustls::TlsAcceptor,
    signal: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<Result<(), Error>>>, Error> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AttestationServer<AttestationService>>()
        .await;
    let attestation = AttestationServer::new(AttestationService {
        app: Arc::clone(app),
    })
    .max_decoding_message_size(MAX_MESSAGE_LEN);
    let admin_tls = AdminServer::new(AdminService {
        app: Arc::clone(app),
        transport: Transport::Tls,
    });
    let admin_unix = AdminServer::new(AdminService {
        app: Arc::clone(app),
        transport: Transport::UnixSocket,
    });
    let grace = Duration::from_secs(app.config.shutdown_grace_seconds);

    let mut tasks = Vec::new();
    let router = TonicServer::builder()
        .add_service(health.clone())
        .add_service(attestation)
        .add_service(admin_tls);
    tasks.push(tokio::spawn(serve(
        "attestation API",
        router.serve_with_incoming_shutdown(
            tls::incoming(listener, acceptor, signal.clone()),
            stopped(signal.clone()),
        ),
        signal.clone(),
        grace,
    )));
    let unix_router = TonicServer::builder()
        .add_service(health)
        .add_service(admin_unix);
    tasks.push(tokio::spawn(serve(
        "admin socket",
        unix_router.serve_with_incoming_shutdown(
            UnixListenerStream::new(admin_listener),
            stopped(signal.clone()),
        ),
        signal.clone(),
        grace,
    )));
    if let Some(listener) = metrics_listener {
        let app = Arc::clone(app);
        let signal = signal.clone();
        tasks.push(tokio::spawn(async move {
            metrics::serve(listener, app, signal).await;
            Ok(())
        }));
    }
    tasks.push(tokio::spawn(housekeeping(Arc::clone(app), signal.clone())));
    Ok(tasks)
}

impl RunningServer {
    /// The attestation API's address.
    pub const fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `/metrics` address, when enabled.
    pub const fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The admin socket.
    pub fn admin_socket(&self) -> &Path {
        &self.admin_socket
    }

    /// The trust bundle's X.509 authorities (DER): what agents bootstrap from.
    pub fn bundle_der(&self) -> Vec<Vec<u8>> {
        self.app.bundle.x509.clone()
    }

    /// The trust bundle as PEM.
    pub fn bundle_pem(&self) -> String {
        self.app.bundle.x509_pem.clone()
    }

    /// The trust bundle as a SPIFFE JWKS (for EAR and checkpoint verification).
    pub fn bundle_jwks(&self) -> String {
        self.app.bundle.spiffe_jwks.clone()
    }

    /// The datastore (tests read the audit log through it).
    pub fn store(&self) -> &Store {
        &self.app.store
    }

    /// Makes a challenge recorded with a real vector answerable once (tests only: the
    /// binary has no way to reach this).
    ///
    /// # Errors
    /// [`Error::Internal`] if the table's lock is poisoned.
    #[cfg(feature = "test-support")]
    pub fn inject_challenge(
        &self,
        pending: plinth_evidence::PendingChallenge,
    ) -> Result<(), Error> {
        let _previous = self
            .app
            .injected
            .lock()
            .map_err(|_| Error::Internal("injected challenges poisoned".into()))?
            .insert(pending.nonce.clone(), pending);
        Ok(())
    }

    /// Signs a checkpoint of the audit chain's head now, if it moved.
    ///
    /// # Errors
    /// The store's or the signer's error.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, Error> {
        checkpoint(&self.app).await
    }

    /// Stops accepting, lets in-flight attestations finish (up to the grace period),
    /// signs a final checkpoint and closes the database.
    ///
    /// # Errors
    /// The first task's error.
    pub async fn shutdown(self) -> Result<(), Error> {
        let _sent = self.shutdown.send(true);
        self.wait().await
    }

    /// Runs until shutdown is asked for (by [`Self::shutdown`]) or a task fails.
    ///
    /// # Errors
    /// The first task's error.
    pub async fn wait(self) -> Result<(), Error> {
        let mut first_error = None;
        let mut tasks: futures_util::stream::FuturesUnordered<_> = self.tasks.into_iter().collect();
        while let Some(result) = futures_util::StreamExt::next(&mut tasks).await {
            let result = result
                .map_err(|e| Error::Internal(e.to_string()))
                .and_then(|r| r);
            if let Err(error) = result {
                // One listener failing stops the others: a half-serving server is worse
                // than a stopped one.
                tracing::error!(%error, "a server task failed; shutting down");
                let _sent = self.shutdown.send(true);
                let _first = first_error.get_or_insert(error);
            }
        }
        if let Err(error) = checkpoint(&self.app).await {
            let _first = first_error.get_or_insert(error);
        }
        self.app.store.close().await;
        let _removed = std::fs::remove_file(&self.admin_socket);
        first_error.map_or(Ok(()), Err)
    }

    /// A handle that asks the server to shut down (signal handlers hold one).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }
}

/// Asks a running server to shut down gracefully.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(watch::Sender<bool>);

impl ShutdownHandle {
    /// Asks for shutdown.
    pub fn shutdown(&self) {
        let _sent = self.0.send(true);
    }
}

async fn stopped(mut signal: watch::Receiver<bool>) {
    while !*signal.borrow() {
        if signal.changed().await.is_err() {
            return;
        }
    }
}

/// Replaces the server's TLS SVID at half its lifetime until shutdown; a failed roll is
/// logged and retried in a minute (the current SVID stays until then).
async fn roll_server_svid(
    app: Arc<App>,
    identity: Arc<tls::ServerIdentity>,
    signal: watch::Receiver<bool>,
) -> Result<(), Error> {
    let ttl = Duration::from_secs(app.config.server_svid_ttl_seconds);
    let mut wait = Duration::from_millis(
        identity
            .roll_at()
            .as_millis()
            .saturating_sub(app.clock.now().as_millis()),
    );
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopped(signal.clone()) => return Ok(()),
        }
        wait = match identity.roll(app.ca.ca(), ttl, app.clock.now(), &app.rng) {
            Ok(not_after) => {
                tracing::info!(%not_after, "server TLS SVID renewed");
                Duration::from_millis(
                    identity
                        .roll_at()
                        .as_millis()
                        .saturating_sub(app.clock.now().as_millis()),
                )
            }
            Err(error) => {
                tracing::error!(%error, expires = %identity.not_after(), "renewing the server TLS SVID failed; retrying in a minute");
                Duration::from_secs(60)
            }
        };
    }
}

/// Runs a tonic server; once shutdown is asked, gives it `grace` to drain.
async fn serve(
    what: &'static str,
    server: impl std::future::Future<Output = Result<(), tonic::transport::Error>>,
    signal: watch::Receiver<bool>,
    grace: Duration,
) -> Result<(), Error> {
    tokio::pin!(server);
    let result = tokio::select! {
        result = &mut server => result,
        () = stopped(signal) => tokio::time::timeout(grace, &mut server).await.unwrap_or_else(|_| {
            tracing::warn!(what, "in-flight requests outlived the shutdown grace period");
            Ok(())
        }),
    };
    result.map_err(|e| Error::Internal(format!("{what}: {e}")))
}

fn open_or_init_ca(
    config: &Config,
    now: UnixTime,
    rng: &dyn plinth_core::SecureRandom,
) -> Result<CaDir, Error> {
    let dir = config.data_dir.join("ca");
    let pin = std::env::var("PLINTH_PKCS11_PIN")
        .ok()
        .map(zeroize::Zeroizing::new);
    let startup = |e: plinth_ca::Error| Error::Startup {
        what: "CA",
        reason: format!("{}: {e}", dir.display()),
    };
    if dir.join("ca.json").exists()
        || dir.exists() && dir.read_dir().is_ok_and(|mut d| d.next().is_some())
    {
        return CaDir::open(&dir, pin, now).map_err(startup);
    }
    let trust_domain =
        TrustDomain::new(&config.trust_domain).map_err(|e| Error::Config(e.to_string()))?;
    tracing::info!(dir = %dir.display(), "creating a CA");
    CaDir::init(&dir, &InitOptions::new(trust_domain), None, pin, now, rng).map_err(startup)
}

/// Journals every authority's public parts, so `plinth audit` can check checkpoints
/// without the CA directory.
async fn record_ca_journal(store: &Store, ca: &CaDir, now: UnixTime) -> Result<(), Error> {
    for authority in ca.ca().authorities() {
        let Some(certificate) = authority.certificates().first() else {
            continue;
        };
        store
            .record_authority(&CaJournalEntry {
                authority_id: authority.id(),
                state: authority.state().name().to_owned(),
                x509_certificate_der: certificate.der().to_vec(),
                jwt_key_id: authority.jwt_key_id().to_owned(),
                jwt_public_spki_der: authority.jwt_public_key().spki_der().to_vec(),
                not_before: authority.not_before(),
                not_after: authority.not_after(),
                recorded_at: now,
            })
            .await?;
    }
    Ok(())
}

type LoadedPolicies = (Vec<Policy>, HashMap<String, PolicyText>);

fn load_policies(dir: &Path) -> Result<LoadedPolicies, Error> {
    let startup = |reason: String| Error::Startup {
        what: "policies",
        reason,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| startup(format!("{}: {e}", dir.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(startup(format!("{}: no *.toml policies", dir.display())));
    }
    let mut policies = Vec::new();
    let mut texts = HashMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| startup(format!("{}: {e}", file.display())))?;
        let policy = Policy::parse(&file.display().to_string(), &text)
            .map_err(|e| startup(e.to_string()))?;
        let hash = policy.hash().to_hex();
        let _previous = texts.insert(
            hash.clone(),
            PolicyText {
                name: policy.name().to_owned(),
                hash_hex: hash,
                text,
            },
        );
        policies.push(policy);
    }
    Ok((policies, texts))
}

fn load_trust(config: &Config) -> Result<Trust, Error> {
    let startup = |reason: String| Error::Startup {
        what: "trust anchors",
        reason,
    };
    let mut trust = Trust::builtin().map_err(|e| startup(e.to_string()))?;
    for path in &config.tpm_roots {
        let files: Vec<PathBuf> = if path.is_dir() {
            std::fs::read_dir(path)
                .map_err(|e| startup(format!("{}: {e}", path.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect()
        } else {
            vec![path.clone()]
        };
        for file in files {
            let bytes =
                std::fs::read(&file).map_err(|e| startup(format!("{}: {e}", file.display())))?;
            let certificates = if bytes.starts_with(b"-----BEGIN") {
                plinth_x509::certificates_from_pem(&bytes)
                    .map_err(|e| startup(format!("{}: {e}", file.display())))?
            } else {
                vec![
                    plinth_x509::Certificate::from_der(&bytes)
                        .map_err(|e| startup(format!("{}: {e}", file.display())))?,
                ]
            };
            for certificate in certificates {
                if certificate.is_self_issued() {
                    trust.ek_roots.add_root(certificate);
                } else {
                    trust.ek_roots.add_intermediate(certificate);
                }
            }
        }
    }
    for hex_hash in &config.tpm_ek_allow {
        let bytes = hex::decode(hex_hash.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| startup(format!("tpm_ek_allow: {hex_hash} is not a SHA-256")))?;
        trust.ek_allow.add(bytes);
    }
    Ok(trust)
}

fn bind_admin_socket(path: &Path) -> Result<UnixListener, Error> {
    use std::os::unix::fs::PermissionsExt as _;
    let startup = |reason: String| Error::Startup {
        what: "admin socket",
        reason: format!("{}: {reason}", path.display()),
    };
    // A socket left by a killed server would block the bind; nothing else may be there.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt as _;
        if !meta.file_type().is_socket() {
            return Err(startup("exists and is not a socket".into()));
        }
        std::fs::remove_file(path).map_err(|e| startup(e.to_string()))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| startup(e.to_string()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| startup(e.to_string()))?;
    Ok(listener)
}

/// Signs the chain head if records were appended since the last checkpoint.
async fn checkpoint(app: &App) -> Result<Option<Checkpoint>, Error> {
    let head = app.store.head().await?;
    let last = app.store.latest_checkpoint().await?;
    if head.seq == 0 || last.as_ref().is_some_and(|c| c.seq >= head.seq) {
        return Ok(None);
    }
    let authority = app.ca.ca().active()?;
    let signer = authority.jwt_signer();
    let signed_at = app.clock.now();
    let message = plinth_store::audit::checkpoint_message(head.seq, &head.hash, signed_at);
    let checkpoint = Checkpoint {
        seq: head.seq,
        head_hash: head.hash,
        signed_at,
        signer_spki_der: signer.public_key().spki_der().to_vec(),
        signature: signer.sign(&message)?,
        algorithm: signer.algorithm().jws_name().to_owned(),
    };
    app.store.add_checkpoint(&checkpoint).await?;
    tracing::info!(seq = head.seq, "audit checkpoint signed");
    Ok(Some(checkpoint))
}

/// Checkpoints, gauges, and purging expired challenges.
async fn housekeeping(app: Arc<App>, mut signal: watch::Receiver<bool>) -> Result<(), Error> {
    let mut since_checkpoint = Duration::ZERO;
    loop {
        tokio::select! {
            () = tokio::time::sleep(HOUSEKEEPING_INTERVAL) => {}
            _ = signal.changed() => return Ok(()),
        }
        since_checkpoint += HOUSEKEEPING_INTERVAL;
        let now = app.clock.now();
        let head = app.store.head().await;
        let last = app.store.latest_checkpoint().await;
        if let (Ok(head), Ok(last)) = (head, last) {
            let unsigned = head.seq - last.map_or(0, |c| c.seq);
            let due = u64::try_from(unsigned).unwrap_or(0) >= app.config.checkpoint_every_records
                || (unsigned > 0
                    && since_checkpoint.as_secs() >= app.config.checkpoint_every_seconds);
            if due {
                match checkpoint(&app).await {
                    Ok(_) => since_checkpoint = Duration::ZERO,
                    Err(error) => tracing::error!(%error, "audit checkpoint failed"),
                }
            }
        }
        if let Ok(count) = app.store.count_outstanding(now).await {
            app.metrics.set_svids_outstanding(count);
        }
        if let Ok(authority) = app.ca.ca().active() {
            app.metrics.set_ca_expiry(authority.not_after().as_secs());
        }
        if let Err(error) = app.store.purge_expired_challenges(now).await {
            tracing::warn!(%error, "purging expired challenges failed");
        }
    }
}
