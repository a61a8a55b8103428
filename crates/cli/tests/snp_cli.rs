//! The `plinth snp verify` command as a user runs it: exit codes, JSON, certificate sources.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::process::{Command, Output};

fn data(path: &str) -> String {
    format!("{}/../../testdata/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn plinth(args: &[&str]) -> (Output, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(args)
        .output()
        .expect("run plinth");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, json)
}

#[test]
fn verify_turin_report_prints_claims_as_json_with_exit_zero() {
    let (out, json) = plinth(&[
        "snp",
        "verify",
        &data("sev-snp/oak/turin_oc_report.bin"),
        "--vcek",
        &data("sev-snp/oak/turin_oc_vcek.der"),
        "--at",
        "2025-08-01T00:00:00Z",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json["verified"], true);
    assert_eq!(json["product"], "Turin");
    assert_eq!(json["signing_key"], "VCEK");
    assert_eq!(json["chip_id"], "3b42092f69c656d3");
    assert_eq!(
        json["measurement"],
        "f924dd18f168df60fbea937f0b086284d51b1b376de872bac43694f61134d57967c318018de7335503023dbb50dee624"
    );
    let tcb = &json["reported_tcb"];
    for (component, level) in [
        ("fmc", 0),
        ("bootloader", 1),
        ("tee", 0),
        ("snp", 2),
        ("microcode", 71),
    ] {
        assert_eq!(tcb[component], level, "{component}");
    }
    assert_eq!(tcb["raw"], "0x4700000002000100");
}

#[test]
fn verify_hex_report_with_chain_bundle_in_human_form() {
    let (out, _) = plinth(&[
        "snp",
        "verify",
        &data("sev-snp/virtee-sev/report_milan.hex"),
        "--vcek",
        &data("sev-snp/virtee-sev/vcek_milan.der"),
        "--chain",
        &data("sev-snp/virtee-sev/cert_chain_milan"),
        "--product",
        "milan",
        "--at",
        "2024-06-01T00:00:00Z",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Milan signed by its VCEK"), "{text}");
    assert!(
        text.contains("bootloader=3 tee=0 snp=8 microcode=115"),
        "{text}"
    );
}

#[test]
fn verify_vlek_report_and_azure_bundle() {
    let (out, json) = plinth(&[
        "snp",
        "verify",
        &data("sev-snp/trustee/test-vlek-report.bin"),
        "--vlek",
        &data("sev-snp/trustee/test-vlek.der"),
        "--at",
        "2025-06-01T00:00:00Z",
        "--json",
    ]);
    assert!(out.status.success(), "{json}");
    assert_eq!(json["signing_key"], "VLEK");
    assert_eq!(json["chip_id"], serde_json::Value::Null);
    assert_eq!(json["policy"]["debug_allowed"], false);

    // Azure's vcek.pem holds VCEK, ASK and ARK: --chain alone is enough.
    let (out, json) = plinth(&[
        "snp",
        "verify",
        &data("azure-cvm/az-snp-vtpm/hcl-report.snp-report.bin"),
        "--chain",
        &data("azure-cvm/az-snp-vtpm/vcek.pem"),
        "--at",
        "2024-06-01T00:00:00Z",
        "--json",
    ]);
    assert!(out.status.success(), "{json}");
    assert_eq!(json["product"], "Milan");
}

#[test]
fn failures_exit_one_with_the_specific_reason() {
    // Expired: trustee's VLEK ended 2025-12-10.
    let (out, json) = plinth(&[
        "snp",
        "verify",
        &data("sev-snp/trustee/test-vlek-report.bin"),
        "--vlek",
        &data("sev-snp/trustee/test-vlek.der"),
        "--at",
        "2026-01-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json["verified"], false);
    assert!(
        json["error"].as_str().unwrap().contains("VLEK expired"),
        "{json}"
    );

    // Wrong product.
    let (out, json) = plinth(&[
        "snp",
        "verify",
        &data("sev-snp/trustee/test-report.bin"),
        "--vcek",
        &data("sev-snp/trustee/test-vcek.der"),
        "--product",
        "genoa",
        "--at",
        "2024-06-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        json["error"].as_str().unwrap().contains("product mismatch"),
        "{json}"
    );

    // VCEK of another chip.
    let (out, json) = plinth(&[
        "snp",
        "verify",
        &data("sev-snp/trustee/test-report.bin"),
        "--vcek",
        &data("sev-snp/virtee-sev/vcek_milan.der"),
        "--at",
        "2024-06-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        json["error"].as_str().unwrap().contains("CHIP_ID"),
        "{json}"
    );
}

#[test]
fn no_certificate_is_a_failure() {
    let (out, _) = plinth(&["snp", "verify", &data("sev-snp/trustee/test-report.bin")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no VCEK or VLEK given"));
}
