//! `plinth tpm eventlog` and `plinth tpm verify-quote --event-log` as a user runs them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn data(path: &str) -> String {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/tpm"))
        .join(path)
        .display()
        .to_string()
}

fn plinth(args: &[String]) -> (Output, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(args)
        .output()
        .expect("run plinth");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, json)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn eventlog_prints_replayed_pcrs_and_unverified_boot_state() {
    let file = data("eventlogs/go-tpm-tools/ubuntu-2104-no-secure-boot.bin");
    let (out, json) = plinth(&args(&["tpm", "eventlog", &file, "--json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["verified"], false);
    assert_eq!(json["boot_state"]["provenance"], "unverified");
    assert_eq!(json["format"], "crypto-agile");
    assert_eq!(json["events"], 106);
    // The recorded PCRs, in the `{"sha256": {"0": "<hex>"}}` shape.
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data("eventlogs/go-tpm-tools/expected_pcrs.json")).unwrap(),
    )
    .unwrap();
    for bank in ["sha1", "sha256"] {
        assert_eq!(
            json["pcrs"][bank], expected["ubuntu-2104-no-secure-boot.bin"][bank],
            "{bank}"
        );
    }
    assert_eq!(json["pcrs"]["sha384"].as_object().unwrap().len(), 11);
    let state = &json["boot_state"];
    assert_eq!(state["secure_boot"], false);
    assert_eq!(state["dbx"].as_array().unwrap().len(), 186);
    assert_eq!(state["bootloader"]["name"], "grub");
    assert_eq!(state["bootloader"]["shim"], true);
    assert_eq!(state["exit_boot_services"], true);
    assert_eq!(state["separators"]["7"], "present");
    assert!(
        state["kernel_cmdline"]
            .as_str()
            .unwrap()
            .contains("root=PARTUUID=6443a6ae")
    );
    let apps = state["boot_applications"].as_array().unwrap();
    assert_eq!(apps[0]["file"], "\\EFI\\ubuntu\\shimx64.efi");
    assert_eq!(
        apps[0]["authenticode"]["sha256"].as_str().unwrap().len(),
        64
    );
}

#[test]
fn eventlog_reads_base64_and_says_it_is_unverified() {
    let (out, _) = plinth(&args(&[
        "tpm",
        "eventlog",
        &data("eventlogs/keylime/mb_log.b64"),
    ]));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("event log: crypto-agile format, 102 events, banks sha256"),
        "{text}"
    );
    assert!(text.contains("nothing here is verified"), "{text}");
}

#[test]
fn eventlog_truncated_file_exits_one_with_reason() {
    let log = std::fs::read(data("quotes/gce-cos85/eventlog.bin")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.bin");
    std::fs::write(&path, &log[..log.len() - 3]).unwrap();
    let (out, json) = plinth(&args(&[
        "tpm",
        "eventlog",
        &path.display().to_string(),
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("event log is truncated in event 44"),
        "{json}"
    );
}

fn verify_quote(log: &str) -> (Output, serde_json::Value) {
    let q = |name: &str| data(&format!("quotes/gce-cos85/{name}"));
    plinth(&[
        "tpm".into(),
        "verify-quote".into(),
        "--ak".into(),
        q("ak_pub.tpmt_public.bin"),
        "--quote".into(),
        q("quote_sha1.tpms_attest.bin"),
        "--signature".into(),
        q("quote_sha1.tpmt_signature.bin"),
        "--nonce".into(),
        "9009".into(),
        "--pcrs".into(),
        q("pcrs.json"),
        "--event-log".into(),
        log.into(),
        "--json".into(),
    ])
}

#[test]
fn verify_quote_with_event_log_reports_verified_boot_state() {
    let (out, json) = verify_quote(&data("quotes/gce-cos85/eventlog.bin"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json["verified"], true);
    let log = &json["event_log"];
    assert_eq!(log["verified"], true);
    assert_eq!(log["verified_banks"], serde_json::json!(["sha1"]));
    assert_eq!(log["uncovered_pcrs"], serde_json::json!({"sha1": [10]}));
    assert_eq!(log["boot_state"]["provenance"], "verified");
    assert_eq!(log["boot_state"]["secure_boot"], true);
    for pcr in 0..=9 {
        assert_eq!(
            log["pcrs"]["sha1"][pcr.to_string()],
            json["pcrs"]["sha1"][pcr.to_string()],
            "PCR {pcr}"
        );
    }
}

#[test]
fn verify_quote_with_another_boots_log_exits_one() {
    let (out, json) = verify_quote(&data("eventlogs/go-tpm-tools/cos-85-amd-sev.bin"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json["verified"], false);
    let error = json["error"].as_str().unwrap();
    assert!(error.contains("event log replay of PCR"), "{error}");
}
