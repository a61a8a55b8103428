//! `plinth server` as an operator runs it (a child process on loopback), driven by the
//! admin commands over its unix socket, its `/metrics` endpoint, `plinth audit` against
//! its database, and SIGTERM; and `plinth audit verify|export` over a real signed chain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Output;

use plinth_core::UnixTime;
use plinth_crypto::{Curve, EcdsaSigningKey, SystemRandom};
use plinth_store::audit::{Checkpoint, checkpoint_message};
use plinth_store::{CaJournalEntry, NewAuditRecord, Store};

mod common;
use common::{POLICIES, ServerProcess, plinth_command};

fn plinth(args: &[&str]) -> Output {
    plinth_command(args).output().expect("run plinth")
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

/// Exit code 1 and stderr (or stdout, for `--json`) naming `needle`.
fn fails_with(output: &Output, needle: &str) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "expected exit 1: {text}");
    assert!(text.contains(needle), "expected {needle:?} in: {text}");
}

/// `GET /metrics` over a plain TCP connection.
fn fetch_metrics(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    let mut response = String::new();
    let _read = stream.read_to_string(&mut response).unwrap();
    response
}

/// Registrations: create, list, delete, over the admin socket (by data dir and by path).
fn registrations_round_trip(at: &[&str], socket: &Path) {
    let created = ok(&plinth(
        &[
            &["registration", "create"][..],
            at,
            &[
                "--spiffe-id",
                "spiffe://example.org/node/db",
                "--selector",
                "policy:gce-cos85",
                "--selector",
                "tpm:ek-hash:00ff",
                "--ttl",
                "3600",
                "--json",
            ],
        ]
        .concat(),
    ));
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["spiffe_id"], "spiffe://example.org/node/db");
    assert_eq!(created["ttl_seconds"], 3600);

    let socket_arg = ["--socket", socket.to_str().unwrap()];
    let listed = ok(&plinth(
        &[&["registration", "list", "--json"][..], &socket_arg].concat(),
    ));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(
        listed[0]["selectors"],
        serde_json::json!(["policy:gce-cos85", "tpm:ek-hash:00ff"])
    );
    let human = ok(&plinth(&[&["registration", "list"][..], at].concat()));
    assert!(human.contains(&id) && human.contains("spiffe://example.org/node/db"));

    let _deleted = ok(&plinth(
        &[&["registration", "delete", id.as_str()][..], at].concat(),
    ));
    let listed = ok(&plinth(
        &[&["registration", "list", "--json"][..], at].concat(),
    ));
    assert_eq!(listed.trim(), "[]");
    // Deleting it again: NotFound.
    fails_with(
        &plinth(&[&["registration", "delete", id.as_str()][..], at].concat()),
        "plinth-error-code: not_found",
    );

    // A registration without a selector is refused by the server, by name.
    let refused = plinth(
        &[
            &["registration", "create"][..],
            at,
            &["--spiffe-id", "spiffe://example.org/node/x"],
        ]
        .concat(),
    );
    fails_with(&refused, "a registration needs at least one selector");
    fails_with(&refused, "plinth-error-code: invalid_request");
}

/// Node lifecycle: ban and unban by hardware ID; nothing has attested yet.
fn node_lifecycle(at: &[&str]) {
    let hardware = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let _banned = ok(&plinth(
        &[
            &["node", "ban"][..],
            at,
            &["--hardware-id", hardware, "--reason", "decommissioned"],
        ]
        .concat(),
    ));
    let _unbanned = ok(&plinth(
        &[&["node", "unban"][..], at, &["--hardware-id", hardware]].concat(),
    ));
    let nodes = ok(&plinth(&[&["node", "list", "--json"][..], at].concat()));
    assert_eq!(nodes.trim(), "[]");
    assert!(ok(&plinth(&[&["node", "list"][..], at].concat())).contains("no attested nodes"));
    fails_with(
        &plinth(
            &[
                &["node", "evict", "spiffe://example.org/node/unknown"][..],
                at,
            ]
            .concat(),
        ),
        "NotFound",
    );
    // Naming a node two ways at once is a usage error.
    assert_eq!(
        plinth(
            &[
                &["node", "ban"][..],
                at,
                &[
                    "--hardware-id",
                    hardware,
                    "--spiffe-id",
                    "spiffe://example.org/n",
                    "--reason",
                    "x"
                ],
            ]
            .concat()
        )
        .status
        .code(),
        Some(2)
    );
}

