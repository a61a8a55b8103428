//! Real Nitro and SEV-SNP evidence through the server's own service path (gRPC, TLS,
//! verify, appraise, mint, audit), at each vector's own time. A vector's nonce was fixed
//! when it was recorded, so its challenge is injected through the test-only table
//! (`plinth-server`'s `test-support` feature; no configuration reaches it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use plinth_api::attestation::{Evidence, NitroEvidence, SnpEvidence, evidence};
use plinth_core::{Platform, UnixTime};
use plinth_e2e::server::{NitroFullVector, TestServer, config_in, firmware_policy, testdata};
use plinth_evidence::PendingChallenge;
use plinth_server::ERROR_CODE_HEADER;
use tonic::Code;

async fn server_at(at: u64, policies: &[(&str, String)]) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), policies);
    TestServer::start_at(dir, config, UnixTime::from_millis(at)).await
}

fn code_of(status: &tonic::Status) -> String {
    status
        .metadata()
        .get(ERROR_CODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn nitro_vector_gets_an_svid_for_its_public_key_and_an_audit_record() {
    let server = server_at(
        NitroFullVector::AT,
        &[("nitro.toml", NitroFullVector::policy())],
    )
    .await;
    let document = NitroFullVector::document();
    server
        .server
        .inject_challenge(NitroFullVector::challenge())
        .unwrap();
    let mut client = server.attestation().await;
    let evidence = NitroFullVector::evidence();
    let result = client.attest(evidence.clone()).await.unwrap().into_inner();
    assert_eq!(result.spiffe_id, NitroFullVector::SPIFFE_ID);

    // The leaf certifies exactly the document's public key, and chains to the bundle.
    let verified = plinth_nitro::verify(
        &document,
        &plinth_nitro::NitroTrust::aws_root_g1(),
        UnixTime::from_millis(NitroFullVector::AT),
    )
    .unwrap();
    let leaf = plinth_x509::Certificate::from_der(&result.svid_chain[0]).unwrap();
    assert_eq!(
        leaf.spki_der(),
        verified.document().public_key().unwrap(),
        "the SVID must be minted for the key the document binds"
    );
    let mut anchors = plinth_x509::TrustAnchors::new();
    for der in &result.bundle_x509 {
        anchors.add(plinth_x509::Certificate::from_der(der).unwrap());
    }
    let intermediates: Vec<_> = result.svid_chain[1..]
        .iter()
        .map(|d| plinth_x509::Certificate::from_der(d).unwrap())
        .collect();
    let _chain = plinth_x509::verify_chain(
        &leaf,
        &intermediates,
        &anchors,
        UnixTime::from_millis(NitroFullVector::AT),
        &plinth_x509::ChainOptions::new()
            .allow_critical_extension(plinth_x509::oids::SUBJECT_ALT_NAME)
            .require_extended_key_usage(plinth_x509::Oid::parse("1.3.6.1.5.5.7.3.2").unwrap()),
    )
    .unwrap();

    // The EAR verifies with the bundle. A debug enclave that the policy tolerates is a
    // warning, not an affirmation.
    let ear = plinth_policy::ear::verify_ear(&result.ear, &result.bundle_jwks).unwrap();
    assert_eq!(ear.status(), Some("warning"));

    // The audit record exists, names the SVID, and the chain verifies after a checkpoint.
    let record = server
        .server
        .store()
        .audit_record(result.audit_seq)
        .await
        .unwrap();
    assert_eq!(record.verdict, "warning");
    assert_eq!(
        record.node_spiffe_id.as_deref(),
        Some(result.spiffe_id.as_str())
    );
    assert!(record.svid_serial.is_some());
    let checkpoint = server.server.checkpoint().await.unwrap().unwrap();
    let verified = server
        .server
        .store()
        .verify_audit(std::slice::from_ref(&checkpoint.signer_spki_der))
        .await
        .unwrap();
    assert_eq!(verified.records(), 1);

    // The same evidence again: the nonce is spent.
    let replay = client.attest(evidence).await.unwrap_err();
    assert_eq!(replay.code(), Code::FailedPrecondition);
    assert_eq!(code_of(&replay), "nonce_unknown");
    server.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn nitro_vector_without_a_public_key_is_refused_with_no_bound_key() {
    // evervault's document: a real nonce, no public_key. It passes its policy, but there
    // is no key an SVID could certify.
    const AT: u64 = 1_665_651_482_136;
    let document = std::fs::read(testdata("nitro/evervault/valid-attestation-doc-bytes")).unwrap();
    let nonce = hex::decode(
        "cb3dc2eb76c0c1344adf10cc4868591e5bb7fa4b4a8069e144762f71ea1d0017e23f89ba9db04eb2",
    )
    .unwrap();
    let policy = r#"version = 1
name = "nitro-evervault"
platform = "nitro"
[identity]
trust_domain = "example.org"
spiffe_id = "spiffe://{trust_domain}/enclave/{pcr0}"
svid_ttl_seconds = 900
[nitro]
max_age_seconds = 300
[nitro.pcrs]
0 = ["f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b"]
"#;
    let server = server_at(AT, &[("nitro.toml", policy.to_owned())]).await;
    let full_nonce = plinth_nitro::verify(
        &document,
        &plinth_nitro::NitroTrust::aws_root_g1(),
        UnixTime::from_millis(AT),
    )
    .unwrap()
    .document()
    .nonce()
    .unwrap()
    .to_vec();
    assert!(full_nonce.starts_with(&nonce));
    server
        .server
        .inject_challenge(PendingChallenge::for_test_vector(
            full_nonce.clone(),
            Platform::Nitro,
            UnixTime::from_millis(AT + 60_000),
        ))
        .unwrap();
    let mut client = server.attestation().await;
    let status = client
        .attest(Evidence {
            nonce: full_nonce,
            platform: Some(evidence::Platform::Nitro(NitroEvidence { document })),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(code_of(&status), "no_bound_key");
    let record = server.server.store().audit_record(1).await.unwrap();
    assert_eq!(
        record.verdict, "affirming",
        "the appraisal passed; minting did not"
    );
    assert_eq!(record.error_code.as_deref(), Some("no_bound_key"));
    assert!(record.svid_serial.is_none());
    server.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn snp_vector_is_verified_and_refused_because_report_data_binds_no_plinth_key() {
    // Oak's Turin report is genuine (signature, VCEK chain to the pinned ARK), but its
    // REPORT_DATA was chosen by Oak, not SHA-512(nonce ‖ key): no vector can carry
    // plinth's binding, so the service path must end in the binding refusal, audited.
    const AT: u64 = 1_754_006_400_000; // 2025-08-01, inside the VCEK's validity
    let report = std::fs::read(testdata("sev-snp/oak/turin_oc_report.bin")).unwrap();
    let vcek = std::fs::read(testdata("sev-snp/oak/turin_oc_vcek.der")).unwrap();
    let server = server_at(AT, &[("snp.toml", firmware_policy("snp-turin-oak.toml"))]).await;
    let nonce = report[0x50..0x70].to_vec();
    server
        .server
        .inject_challenge(PendingChallenge::for_test_vector(
            nonce.clone(),
            Platform::SevSnp,
            UnixTime::from_millis(AT + 60_000),
        ))
        .unwrap();
    let mut client = server.attestation().await;
    let status = client
        .attest(Evidence {
            nonce,
            platform: Some(evidence::Platform::Snp(SnpEvidence {
                report,
                key_spki: Vec::new(),
                vek_certificate: vcek,
                certificate_table: Vec::new(),
            })),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(code_of(&status), "snp_verification_failed");
    assert!(
        status.message().contains("REPORT_DATA")
            || status.message().to_lowercase().contains("binding"),
        "{}",
        status.message()
    );
    let record = server.server.store().audit_record(1).await.unwrap();
    assert_eq!(record.platform, "sev-snp");
    assert_eq!(
        record.error_code.as_deref(),
        Some("snp_verification_failed")
    );
    server.server.shutdown().await.unwrap();
}
