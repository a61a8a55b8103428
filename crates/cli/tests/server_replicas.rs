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

use std::path::Path;
use std::process::Command;

use plinth_api::attestation::attestation_client::AttestationClient;
use plinth_api::attestation::{Evidence, Hello, NitroEvidence, NitroHello, evidence, hello};
use plinth_e2e::postgres::PgCluster;

mod common;
use common::{POLICIES, ServerProcess, plinth_command};

/// One replica: its own data directory, the shared database.
fn start_replica(dir: &Path, database_url: &str) -> ServerProcess {
    ServerProcess::start(
        dir,
        &format!("policies = {POLICIES:?}\ndatabase_url = {database_url:?}\n"),
        "server.log",
    )
}

/// `plinth <args> --data-dir <the replica's>`: an admin command over its socket.
fn admin(replica: &ServerProcess, args: &[&str]) -> String {
    let out = plinth_command(args)
        .arg("--data-dir")
        .arg(replica.data_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
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
    let a = start_replica(dir_a.path(), &cluster.url());
    // Replica B serves the same trust domain: it shares A's CA directory.
    std::fs::create_dir_all(dir_b.path().join("data")).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(a.data_dir().join("ca"))
        .arg(dir_b.path().join("data/ca"))
        .status()
        .unwrap();
    assert!(copied.success());
    let b = start_replica(dir_b.path(), &cluster.url());

    // A nonce issued by A, answered at B: consumed there (the document then fails).
    let mut client_a = AttestationClient::new(a.channel().await);
    let mut client_b = AttestationClient::new(b.channel().await);
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
    let _created = admin(
        &a,
        &[
            "registration",
            "create",
            "--spiffe-id",
            "spiffe://example.org/node/shared",
            "--selector",
            "plinth:platform:tpm",
        ],
    );
    let listed = admin(&b, &["registration", "list"]);
    assert!(
        listed.contains("spiffe://example.org/node/shared"),
        "{listed}"
    );
}
