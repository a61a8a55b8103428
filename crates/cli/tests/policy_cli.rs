//! `plinth policy lint` and `plinth policy check` as a reviewer runs them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::process::{Command, Output};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn path(rel: &str) -> String {
    format!("{ROOT}/{rel}")
}

fn plinth(args: &[&str]) -> (Output, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(args)
        .output()
        .expect("run plinth");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, json)
}

fn gce_args(policy: &str) -> Vec<String> {
    let q = |name: &str| path(&format!("testdata/tpm/quotes/gce-cos85/{name}"));
    [
        "policy",
        "check",
        policy,
        "--tpm-ak",
        &q("ak_pub.tpmt_public.bin"),
        "--tpm-quote",
        &q("quote_sha256.tpms_attest.bin"),
        "--tpm-signature",
        &q("quote_sha256.tpmt_signature.bin"),
        "--nonce",
        "9009",
        "--pcrs",
        &q("pcrs.json"),
        "--event-log",
        &q("eventlog.bin"),
        "--ak-cert",
        &q("ak_cert.der"),
        "--tpm-root",
        &path("testdata/tpm/ca-roots/google-vtpm/tpm_ek_root_1.cer"),
        "--tpm-intermediate",
        &path("testdata/tpm/ca-roots/google-vtpm/tpm_ek_intermediate_2.crt"),
        "--at",
        "2026-11-23T00:00:00Z",
        "--json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

#[test]
fn lint_accepts_every_firmware_policy() {
    let (out, json) = plinth(&["policy", "lint", &path("firmware-policies"), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json["ok"], true);
    assert_eq!(json["files"].as_array().unwrap().len(), 4);
}

#[test]
fn lint_rejects_a_malformed_policy_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(path("firmware-policies/snp-milan-oak.toml")).unwrap();
    std::fs::write(
        &file,
        text.replace("allow_smt = true", "allow_smt = \"yes\""),
    )
    .unwrap();
    let (out, _) = plinth(&["policy", "lint", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .position(|l| l.starts_with("allow_smt"))
        .unwrap()
        + 1;
    assert!(
        stdout.contains(&format!("bad.toml:{line}:13: ")),
        "{stdout}"
    );
}

#[test]
fn check_affirms_gce_evidence_and_prints_every_rule() {
    let args = gce_args(&path("firmware-policies/gce-cos85.toml"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, json) = plinth(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["verdict"], "affirming");
    assert!(json["rules"].as_array().unwrap().len() > 15);
    assert_eq!(json["trust_vector"]["executables"], 2);
    assert!(
        json["identity"]["spiffe_id"]
            .as_str()
            .unwrap()
            .starts_with("spiffe://example.org/node/tpm/ak/")
    );
}

#[test]
fn check_contraindicates_a_tightened_policy_and_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tight.toml");
    let text = std::fs::read_to_string(path("firmware-policies/gce-cos85.toml")).unwrap();
    std::fs::write(&file, text.replace("7 = [\"3365", "7 = [\"4365")).unwrap();
    let args = gce_args(file.to_str().unwrap());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, json) = plinth(&args);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json["verdict"], "contraindicated");
    let failed: Vec<&str> = json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "fail")
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["tpm.pcrs.sha256.7"]);
    assert_eq!(json["identity"], serde_json::Value::Null);
}