#[test]
fn server_admin_metrics_audit_and_sigterm() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut server = ServerProcess::start(
        dir.path(),
        &format!(
            "trust_domain = \"example.org\"\npolicies = {POLICIES:?}\nshutdown_grace_seconds = 5\n"
        ),
        "server.log",
    );
    let line = server.first_line().to_owned();
    assert!(
        line.contains(&server.addr().to_string())
            && line.contains(&format!("127.0.0.1:{}", server.metrics_port()))
            && line.contains("admin.sock")
            && line.contains("example.org"),
        "{line}"
    );
    let data = server.data_dir().to_str().unwrap().to_owned();
    let socket = server.data_dir().join("admin.sock");
    assert!(socket.exists(), "{line}");
    let at = ["--data-dir", data.as_str()];

    registrations_round_trip(&at, &socket);
    node_lifecycle(&at);

    // Prometheus metrics.
    let metrics = fetch_metrics(server.metrics_port());
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    // (Counter families appear once they have a labelled sample; the gauges always do.)
    for name in [
        "# TYPE plinth_svids_outstanding gauge",
        "plinth_svids_outstanding 0",
        "# TYPE plinth_ca_expiry_timestamp_seconds gauge",
    ] {
        assert!(metrics.contains(name), "{name} missing from {metrics}");
    }

    // The audit log of the fresh server: verified, empty.
    let verified = ok(&plinth(&["audit", "verify", "--data-dir", &data, "--json"]));
    let verified: serde_json::Value = serde_json::from_str(&verified).unwrap();
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["records"], 0);
    assert_eq!(verified["checkpoints"], 0);
    assert_eq!(verified["trusted_signers"], "ca_journal");
    // …and with the signers of the server's trust bundle.
    let jwks = ok(&plinth(&[
        "bundle",
        "show",
        "--jwks",
        "--dir",
        &format!("{data}/ca"),
    ]));
    let bundle = dir.path().join("bundle.jwks");
    std::fs::write(&bundle, jwks).unwrap();
    let verified = ok(&plinth(&[
        "audit",
        "verify",
        "--data-dir",
        &data,
        "--bundle",
        bundle.to_str().unwrap(),
    ]));
    assert!(verified.contains("0 records"), "{verified}");

    // SIGTERM: a clean exit, the admin socket removed.
    let status = server.terminate();
    assert!(status.success(), "{status}: {}", server.log());
    assert!(!socket.exists(), "the admin socket outlived the server");
    // With the server gone, the admin commands say they cannot reach it.
    fails_with(
        &plinth(&[&["node", "list"][..], &at].concat()),
        "cannot reach the admin socket",
    );
}

#[test]
fn server_with_an_unusable_config_exits_1() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "no_such_key = 1\n").unwrap();
    fails_with(
        &plinth(&["server", "--config", config.to_str().unwrap()]),
        "no_such_key",
    );
}

#[test]
fn audit_verify_without_a_database_exits_1() {
    let dir = tempfile::TempDir::new().unwrap();
    let missing = dir.path().join("nothing-here");
    fails_with(
        &plinth(&["audit", "verify", "--data-dir", missing.to_str().unwrap()]),
        "no database at",
    );
    assert!(!missing.exists(), "verify must not create a database");
}

/// A store with `n` appraisal records and one signed checkpoint at its head, the signer
/// journaled as the CA's JWT key. Returns the signer's SPKI.
async fn signed_log(dir: &Path, n: usize) -> Vec<u8> {
    let store = Store::open_sqlite(dir).await.unwrap();
    let signer = EcdsaSigningKey::generate(Curve::P256, &SystemRandom).unwrap();
    let spki = signer.public_key().spki_der().to_vec();
    let now = UnixTime::from_millis(1_763_900_000_000);
    store
        .record_authority(&CaJournalEntry {
            authority_id: 1,
            state: "active".into(),
            x509_certificate_der: Vec::new(),
            jwt_key_id: "test".into(),
            jwt_public_spki_der: spki.clone(),
            not_before: now,
            not_after: UnixTime::from_millis(now.as_millis() + 86_400_000),
            recorded_at: now,
        })
        .await
        .unwrap();
    for i in 0..n {
        let node = if i % 2 == 0 { "a" } else { "b" };
        let _record = store
            .record_attestation(
                &NewAuditRecord {
                    recorded_at: UnixTime::from_millis(now.as_millis() + u64::try_from(i).unwrap()),
                    platform: "tpm".into(),
                    node_spiffe_id: Some(format!("spiffe://example.org/node/{node}")),
                    hardware_id: None,
                    policy_name: None,
                    policy_hash: None,
                    verdict: "affirming".into(),
                    error_code: None,
                    error_message: None,
                    claims_json: "{}".into(),
                    result_json: "{}".into(),
                    svid_serial: None,
                },
                None,
                None,
                format!("evidence {i}").as_bytes(),
                None,
            )
            .await
            .unwrap();
    }
    let head = store.head().await.unwrap();
    let message = checkpoint_message(head.seq, &head.hash, now);
    store
        .add_checkpoint(&Checkpoint {
            seq: head.seq,
            head_hash: head.hash,
            signed_at: now,
            signer_spki_der: spki.clone(),
            signature: signer.sign(&message).unwrap(),
            algorithm: "ES256".into(),
        })
        .await
        .unwrap();
    store.close().await;
    spki
}

