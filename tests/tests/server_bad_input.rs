//! Bad input to the attestation API: each case gets its own status and error code, the
//! server keeps serving, and every refused attestation leaves an audit record.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::sync::Arc;
use std::time::Duration;

use plinth_api::attestation::{
    Evidence, Hello, NitroEvidence, NitroHello, TpmHello, evidence, hello,
};
use plinth_e2e::server::{SteppingClock, TestServer, config_in, firmware_policy};
use plinth_server::ERROR_CODE_HEADER;
use tonic::Code;

async fn server() -> (TestServer, SteppingClock) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(
        dir.path(),
        &[
            ("nitro.toml", firmware_policy("nitro-anjuna-sample.toml")),
            ("tpm.toml", firmware_policy("gce-cos85.toml")),
        ],
    );
    let clock = SteppingClock::now();
    let server = TestServer::start_with(
        dir,
        config,
        Arc::new(clock.clone()),
        Arc::new(clock.clone()),
    )
    .await;
    (server, clock)
}

fn nitro_hello() -> Hello {
    Hello {
        platform: Some(hello::Platform::Nitro(NitroHello {})),
    }
}

fn nitro_evidence(nonce: Vec<u8>, document: Vec<u8>) -> Evidence {
    Evidence {
        nonce,
        platform: Some(evidence::Platform::Nitro(NitroEvidence { document })),
    }
}

fn error_code(status: &tonic::Status) -> &str {
    status
        .metadata()
        .get(ERROR_CODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The last audit record: the refusal must be on record.
async fn last_record(server: &TestServer) -> plinth_store::audit::AuditRecord {
    let head = server.server.store().head().await.unwrap();
    server.server.store().audit_record(head.seq).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn evidence_naming_no_platform_is_invalid_argument_and_audited() {
    let (server, _clock) = server().await;
    let mut client = server.attestation().await;
    let status = client
        .attest(Evidence {
            nonce: vec![7; 32],
            platform: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(error_code(&status), "unknown_platform");
    let record = last_record(&server).await;
    assert_eq!(record.platform, "unknown");
    assert_eq!(record.error_code.as_deref(), Some("unknown_platform"));
    server.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_naming_no_platform_is_invalid_argument() {
    let (server, _clock) = server().await;
    let mut client = server.attestation().await;
    let status = client
        .challenge(Hello { platform: None })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(error_code(&status), "unknown_platform");
    server.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_tpm_hello_is_invalid_argument_with_malformed() {
    let (server, _clock) = server().await;
    let mut client = server.attestation().await;
    let status = client
        .challenge(Hello {
            platform: Some(hello::Platform::Tpm(TpmHello {
                ek_certificate: Vec::new(),
                ek_public: vec![0xff; 40],
                ak_public: vec![0x00; 3],
            })),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(error_code(&status), "malformed");
    assert!(
        status.message().contains("ek_public"),
        "{}",
        status.message()
    );
    server.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn evidence_for_a_nonce_never_issued_is_failed_precondition_with_nonce_unknown() {
    let (server, _clock) = server().await;
    let mut client = server.attestation().await;
    let status = client
        .attest(nitro_evidence(vec![9; 32], vec![1, 2, 3]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(error_code(&status), "nonce_unknown");
    assert_eq!(
        last_record(&server).await.error_code.as_deref(),
        Some("nonce_unknown")
    );
    server.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_evidence_is_resource_exhausted_and_audited_then_the_server_still_serves() {
    let (server, _clock) = server().await;
    let mut client = server.attestation().await;
    let nonce = client
        .challenge(nitro_hello())
        .await
        .unwrap()
        .into_inner()
        .nonce;
    let status = client
        .attest(nitro_evidence(nonce, vec![0xa5; 2 << 20]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(error_code(&status), "too_large");
    assert_eq!(
        last_record(&server).await.error_code.as_deref(),
        Some("too_large")
    );
    // Still serving.
    let again = client.challenge(nitro_hello()).await.unwrap().into_inner();
    assert_eq!(again.nonce.len(), 32);
    server.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_document_is_unauthenticated_and_its_nonce_is_spent() {
    let (server, _clock) = server().await;
    let mut client = server.attestation().await;
    let nonce = client
        .challenge(nitro_hello())
        .await
        .unwrap()
        .into_inner()
        .nonce;
    let status = client
        .attest(nitro_evidence(nonce.clone(), b"not a COSE_Sign1".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(error_code(&status), "nitro_verification_failed");
    assert_eq!(last_record(&server).await.platform, "nitro");
    // The same nonce again: a replay, refused whatever the evidence.
    let replay = client
        .attest(nitro_evidence(nonce, b"not a COSE_Sign1".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(replay.code(), Code::FailedPrecondition);
    assert_eq!(error_code(&replay), "nonce_replayed");
    assert_eq!(
        last_record(&server).await.error_code.as_deref(),
        Some("nonce_replayed")
    );
    server.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_nonce_is_failed_precondition_with_nonce_expired() {
    let (server, clock) = server().await;
    let mut client = server.attestation().await;
    let nonce = client
        .challenge(nitro_hello())
        .await
        .unwrap()
        .into_inner()
        .nonce;
    clock.advance(Duration::from_secs(61));
    let status = client
        .attest(nitro_evidence(nonce, vec![1]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(error_code(&status), "nonce_expired");
    assert_eq!(
        last_record(&server).await.error_code.as_deref(),
        Some("nonce_expired")
    );
    server.server.shutdown().await.unwrap();
}