#[test]
fn check_affirms_nitro_and_snp_evidence() {
    let (out, json) = plinth(&[
        "policy",
        "check",
        &path("firmware-policies/nitro-anjuna-sample.toml"),
        "--nitro",
        &path("testdata/nitro/anjuna/attestdoc/sample_prod_doc.bin"),
        "--at",
        "1616018525685",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json["verdict"], "affirming");
    for (policy, report, vcek) in [
        (
            "snp-milan-oak",
            "milan_oc_release_report.bin",
            "milan_oc_release_vcek.der",
        ),
        ("snp-turin-oak", "turin_oc_report.bin", "turin_oc_vcek.der"),
    ] {
        let (out, json) = plinth(&[
            "policy",
            "check",
            &path(&format!("firmware-policies/{policy}.toml")),
            "--snp",
            &path(&format!("testdata/sev-snp/oak/{report}")),
            "--vcek",
            &path(&format!("testdata/sev-snp/oak/{vcek}")),
            "--at",
            "2025-08-01T00:00:00Z",
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{policy}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(json["verdict"], "affirming", "{policy}");
    }
}

#[test]
fn check_with_unverifiable_evidence_fails_before_appraisal() {
    let (out, json) = plinth(&[
        "policy",
        "check",
        &path("firmware-policies/nitro-anjuna-sample.toml"),
        "--nitro",
        &path("testdata/nitro/anjuna/attestdoc/sample_prod_doc.bin"),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json["verified"], false);
}

#[test]
fn measure_authenticode_agrees_with_pesign() {
    for name in [
        "fbx64.efi.signed",
        "systemd-bootx64.efi",
        "linuxx64.efi.stub",
    ] {
        let file = path(&format!("testdata/efi/debian/{name}"));
        let (out, json) = plinth(&["measure", "authenticode", &file, "--json"]);
        assert!(out.status.success(), "{name}");
        let pesign = Command::new("pesign")
            .args(["-h", "-i", &file])
            .output()
            .expect("pesign (scripts/install-deps.sh installs it)");
        let pesign = String::from_utf8(pesign.stdout).unwrap();
        let pesign = pesign
            .lines()
            .find_map(|l| l.strip_prefix("hash: "))
            .unwrap()
            .trim();
        assert_eq!(json["files"][0]["digest"], pesign, "{name}");
    }
}

#[test]
fn measure_rejects_a_non_pe_file_with_exit_one() {
    let (out, _) = plinth(&[
        "measure",
        "authenticode",
        &path("firmware-policies/gce-cos85.toml"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MZ"));
}

#[test]
fn check_signs_an_ear_that_verify_ear_checks_offline_with_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_plinth"))
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    assert!(
        run(&["ca", "init", "--trust-domain", "example.org"])
            .status
            .success()
    );
    let jwks = run(&["bundle", "show", "--jwks"]);
    assert!(jwks.status.success());
    std::fs::write(dir.path().join("bundle.json"), &jwks.stdout).unwrap();
    let ca = dir.path().join("plinth-ca");
    let (out, json) = plinth(&[
        "policy",
        "check",
        &path("firmware-policies/snp-milan-oak.toml"),
        "--snp",
        &path("testdata/sev-snp/oak/milan_oc_release_report.bin"),
        "--vcek",
        &path("testdata/sev-snp/oak/milan_oc_release_vcek.der"),
        "--at",
        "2025-08-01T00:00:00Z",
        "--ear-ca",
        ca.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let token = json["ear"].as_str().unwrap();
    std::fs::write(dir.path().join("ear.jwt"), token).unwrap();
    let verified = run(&[
        "policy",
        "verify-ear",
        "ear.jwt",
        "--bundle",
        "bundle.json",
        "--json",
    ]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let claims: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(claims["submods"]["snp"]["ear.status"], "affirming");
    assert_eq!(
        claims["submods"]["snp"]["plinth.policy-hash"],
        format!("sha256:{}", json["policy"]["sha256"].as_str().unwrap())
    );
    // One flipped character in the payload: rejected.
    let mut flipped = token.to_owned().into_bytes();
    let at = token.find('.').unwrap() + 10;
    flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(dir.path().join("ear.jwt"), &flipped).unwrap();
    let rejected = run(&["policy", "verify-ear", "ear.jwt", "--bundle", "bundle.json"]);
    assert_eq!(rejected.status.code(), Some(1));
}

#[test]
fn measure_snp_prints_the_launch_measurement() {
    let (out, json) = plinth(&[
        "measure",
        "snp",
        "--ovmf",
        &path("testdata/sev-snp/ovmf/OVMF.fd"),
        "--vcpus",
        "4",
        "--vcpu-type",
        "EPYC-Milan",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // sev-snp-measure 0.0.13 on the same inputs.
    assert_eq!(
        json["measurement"],
        "e9c10ab98f8086bf4a4993dcdc1f768b1128bcb02301d1791f1d3274329e790db2d12a301d66d99a462a13b5d87e2840"
    );
}