/// A plain JWKS with one P-256 key, from its SPKI (the point is its last 64 bytes).
fn jwks_for(spki: &[u8]) -> String {
    use base64::Engine as _;
    let point = &spki[spki.len() - 64..];
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "use": "jwt-svid", "kid": "k",
        "x": b64(&point[..32]), "y": b64(&point[32..]),
    }]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_and_export_a_signed_chain() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let spki = signed_log(&data, 4).await;
    let data = data.to_str().unwrap();

    let verified = ok(&plinth(&["audit", "verify", "--data-dir", data, "--json"]));
    let verified: serde_json::Value = serde_json::from_str(&verified).unwrap();
    assert_eq!(verified["records"], 4);
    assert_eq!(verified["checkpoints"], 1);
    assert_eq!(verified["last_checkpoint_seq"], 4);
    assert_eq!(verified["uncovered"], 0);

    // The checkpoint signer, given as a bundle: trusted. Another key: refused.
    let bundle = dir.path().join("bundle.jwks");
    std::fs::write(&bundle, jwks_for(&spki)).unwrap();
    let bundle = bundle.to_str().unwrap();
    let _ok = ok(&plinth(&[
        "audit",
        "verify",
        "--data-dir",
        data,
        "--bundle",
        bundle,
    ]));
    let other = EcdsaSigningKey::generate(Curve::P256, &SystemRandom).unwrap();
    let other_bundle = dir.path().join("other.jwks");
    std::fs::write(&other_bundle, jwks_for(other.public_key().spki_der())).unwrap();
    let other_bundle = other_bundle.to_str().unwrap();
    fails_with(
        &plinth(&[
            "audit",
            "verify",
            "--data-dir",
            data,
            "--bundle",
            other_bundle,
        ]),
        "checkpoint at 4 was signed by an untrusted key",
    );

    // Export node a's records; verify offline, trusting the export's own signers or the
    // bundle.
    let export = dir.path().join("export.json");
    let export_path = export.to_str().unwrap();
    let summary = ok(&plinth(&[
        "audit",
        "export",
        "--data-dir",
        data,
        "--node",
        "spiffe://example.org/node/a",
        "--since",
        "2025-01-01T00:00:00Z",
        "--out",
        export_path,
        "--json",
    ]));
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["records"], 2);
    assert_eq!(summary["entries"], 4);
    let offline = ok(&plinth(&["audit", "verify", "--export", export_path]));
    assert!(
        offline.contains("trusting the signers named in the export"),
        "{offline}"
    );
    let offline = ok(&plinth(&[
        "audit",
        "verify",
        "--export",
        export_path,
        "--bundle",
        bundle,
        "--json",
    ]));
    let offline: serde_json::Value = serde_json::from_str(&offline).unwrap();
    assert_eq!(offline["records"], serde_json::json!([1, 3]));
    assert_eq!(offline["stubs"], 2);
    assert_eq!(offline["trusted_signers"], "bundle");
    fails_with(
        &plinth(&[
            "audit",
            "verify",
            "--export",
            export_path,
            "--bundle",
            other_bundle,
        ]),
        "untrusted key",
    );

    tampered_export_names_the_first_broken_record(&export, dir.path());
}

/// A record changed in an export: the first broken record, by seq.
fn tampered_export_names_the_first_broken_record(export: &Path, dir: &Path) {
    let mut tampered: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export).unwrap()).unwrap();
    let record = tampered["chain"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["kind"] == "record" && e["seq"] == 3)
        .unwrap();
    record["verdict"] = "contraindicated".into();
    let tampered_path = dir.join("tampered.json");
    std::fs::write(&tampered_path, tampered.to_string()).unwrap();
    let broken = plinth(&[
        "audit",
        "verify",
        "--export",
        tampered_path.to_str().unwrap(),
        "--json",
    ]);
    fails_with(&broken, "audit record 3 is broken");
    let broken: serde_json::Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(broken["seq"], 3);
    assert_eq!(broken["reason"], "contents do not hash to record_hash");
}
