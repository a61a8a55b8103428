//! A plinth server in the test process: its own data directory, policies and ports, and
//! a TLS client that authenticates it by its SPIFFE ID against its bundle.
#![allow(
    clippy::panic,
    reason = "a test harness: a failure to set up is a test failure and should abort loudly"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use plinth_api::admin::admin_client::AdminClient;
use plinth_api::attestation::attestation_client::AttestationClient;
use plinth_api::attestation::{Evidence, NitroEvidence, evidence};
use plinth_core::{Platform, UnixTime};
use plinth_evidence::PendingChallenge;
use plinth_server::{Clock, Config, RunningServer};
use tempfile::TempDir;
use tonic::transport::Channel;

/// A clock stuck at one instant (a vector's own time), for the server and for the
/// client's certificate checks alike.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub UnixTime);

impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        self.0
    }
}

impl rustls::time_provider::TimeProvider for FixedClock {
    fn current_time(&self) -> Option<rustls::pki_types::UnixTime> {
        Some(rustls::pki_types::UnixTime::since_unix_epoch(
            std::time::Duration::from_millis(self.0.as_millis()),
        ))
    }
}

/// A clock that starts at the system time and moves only when told to, shared by the
/// server and its clients' certificate checks.
#[derive(Debug, Clone, Default)]
pub struct SteppingClock(Arc<std::sync::atomic::AtomicU64>);

