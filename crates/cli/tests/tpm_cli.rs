//! The `plinth tpm` commands as a user runs them: exit codes, JSON, encodings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::path::PathBuf;
use std::process::{Command, Output};

use base64::Engine as _;

fn data(path: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/tpm/quotes/gce-cos85"
    ))
    .join(path)
}

fn plinth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(args)
        .output()
        .expect("run plinth")
}

fn verify_quote_args<'a>(quote: &'a str, nonce: &'a str) -> Vec<String> {
    vec![
        "tpm".into(),
        "verify-quote".into(),
        "--ak".into(),
        data("ak_pub.tpmt_public.bin").display().to_string(),
        "--quote".into(),
        quote.into(),
        "--signature".into(),
        data("quote_sha256.tpmt_signature.bin")
            .display()
            .to_string(),
        "--nonce".into(),
        nonce.into(),
        "--pcrs".into(),
        data("pcrs.json").display().to_string(),
        "--json".into(),
    ]
}

fn run(args: &[String]) -> (Output, serde_json::Value) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = plinth(&refs);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, json)
}

#[test]
fn verify_quote_succeeds_with_exit_zero_and_quoted_pcrs() {
    let quote = data("quote_sha256.tpms_attest.bin").display().to_string();
    let (out, json) = run(&verify_quote_args(&quote, "9009"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["verified"], true);
    assert_eq!(json["qualifying_data"], "9009");
    let sha256 = json["pcrs"]["sha256"].as_object().unwrap();
    assert_eq!(sha256.len(), 24);
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data("pcrs.json")).unwrap()).unwrap();
    assert_eq!(json["pcrs"]["sha256"], expected["pcrs"]["sha256"]);
    assert!(
        json["pcrs"].get("sha1").is_none(),
        "only the quoted bank is reported"
    );
}

#[test]
fn verify_quote_wrong_nonce_exits_one_with_reason() {
    let quote = data("quote_sha256.tpms_attest.bin").display().to_string();
    let (out, json) = run(&verify_quote_args(&quote, "9008"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json["verified"], false);
    assert_eq!(
        json["error"],
        "qualifying data does not match the challenge"
    );
}

#[test]
fn verify_quote_human_failure_goes_to_stderr() {
    let quote = data("quote_sha256.tpms_attest.bin").display().to_string();
    let mut args = verify_quote_args(&quote, "9009");
    args.truncate(args.len() - 1); // drop --json
    let pcrs = args.iter().position(|a| a == "--pcrs").unwrap();
    let _removed: Vec<String> = args.drain(pcrs..pcrs + 2).collect();
    let (out, _) = run(&args);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no value supplied for quoted PCR sha256:0"),
        "{stderr}"
    );
}

#[test]
fn verify_quote_accepts_base64_and_hex_inputs() {
    let raw = std::fs::read(data("quote_sha256.tpms_attest.bin")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let b64 = dir.path().join("quote.b64");
    std::fs::write(&b64, base64::engine::general_purpose::STANDARD.encode(&raw)).unwrap();
    let hex_file = dir.path().join("quote.hex");
    std::fs::write(&hex_file, hex::encode(&raw) + "\n").unwrap();
    for file in [b64, hex_file] {
        let (out, json) = run(&verify_quote_args(&file.display().to_string(), "9009"));
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(json["verified"], true);
    }
}

#[test]
fn usage_error_exits_two() {
    let out = plinth(&["tpm", "verify-quote", "--ak", "x"]);
    assert_eq!(out.status.code(), Some(2));
}
