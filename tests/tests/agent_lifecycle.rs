//! The agent's node identity over time, against a real server and a real TPM (swtpm):
//! it rides out a server outage longer than a renewal interval without a restart, keeping
//! its valid SVID meanwhile; and when the server's policy tightens, the next renewal fails
//! and the agent's log names the failing rule.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plinth_agent::TpmCollector;
use plinth_agent::exchange::TpmSource;
use plinth_agent::node::{Node, ServerEndpoint, SystemClock};
use plinth_core::{HashAlg, SpiffeId};
use plinth_e2e::Swtpm;
use plinth_e2e::formats::pem_to_der;
use plinth_e2e::node::swtpm_policy;
use plinth_e2e::server::config_in;
use plinth_server::{Config, RunningServer};
use tempfile::TempDir;
use tracing::instrument::WithSubscriber;

struct Setup {
    // Dropped in this order: the node's TPM connection before the TPM.
    node: Arc<Node>,
    tpm: Swtpm,
    dir: TempDir,
    config: Config,
}

fn root_sha256(tpm: &Swtpm) -> String {
    let der = pem_to_der(&std::fs::read_to_string(tpm.root_ca_pem()).unwrap()).unwrap();
    plinth_crypto::digest(HashAlg::Sha256, &der).to_hex()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server (on a fixed port, so it can come back where the agent expects it) and an
/// agent node on a fresh swtpm.
async fn setup(svid_ttl_seconds: u64) -> (Setup, RunningServer) {
    let tpm = Swtpm::start().unwrap_or_else(|e| panic!("cannot run the swtpm tests: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(
        dir.path(),
        &[(
            "tpm.toml",
            swtpm_policy(&root_sha256(&tpm), svid_ttl_seconds),
        )],
    );
    config.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let roots = dir.path().join("tpm-roots");
    std::fs::create_dir_all(&roots).unwrap();
    let _root = std::fs::copy(tpm.root_ca_pem(), roots.join("root.pem")).unwrap();
    let _issuer = std::fs::copy(tpm.issuer_cert_pem(), roots.join("issuer.pem")).unwrap();
    config.tpm_roots = vec![roots];
    let server = plinth_server::start(config.clone()).await.unwrap();
    let trust = plinth_client::ServerTrust::new(
        &server.bundle_der(),
        SpiffeId::parse("spiffe://example.org/plinth/server").unwrap(),
    )
    .unwrap();
    let node = Node::new(
        Box::new(TpmSource::new(
            TpmCollector::open(tpm.tcti()).unwrap(),
            None,
        )),
        ServerEndpoint {
            addr: server.local_addr(),
            trust,
            tls_time: None,
        },
        Arc::new(SystemClock),
    )
    .unwrap();
    (
        Setup {
            node: Arc::new(node),
            tpm,
            dir,
            config,
        },
        server,
    )
}

async fn eventually<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_recovers_without_restart_after_an_outage_longer_than_a_renewal_interval() {
    const TTL: u64 = 10;
    let (setup, server) = setup(TTL).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let node = Arc::clone(&setup.node);
    let running = tokio::spawn(async move {
        node.run(async {
            let _ = stopped.await;
        })
        .await;
    });
    let first = eventually(Duration::from_secs(30), || setup.node.current()).await;

    // The server goes away for longer than the renewal interval (half the lifetime).
    server.shutdown().await.unwrap();
    let down_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(TTL / 2 + 2)).await;
    // Meanwhile the agent kept its SVID: it is still valid, and still the one it had.
    let during = setup.node.current().expect("the SVID is still valid");
    assert_eq!(during.chain, first.chain);

    // The server comes back (same data, same port); the agent renews by itself.
    let server = plinth_server::start(setup.config.clone()).await.unwrap();
    let renewed = eventually(Duration::from_secs(30), || {
        setup
            .node
            .current()
            .filter(|svid| svid.not_after > first.not_after)
    })
    .await;
    assert_eq!(renewed.spiffe_id, first.spiffe_id);
    assert!(down_at.elapsed() > Duration::from_secs(TTL / 2));

    let _sent = stop.send(());
    running.await.unwrap();
    server.shutdown().await.unwrap();
    drop(setup);
}

/// Collects log lines written by a subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tightened_policy_fails_the_next_renewal_and_the_agent_logs_the_failing_rule() {
    let (setup, server) = setup(300).await;
    let first = setup.node.attest().await.unwrap();

    // The operator tightens the policy: PCR 0 must now hold a value this node cannot have.
    server.shutdown().await.unwrap();
    std::fs::write(
        setup.dir.path().join("policies/tpm.toml"),
        swtpm_policy(&root_sha256(&setup.tpm), 300).replace(&"00".repeat(32), &"ab".repeat(32)),
    )
    .unwrap();
    let server = plinth_server::start(setup.config.clone()).await.unwrap();

    // The renewal (mutual TLS with the still-valid SVID) is refused, naming the rule.
    let error = setup.node.attest().await.unwrap_err();
    let plinth_agent::Error::Refused(status) = &error else {
        panic!("expected a refusal, got {error}");
    };
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(
        status.message().contains("tpm.pcrs.sha256.0"),
        "{}",
        status.message()
    );
    // The agent keeps the SVID it has: still valid, never replaced by a refusal.
    assert_eq!(setup.node.current().unwrap().chain, first.chain);

    // Running, the agent logs the refusal with the failing rule.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let node = Arc::clone(&setup.node);
    let _ = tokio::time::timeout(
        Duration::from_secs(3),
        node.run(std::future::pending()).with_subscriber(subscriber),
    )
    .await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("attestation refused"), "{log}");
    assert!(log.contains("tpm.pcrs.sha256.0"), "{log}");
    server.shutdown().await.unwrap();
    drop(setup);
}