impl SteppingClock {
    /// A clock at the current system time.
    pub fn now() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self(Arc::new(std::sync::atomic::AtomicU64::new(millis)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let _previous = self.0.fetch_add(
            u64::try_from(by.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    fn millis(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Clock for SteppingClock {
    fn now(&self) -> UnixTime {
        UnixTime::from_millis(self.millis())
    }
}

impl rustls::time_provider::TimeProvider for SteppingClock {
    fn current_time(&self) -> Option<rustls::pki_types::UnixTime> {
        Some(rustls::pki_types::UnixTime::since_unix_epoch(
            std::time::Duration::from_millis(self.millis()),
        ))
    }
}

/// A server and the directory it lives in.
pub struct TestServer {
    /// The running server.
    pub server: RunningServer,
    /// Its data directory and policies (removed on drop).
    pub dir: TempDir,
    /// The time clients check certificates at (`None`: the system clock).
    pub tls_time: Option<Arc<dyn rustls::time_provider::TimeProvider>>,
}

/// A configuration for a server in `dir`, with `policies` (file name, text) written to
/// `dir/policies`, listening on an ephemeral port, metrics off.
///
/// # Panics
/// When the directory cannot be written (a test failure).
pub fn config_in(dir: &Path, policies: &[(&str, String)]) -> Config {
    let policy_dir = dir.join("policies");
    std::fs::create_dir_all(&policy_dir).unwrap_or_else(|e| panic!("policies dir: {e}"));
    for (name, text) in policies {
        std::fs::write(policy_dir.join(name), text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    Config {
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        metrics_listen: None,
        policies: policy_dir,
        ..Config::default()
    }
}

impl TestServer {
    /// Starts a server with `config` (see [`config_in`]) and `clock`.
    ///
    /// # Panics
    /// When the server does not start (a test failure).
    pub async fn start(dir: TempDir, config: Config) -> Self {
        let server = plinth_server::start(config)
            .await
            .unwrap_or_else(|e| panic!("server did not start: {e}"));
        Self {
            server,
            dir,
            tls_time: None,
        }
    }

    /// Starts a server whose clock (and its clients' certificate checks) is fixed at `at`.
    ///
    /// # Panics
    /// When the server does not start.
    pub async fn start_at(dir: TempDir, config: Config, at: UnixTime) -> Self {
        let clock = FixedClock(at);
        Self::start_with(dir, config, Arc::new(clock), Arc::new(clock)).await
    }

    /// Starts a server on `clock`, its clients checking certificates at `tls_time`.
    ///
    /// # Panics
    /// When the server does not start.
    pub async fn start_with(
        dir: TempDir,
        config: Config,
        clock: Arc<dyn Clock>,
        tls_time: Arc<dyn rustls::time_provider::TimeProvider>,
    ) -> Self {
        let server = plinth_server::start_with_clock(config, clock)
            .await
            .unwrap_or_else(|e| panic!("server did not start: {e}"));
        Self {
            server,
            dir,
            tls_time: Some(tls_time),
        }
    }

    /// A TLS channel to the server, authenticating it by its SPIFFE ID.
    ///
    /// # Panics
    /// When the connection fails (a test failure).
    pub async fn channel(&self) -> Channel {
        self.channel_with(None).await
    }

    /// A TLS channel presenting `client` (a renewal).
    ///
    /// # Panics
    /// When the connection fails.
    pub async fn channel_with(
        &self,
        client: Option<Arc<dyn rustls::client::ResolvesClientCert>>,
    ) -> Channel {
        let config = self.client_config(client);
        plinth_client::connect(self.server.local_addr(), Arc::new(config))
            .await
            .unwrap_or_else(|e| panic!("connecting: {e}"))
    }

    /// The TLS client configuration the channel uses.
    ///
    /// # Panics
    /// When the bundle does not parse.
    pub fn client_config(
        &self,
        client: Option<Arc<dyn rustls::client::ResolvesClientCert>>,
    ) -> rustls::ClientConfig {
        let bundle = self.server.bundle_der();
        let server_id = plinth_core::SpiffeId::parse("spiffe://example.org/plinth/server")
            .unwrap_or_else(|e| panic!("{e}"));
        let trust = plinth_client::ServerTrust::new(&bundle, server_id)
            .unwrap_or_else(|e| panic!("bundle: {e}"));
        plinth_client::client_config(trust, client, self.tls_time.clone())
            .unwrap_or_else(|e| panic!("TLS: {e}"))
    }

    /// An attestation API client.
    pub async fn attestation(&self) -> AttestationClient<Channel> {
        AttestationClient::new(self.channel().await)
    }

    /// An admin API client on the server's unix socket.
    ///
    /// # Panics
    /// When the socket cannot be reached (a test failure).
    pub async fn admin(&self) -> AdminClient<Channel> {
        let channel = plinth_client::connect_unix(self.server.admin_socket().to_owned())
            .await
            .unwrap_or_else(|e| panic!("admin socket: {e}"));
        AdminClient::new(channel)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// The repository's testdata directory.
pub fn testdata(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(relative)
}

/// A policy from the repository's firmware-policies directory.
///
/// # Panics
/// When the file cannot be read (a test failure).
pub fn firmware_policy(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../firmware-policies")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// anjuna `sample_attestation_doc_full.bin`: a real Nitro document from a debug-mode
/// enclave, carrying the nonce "Nonce\n" and an RSA-2048 public key: the one Nitro vector
/// that gets an SVID. Its nonce was fixed when it was recorded, so a test injects its
/// challenge ([`RunningServer::inject_challenge`]) and runs the server at [`Self::AT`].
pub struct NitroFullVector;

impl NitroFullVector {
    /// When the document was produced (Unix ms).
    pub const AT: u64 = 1_706_120_065_635;
    /// The nonce it carries.
    pub const NONCE: &[u8] = b"Nonce\n";
    /// The SPIFFE ID [`Self::policy`] gives it.
    pub const SPIFFE_ID: &str =
        "spiffe://example.org/enclave/i-0e4fe5de7ee5abe78-enc018d3cadd7d66279";
    /// One of the selectors [`Self::policy`] gives it.
    pub const MODULE_SELECTOR: &str = "nitro:module:i-0e4fe5de7ee5abe78-enc018d3cadd7d66279";

    /// The document.
    ///
    /// # Panics
    /// When the file cannot be read (a test failure).
    pub fn document() -> Vec<u8> {
        let path = testdata("nitro/anjuna/attester/sample_attestation_doc_full.bin");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// A policy for that enclave: debug allowed (it is a debug enclave), its parent's
    /// PCR3 and PCR4.
    pub fn policy() -> String {
        r#"version = 1
name = "nitro-anjuna-debug"
platform = "nitro"

[identity]
trust_domain = "example.org"
spiffe_id = "spiffe://{trust_domain}/enclave/{module_id}"
selectors = ["nitro:module:{module_id}"]
svid_ttl_seconds = 900

[nitro]
allow_debug = true
max_age_seconds = 300

[nitro.pcrs]
3 = ["a466a207decd0af95c65559ac84c78893d516ef0fcb0defa2e9e7c6ea84aaecd0feffed8be620eb1d4b4eb362ed1d8ba"]
4 = ["1cc1521ffd7ef3a65a6183945c76af7e53a7eaba33b8c9fe53135505f675796edbff58c3150c1e42c57badbced32fc50"]
"#
        .to_owned()
    }

    /// Its challenge, answerable for a minute after [`Self::AT`].
    pub fn challenge() -> PendingChallenge {
        PendingChallenge::for_test_vector(
            Self::NONCE.to_vec(),
            Platform::Nitro,
            UnixTime::from_millis(Self::AT + 60_000),
        )
    }

    /// The evidence message answering [`Self::challenge`].
    pub fn evidence() -> Evidence {
        Evidence {
            nonce: Self::NONCE.to_vec(),
            platform: Some(evidence::Platform::Nitro(NitroEvidence {
                document: Self::document(),
            })),
        }
    }
}
