//! Two server replicas sharing one real PostgreSQL: a nonce issued by one is consumed once
//! by the other, a replay fails on both, and each serves registrations the other wrote.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use plinth_api::admin::CreateRegistrationRequest;
use plinth_api::admin::ListRegistrationsRequest;
use plinth_api::attestation::{Evidence, Hello, NitroEvidence, NitroHello, evidence, hello};
use plinth_core::UnixTime;
use plinth_e2e::postgres::PgCluster;
use plinth_e2e::server::{NitroFullVector, TestServer, config_in, firmware_policy};
use plinth_server::ERROR_CODE_HEADER;
use tonic::Code;

/// A replica: its own data directory (and so its own TLS identity), the shared database,
/// and one CA: HA replicas share the CA directory, as they share the trust domain.
async fn replica(url: &str, ca_from: Option<&TestServer>) -> TestServer {
    let policy = firmware_policy("nitro-anjuna-sample.toml");
    replica_with(url, ca_from, policy, None).await
}

/// A replica with one Nitro `policy`, its clock fixed `at` a time when given.
async fn replica_with(
    url: &str,
    ca_from: Option<&TestServer>,
    policy: String,
    at: Option<u64>,
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path(), &[("nitro.toml", policy)]);
    config.database_url = Some(url.to_owned());
    if let Some(first) = ca_from {
        copy_dir(&first.data_dir().join("ca"), &config.data_dir.join("ca"));
    }
    match at {
        Some(at) => TestServer::start_at(dir, config, UnixTime::from_millis(at)).await,
        None => TestServer::start(dir, config).await,
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            let _bytes = std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn code(status: &tonic::Status) -> &str {
    status
        .metadata()
        .get(ERROR_CODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nonce_issued_by_one_replica_is_consumed_once_by_the_other() {
    let cluster = PgCluster::start().unwrap();
    let a = replica(&cluster.url(), None).await;
    let b = replica(&cluster.url(), Some(&a)).await;
    let mut client_a = a.attestation().await;
    let mut client_b = b.attestation().await;

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
            document: b"evidence that does not verify".to_vec(),
        })),
    };
    // B consumes A's nonce: it gets as far as verifying the document.
    let first = client_b.attest(evidence.clone()).await.unwrap_err();
    assert_eq!(first.code(), Code::Unauthenticated, "{first:?}");
    assert_eq!(code(&first), "nitro_verification_failed");
    // A replay, to either replica, is refused.
    for client in [&mut client_a, &mut client_b] {
        let replay = client.attest(evidence.clone()).await.unwrap_err();
        assert_eq!(replay.code(), Code::FailedPrecondition);
        assert_eq!(code(&replay), "nonce_replayed");
    }

    // Many racers on one fresh nonce, split across both replicas: exactly one consumes it.
    let nonce = client_b
        .challenge(Hello {
            platform: Some(hello::Platform::Nitro(NitroHello {})),
        })
        .await
        .unwrap()
        .into_inner()
        .nonce;
    let mut racers = Vec::new();
    for i in 0..16 {
        let mut client = if i % 2 == 0 {
            client_a.clone()
        } else {
            client_b.clone()
        };
        let evidence = Evidence {
            nonce: nonce.clone(),
            ..evidence.clone()
        };
        racers.push(tokio::spawn(async move {
            let status = client.attest(evidence).await.unwrap_err();
            code(&status).to_owned()
        }));
    }
    let mut consumed = 0;
    for racer in racers {
        match racer.await.unwrap().as_str() {
            "nitro_verification_failed" => consumed += 1,
            "nonce_replayed" => {}
            other => panic!("unexpected outcome {other}"),
        }
    }
    assert_eq!(consumed, 1, "exactly one replica may consume a nonce");

    // One audit chain across both replicas, gap-free, verifiable.
    let head = a.server.store().head().await.unwrap();
    assert_eq!(head.seq, 1 + 2 + 16);
    let checkpoint = b.server.checkpoint().await.unwrap().unwrap();
    let verified = a
        .server
        .store()
        .verify_audit(&[checkpoint.signer_spki_der])
        .await
        .unwrap();
    assert_eq!(verified.records(), 19);

    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn each_replica_serves_registrations_the_other_wrote() {
    let cluster = PgCluster::start().unwrap();
    let a = replica(&cluster.url(), None).await;
    let b = replica(&cluster.url(), Some(&a)).await;
    let mut admin_a = a.admin().await;
    let mut admin_b = b.admin().await;
    let created = admin_a
        .create_registration(CreateRegistrationRequest {
            spiffe_id: "spiffe://example.org/node/web".into(),
            parent_id: String::new(),
            selectors: vec!["nitro:pcr0:00".into()],
            ttl_seconds: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let listed = admin_b
        .list_registrations(ListRegistrationsRequest {})
        .await
        .unwrap()
        .into_inner()
        .registrations;
    assert_eq!(listed, vec![created.clone()]);
    let _deleted = admin_b
        .delete_registration(plinth_api::admin::DeleteRegistrationRequest { id: created.id })
        .await
        .unwrap();
    assert!(
        admin_a
            .list_registrations(ListRegistrationsRequest {})
            .await
            .unwrap()
            .into_inner()
            .registrations
            .is_empty()
    );
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

/// A real Nitro document attested on `replica`: the SPIFFE ID it was given.
async fn attest_vector(replica: &TestServer) -> String {
    replica
        .server
        .inject_challenge(NitroFullVector::challenge())
        .unwrap();
    let mut client = replica.attestation().await;
    let result = client.attest(NitroFullVector::evidence()).await;
    result.unwrap().into_inner().spiffe_id
}

#[tokio::test(flavor = "multi_thread")]
async fn svids_follow_registrations_the_other_replica_writes() {
    let cluster = PgCluster::start().unwrap();
    let at = Some(NitroFullVector::AT);
    let a = replica_with(&cluster.url(), None, NitroFullVector::policy(), at).await;
    let b = replica_with(&cluster.url(), Some(&a), NitroFullVector::policy(), at).await;
    // B attests first, so it holds the (empty) node registrations in memory.
    assert_eq!(attest_vector(&b).await, NitroFullVector::SPIFFE_ID);
    let mut admin_a = a.admin().await;
    let created = admin_a
        .create_registration(CreateRegistrationRequest {
            spiffe_id: "spiffe://example.org/node/web".into(),
            parent_id: String::new(),
            selectors: vec![NitroFullVector::MODULE_SELECTOR.into()],
            ttl_seconds: 0,
        })
        .await
        .unwrap()
        .into_inner();
    // B's copy is stale; the SVID it mints from it is refused at commit, and it mints
    // again from the registration A wrote.
    assert_eq!(attest_vector(&b).await, "spiffe://example.org/node/web");
    let _deleted = admin_a
        .delete_registration(plinth_api::admin::DeleteRegistrationRequest { id: created.id })
        .await
        .unwrap();
    assert_eq!(attest_vector(&b).await, NitroFullVector::SPIFFE_ID);
    // Three attestations, three records: a refused mint writes nothing.
    let records = b.server.store().audit_records(0, 10).await.unwrap();
    let ids: Vec<_> = records
        .iter()
        .map(|r| r.node_spiffe_id.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(
        ids,
        [
            NitroFullVector::SPIFFE_ID,
            "spiffe://example.org/node/web",
            NitroFullVector::SPIFFE_ID
        ]
    );
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}
