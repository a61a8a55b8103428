//! The full TPM exchange through the gRPC API against a real TPM (swtpm), the node side
//! driven by plinth-agent's tss-esapi collector: hello → challenge (credential to
//! activate) → evidence (activated secret, quote, certified key) → SVID, bundle, EAR and
//! an audit record. Then what happens next: renewal over mutual TLS with the SVID (its key
//! still in the TPM), eviction, expiry, bans.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::time::Duration;

use plinth_api::admin::{
    BanNodeRequest, EvictNodeRequest, NodeSelector, UnbanNodeRequest, node_selector,
};
use plinth_api::attestation::attestation_client::AttestationClient;
use plinth_core::UnixTime;
use plinth_e2e::fleet::TpmNode;
use plinth_e2e::node::swtpm_server;
use plinth_e2e::server::{SteppingClock, TestServer};
use plinth_server::ERROR_CODE_HEADER;
use tonic::Code;

/// The SVID lifetime the test policy grants.
const SVID_TTL_SECONDS: u64 = 300;

async fn server_for(node: &TpmNode) -> (TestServer, SteppingClock) {
    swtpm_server(&node.tpm, SVID_TTL_SECONDS).await
}

fn error_code(status: &tonic::Status) -> &str {
    status
        .metadata()
        .get(ERROR_CODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread")]
async fn tpm_exchange_mints_an_svid_for_the_tpm_held_key_with_an_audit_record() {
    let node = TpmNode::start();
    let (server, clock) = server_for(&node).await;
    let mut client = server.attestation().await;
    let (result, key) = node.attest(&mut client).await.unwrap();

    // The SPIFFE ID is the policy's, over the EK's hash.
    assert!(
        result
            .spiffe_id
            .starts_with("spiffe://example.org/node/tpm/"),
        "{}",
        result.spiffe_id
    );
    // The leaf certifies exactly the key the TPM created and the AK certified.
    let leaf = plinth_x509::Certificate::from_der(&result.svid_chain[0]).unwrap();
    assert_eq!(leaf.spki_der(), key.spki_der.as_slice());
    // The chain verifies with the bundle the server returned.
    let mut anchors = plinth_x509::TrustAnchors::new();
    for der in &result.bundle_x509 {
        anchors.add(plinth_x509::Certificate::from_der(der).unwrap());
    }
    let _chain = plinth_x509::verify_chain(
        &leaf,
        &[],
        &anchors,
        clock.now_unix(),
        &plinth_x509::ChainOptions::new()
            .allow_critical_extension(plinth_x509::oids::SUBJECT_ALT_NAME)
            .require_extended_key_usage(plinth_x509::Oid::parse("1.3.6.1.5.5.7.3.2").unwrap()),
    )
    .unwrap();
    // The EAR verifies and affirms; the selectors carry the EK hash and the policy.
    let ear = plinth_policy::ear::verify_ear(&result.ear, &result.bundle_jwks).unwrap();
    assert_eq!(ear.status(), Some("affirming"));
    assert!(
        result
            .selectors
            .iter()
            .any(|s| s.starts_with("tpm:ek_hash:"))
    );
    assert!(
        result
            .selectors
            .contains(&"plinth:policy:swtpm-node".to_owned())
    );

    // The audit record names the SVID; the chain verifies under a signed checkpoint.
    let store = server.server.store();
    let record = store.audit_record(result.audit_seq).await.unwrap();
    assert_eq!(record.verdict, "affirming");
    let serial = record.svid_serial.clone().unwrap();
    let issued = store.get_svid(&serial).await.unwrap();
    assert_eq!(issued.audit_seq, result.audit_seq);
    assert_eq!(issued.spiffe_id, result.spiffe_id);
    let checkpoint = server.server.checkpoint().await.unwrap().unwrap();
    let verified = store
        .verify_audit(&[checkpoint.signer_spki_der])
        .await
        .unwrap();
    assert_eq!(verified.records(), 1);
    assert_eq!(verified.uncovered(), 0);
    server.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn renewal_over_mtls_with_the_current_svid_is_a_fresh_attestation() {
    let node = TpmNode::start();
    let (server, clock) = server_for(&node).await;
    let mut client = server.attestation().await;
    let (first, key) = node.attest(&mut client).await.unwrap();

    // Renew: mutual TLS with the SVID, whose key signs the handshake inside the TPM.
    let mut renewing = AttestationClient::new(
        server
            .channel_with(Some(node.client_cert(&first, &key)))
            .await,
    );
    let (second, second_key) = node.attest(&mut renewing).await.unwrap();
    assert_eq!(second.spiffe_id, first.spiffe_id);
    assert_ne!(second.svid_chain[0], first.svid_chain[0]);

    // The renewed SVID renews in turn; after eviction it no longer does.
    let mut admin = server.admin().await;
    let _evicted = admin
        .evict_node(EvictNodeRequest {
            spiffe_id: second.spiffe_id.clone(),
        })
        .await
        .unwrap();
    let mut evicted = AttestationClient::new(
        server
            .channel_with(Some(node.client_cert(&second, &second_key)))
            .await,
    );
    let status = node.attest(&mut evicted).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(error_code(&status), "renewal_refused");
    assert!(status.message().contains("evicted"), "{}", status.message());

    // A first attestation (no client certificate) is still welcome after eviction.
    let (third, third_key) = node.attest(&mut client).await.unwrap();
    assert_eq!(third.spiffe_id, first.spiffe_id);

    // Once the SVID has expired, renewing with it is refused.
    clock.advance(Duration::from_secs(SVID_TTL_SECONDS + 1));
    let mut expired = AttestationClient::new(
        server
            .channel_with(Some(node.client_cert(&third, &third_key)))
            .await,
    );
    let status = node.attest(&mut expired).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(error_code(&status), "renewal_refused");
    assert!(status.message().contains("expired"), "{}", status.message());
    server.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn banned_node_is_refused_until_unbanned() {
    let node = TpmNode::start();
    let (server, _clock) = server_for(&node).await;
    let mut client = server.attestation().await;
    let (first, _key) = node.attest(&mut client).await.unwrap();
    let ek_hash = first
        .selectors
        .iter()
        .find_map(|s| s.strip_prefix("tpm:ek_hash:"))
        .unwrap()
        .to_owned();

    let mut admin = server.admin().await;
    let by_hardware = || NodeSelector {
        by: Some(node_selector::By::HardwareId(ek_hash.clone())),
    };
    let _banned = admin
        .ban_node(BanNodeRequest {
            node: Some(by_hardware()),
            reason: "lost in transit".into(),
        })
        .await
        .unwrap();
    let status = node.attest(&mut client).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(error_code(&status), "banned");
    assert!(status.message().contains("lost in transit"));
    let store = server.server.store();
    let head = store.head().await.unwrap();
    let record = store.audit_record(head.seq).await.unwrap();
    assert_eq!(record.error_code.as_deref(), Some("banned"));
    assert!(record.svid_serial.is_none());

    let _unbanned = admin
        .unban_node(UnbanNodeRequest {
            node: Some(by_hardware()),
        })
        .await
        .unwrap();
    let (again, _key) = node.attest(&mut client).await.unwrap();
    assert_eq!(again.spiffe_id, first.spiffe_id);
    server.server.shutdown().await.unwrap();
}

trait NowUnix {
    fn now_unix(&self) -> UnixTime;
}

impl NowUnix for SteppingClock {
    fn now_unix(&self) -> UnixTime {
        plinth_server::Clock::now(self)
    }
}
