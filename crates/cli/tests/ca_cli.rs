//! The `plinth ca`, `plinth svid` and `plinth bundle` commands as an operator runs them,
//! with OpenSSL as the independent checker.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::path::Path;
use std::process::{Command, Output};

fn plinth(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plinth"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run plinth")
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "plinth failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl")
}

#[test]
fn init_mint_and_bundle_verify_with_openssl() {
    let dir = tempfile::TempDir::new().unwrap();
    let d = dir.path();
    let shown = ok(&plinth(
        d,
        &["ca", "init", "--trust-domain", "example.org", "--json"],
    ));
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["trust_domain"], "example.org");
    assert_eq!(shown["authorities"][0]["state"], "active");
    assert!(
        d.join("plinth-ca/ca.json").exists(),
        "--dir defaults to ./plinth-ca"
    );
    let again = plinth(d, &["ca", "init", "--trust-domain", "example.org"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    assert!(
        openssl(
            d,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "w.key"
            ]
        )
        .status
        .success()
    );
    assert!(
        openssl(d, &["pkey", "-in", "w.key", "-pubout", "-out", "w.pub"])
            .status
            .success()
    );
    let _none = ok(&plinth(
        d,
        &[
            "svid",
            "mint",
            "--spiffe-id",
            "spiffe://example.org/web",
            "--public-key",
            "w.pub",
            "--ttl",
            "10m",
            "--out",
            "svid.pem",
        ],
    ));
    std::fs::write(d.join("bundle.pem"), ok(&plinth(d, &["bundle", "show"]))).unwrap();
    let verified = openssl(
        d,
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            "bundle.pem",
            "svid.pem",
        ],
    );
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let text =
        String::from_utf8(openssl(d, &["x509", "-in", "svid.pem", "-noout", "-text"]).stdout)
            .unwrap();
    assert!(text.contains("URI:spiffe://example.org/web"));

    let jwks: serde_json::Value =
        serde_json::from_str(&ok(&plinth(d, &["bundle", "show", "--jwks"]))).unwrap();
    assert_eq!(jwks["spiffe_refresh_hint"], 300);
    let token = ok(&plinth(
        d,
        &[
            "svid",
            "jwt",
            "--spiffe-id",
            "spiffe://example.org/web",
            "--audience",
            "api",
        ],
    ));
    assert_eq!(token.trim().split('.').count(), 3);
}

#[test]
fn refuses_bad_ids_and_foreign_trust_domains() {
    let dir = tempfile::TempDir::new().unwrap();
    let d = dir.path();
    let _shown = ok(&plinth(
        d,
        &["ca", "init", "--dir", "ca", "--trust-domain", "example.org"],
    ));
    assert!(
        openssl(
            d,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "w.key"
            ]
        )
        .status
        .success()
    );
    assert!(
        openssl(
            d,
            &[
                "pkey", "-in", "w.key", "-pubout", "-outform", "DER", "-out", "w.der"
            ]
        )
        .status
        .success()
    );
    for (id, rule) in [
        ("spiffe://Example.org/x", "trust domain may hold only"),
        ("spiffe://example.org/a/../b", "'.' and '..'"),
        ("spiffe://example.org:1/x", "a port is not allowed"),
        ("https://example.org/x", "scheme must be spiffe://"),
    ] {
        let output = plinth(
            d,
            &[
                "svid",
                "mint",
                "--dir",
                "ca",
                "--spiffe-id",
                id,
                "--public-key",
                "w.der",
            ],
        );
        assert_eq!(output.status.code(), Some(2), "{id}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(rule),
            "{id}"
        );
    }
    let foreign = plinth(
        d,
        &[
            "svid",
            "mint",
            "--dir",
            "ca",
            "--spiffe-id",
            "spiffe://other.org/x",
            "--public-key",
            "w.der",
        ],
    );
    assert_eq!(foreign.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&foreign.stderr).contains("not in the CA's trust domain"));
    let too_long = plinth(
        d,
        &[
            "svid",
            "mint",
            "--dir",
            "ca",
            "--spiffe-id",
            "spiffe://example.org/x",
            "--public-key",
            "w.der",
            "--ttl",
            "2d",
        ],
    );
    assert_eq!(too_long.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&too_long.stderr).contains("exceeds the maximum"));
}

#[test]
fn rotation_from_the_command_line() {
    let dir = tempfile::TempDir::new().unwrap();
    let d = dir.path();
    let _shown = ok(&plinth(
        d,
        &[
            "ca",
            "init",
            "--trust-domain",
            "example.org",
            "--intermediate",
            "--refresh-hint",
            "0s",
            "--svid-ttl",
            "1s",
            "--jwt-ttl",
            "1s",
            "--max-ttl",
            "1s",
        ],
    ));
    let prepared = ok(&plinth(d, &["ca", "prepare"]));
    assert!(prepared.contains("authority 2 prepared"), "{prepared}");
    assert_eq!(
        ok(&plinth(d, &["bundle", "show"]))
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    let _active = ok(&plinth(d, &["ca", "activate"]));
    let early = plinth(d, &["ca", "retire"]);
    assert_eq!(early.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&early.stderr).contains("can be retired from"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let retired = ok(&plinth(d, &["ca", "retire"]));
    assert!(retired.contains("authority 1 retired"), "{retired}");
    assert_eq!(
        ok(&plinth(d, &["bundle", "show"]))
            .matches("BEGIN CERTIFICATE")
            .count(),
        1
    );
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&plinth(d, &["ca", "show", "--json"]))).unwrap();
    assert_eq!(shown["bundle_sequence"], 3);
    assert_eq!(shown["authorities"].as_array().unwrap().len(), 1);
    assert_eq!(shown["authorities"][0]["id"], 2);
}
