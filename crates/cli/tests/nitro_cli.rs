//! The `plinth nitro verify` command as a user runs it: exit codes, JSON, encodings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::process::{Command, Output};

fn doc(path: &str) -> String {
    format!("{}/../../testdata/nitro/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn plinth(args: &[&str]) -> (Output, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(args)
        .output()
        .expect("run plinth");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, json)
}

const FULL: &str = "anjuna/attester/sample_attestation_doc_full.bin";
const FULL_AT: &str = "2024-01-24T18:14:25.635Z";

#[test]
fn verify_prints_claims_as_json_with_exit_zero() {
    let (out, json) = plinth(&["nitro", "verify", &doc(FULL), "--at", FULL_AT, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["verified"], true);
    assert_eq!(json["module_id"], "i-0e4fe5de7ee5abe78-enc018d3cadd7d66279");
    assert_eq!(json["instance_id"], "i-0e4fe5de7ee5abe78");
    assert_eq!(json["timestamp_ms"], 1_706_120_065_635_u64);
    assert_eq!(json["debug"], true);
    assert_eq!(json["pcrs"].as_object().unwrap().len(), 16);
    assert_eq!(json["pcrs"]["0"], "0".repeat(96));
    assert_eq!(json["nonce"], hex::encode(b"Nonce\n"));
    assert_eq!(json["nonce_checked"], false);
    assert_eq!(json["user_data"], hex::encode(b"Hello World!\n"));
    assert_eq!(json["public_key"], json["bound_key_spki"]);
    assert_eq!(
        json["root_sha256"],
        "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
    );
}

#[test]
fn verify_checks_the_nonce_when_given() {
    let nonce = hex::encode(b"Nonce\n");
    let (out, json) = plinth(&[
        "nitro",
        "verify",
        &doc(FULL),
        "--at",
        "1706120065635",
        "--nonce",
        &nonce,
        "--json",
    ]);
    assert!(out.status.success());
    assert_eq!(json["nonce_checked"], true);

    let (out, json) = plinth(&[
        "nitro",
        "verify",
        &doc(FULL),
        "--at",
        FULL_AT,
        "--nonce",
        "00",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json["verified"], false);
    assert_eq!(json["error"], "nonce mismatch");
}

#[test]
fn verify_reads_base64_documents() {
    let (out, json) = plinth(&[
        "nitro",
        "verify",
        &doc("evervault/valid-attestation-doc-base64"),
        "--at",
        "2023-09-18T15:03:30.860Z",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["module_id"], "i-0918f6c55e3b61d89-enc018aa8b8e2285d13");
}

#[test]
fn verify_fails_with_exit_one_once_the_chain_has_expired() {
    let (out, json) = plinth(&[
        "nitro",
        "verify",
        &doc(FULL),
        "--at",
        "2026-11-23T00:00:00Z",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json["verified"], false);
    assert!(
        json["error"].as_str().unwrap().contains("expired"),
        "{json}"
    );
}

#[test]
fn verify_fails_under_another_pinned_root() {
    let (out, json) = plinth(&[
        "nitro",
        "verify",
        &doc(FULL),
        "--at",
        FULL_AT,
        "--root-sha256",
        &"00".repeat(32),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("not the pinned root"),
        "{json}"
    );
}

#[test]
fn verify_human_output_names_debug_mode() {
    let (out, _) = plinth(&["nitro", "verify", &doc(FULL), "--at", FULL_AT]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("debug      YES"), "{text}");
}
