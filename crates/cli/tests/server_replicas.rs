//! Two `plinth server` processes sharing one real PostgreSQL (and one CA directory, as
//! replicas of one trust domain do): a nonce issued by one is consumed once by the other,
//! a replay to either fails, and each serves registrations written through the other.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use plinth_api::attestation::attestation_client::AttestationClient;
use plinth_api::attestation::{Evidence, Hello, NitroEvidence, NitroHello, evidence, hello};
use plinth_core::SpiffeId;
use plinth_e2e::postgres::PgCluster;

const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../firmware-policies");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `plinth server` process, killed when dropped.
struct Replica {
    child: Child,
    addr: SocketAddr,
    data_dir: PathBuf,
}

impl Replica {
    fn start(dir: &Path, database_url: &str) -> Self {
        let data_dir = dir.join("data");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = dir.join("server.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\nlisten = \"{addr}\"\nmetrics_listen = \"127.0.0.1:{}\"\n\
                 policies = {POLICIES:?}\ndatabase_url = {database_url:?}\n",
                data_dir.display().to_string(),
                free_port()
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(["server", "--config", config.to_str().unwrap()])
            .env_remove("PLINTH_DATABASE_URL")
            .env_remove("PLINTH_DATA_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let _read = BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("listening"), "server did not start: {line}");
        Self {
            child,
            addr,
            data_dir,
        }
    }

    async fn client(&self) -> AttestationClient<tonic::transport::Channel> {
        let pem = Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(["bundle", "show", "--dir"])
            .arg(self.data_dir.join("ca"))
            .output()
            .unwrap()
            .stdout;
        let trust = plinth_client::ServerTrust::from_pem(
            &pem,
            SpiffeId::parse("spiffe://example.org/plinth/server").unwrap(),
        )
        .unwrap();
        let config = plinth_client::client_config(trust, None, None).unwrap();
        AttestationClient::new(
            plinth_client::connect(self.addr, Arc::new(config))
                .await
                .unwrap(),
        )
    }

    fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("PLINTH_ADMIN_SOCKET")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _waited = self.child.wait();
    }
}

fn error_code(status: &tonic::Status) -> String {
    status
        .metadata()
        .get(plinth_server::ERROR_CODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_server_processes_share_nonces_and_registrations_through_postgresql() {
    let cluster = PgCluster::start().unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Replica::start(dir_a.path(), &cluster.url());
    // Replica B serves the same trust domain: it shares A's CA directory.
    std::fs::create_dir_all(dir_b.path().join("data")).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(a.data_dir.join("ca"))
        .arg(dir_b.path().join("data/ca"))
        .status()
        .unwrap();
    assert!(copied.success());
    let b = Replica::start(dir_b.path(), &cluster.url());

    // A nonce issued by A, answered at B: consumed there (the document then fails).
    let mut client_a = a.client().await;
    let mut client_b = b.client().await;
    let nonce = client_a
        .challenge(Hello {
            platform: Some(hello::Platform::Nitro(NitroHello {})),
        })
        .await
        .unwrap()
        .into_inner()
        .nonce;
    let evidence = Evidence {
        nonce,
        platform: Some(evidence::Platform::Nitro(NitroEvidence {
            document: b"not a document".to_vec(),
        })),
    };
    let first = client_b.attest(evidence.clone()).await.unwrap_err();
    assert_eq!(error_code(&first), "nitro_verification_failed");
    for client in [&mut client_a, &mut client_b] {
        let replay = client.attest(evidence.clone()).await.unwrap_err();
        assert_eq!(replay.code(), tonic::Code::FailedPrecondition);
        assert_eq!(error_code(&replay), "nonce_replayed");
    }

    // A registration written through A's admin socket is served by B.
    let _created = a.admin(&[
        "registration",
        "create",
        "--spiffe-id",
        "spiffe://example.org/node/shared",
        "--selector",
        "plinth:platform:tpm",
    ]);
    let listed = b.admin(&["registration", "list"]);
    assert!(
        listed.contains("spiffe://example.org/node/shared"),
        "{listed}"
    );
}
