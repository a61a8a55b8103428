//! The store on a real SQLite file in a temporary directory: nonces, registrations, bans,
//! the single-transaction attestation record, the audit chain, checkpoints and exports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use plinth_core::UnixTime;
use plinth_crypto::{Curve, EcdsaSigningKey, SystemRandom};
use plinth_store::audit::{
    self, AuditError, BrokenReason, Checkpoint, CheckpointFailure, ExportEntry,
};
use plinth_store::{
    Append, BanKind, Challenge, Error, NewAuditRecord, NewIssuedSvid, NewRegistration, NodeUpsert,
    PolicyText, Store,
};
use sqlx::Executor as _;
use tempfile::TempDir;

const T0: u64 = 1_760_000_000_000;
const POLICY_TEXT: &str = "name = \"tpm-default\"\n";

fn t(offset_ms: u64) -> UnixTime {
    UnixTime::from_millis(T0 + offset_ms)
}

async fn open() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(dir.path()).await.unwrap();
    (dir, store)
}

/// A second, raw connection to the same database file, for tampering.
async fn raw(dir: &TempDir) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", dir.path().join("plinth.db").display());
    sqlx::AnyPool::connect(&url).await.unwrap()
}

fn policy() -> PolicyText {
    PolicyText {
        name: "tpm-default".into(),
        hash_hex: plinth_crypto::digest(plinth_core::HashAlg::Sha256, POLICY_TEXT.as_bytes())
            .to_hex(),
        text: POLICY_TEXT.into(),
    }
}

fn new_record(node: &str, at: UnixTime, serial: Option<&str>) -> NewAuditRecord {
    NewAuditRecord {
        recorded_at: at,
        platform: "tpm".into(),
        node_spiffe_id: Some(node.into()),
        hardware_id: Some(format!("ek:{node}")),
        policy_name: Some("tpm-default".into()),
        policy_hash: Some(policy().hash_hex),
        verdict: "affirming".into(),
        error_code: None,
        error_message: None,
        claims_json: format!(r#"{{"node":"{node}","pcrs":{{"0":"00"}}}}"#),
        result_json: format!(r#"{{"svid_serial":{serial:?}}}"#),
        svid_serial: serial.map(str::to_owned),
    }
}

/// Appends one successful attestation of `node` with an SVID `serial`.
async fn attest(store: &Store, node: &str, at: UnixTime, serial: &str) -> audit::AuditRecord {
    let svid = NewIssuedSvid {
        serial_hex: serial.into(),
        spiffe_id: node.into(),
        key_thumbprint: "thumb".into(),
        not_after: UnixTime::from_millis(at.as_millis() + 3_600_000),
    };
    let upsert = NodeUpsert {
        spiffe_id: node.into(),
        hardware_id: Some(format!("ek:{node}")),
        policy_name: "tpm-default".into(),
        policy_hash: policy().hash_hex,
    };
    store
        .record_attestation(
            &new_record(node, at, Some(serial)),
            Some(&svid),
            Some(&upsert),
            format!("evidence of {node} at {at}").as_bytes(),
            Some(&policy()),
        )
        .await
        .unwrap()
}

fn signing_key() -> EcdsaSigningKey {
    EcdsaSigningKey::generate(Curve::P256, &SystemRandom).unwrap()
}

/// Signs the current head, as the server's signing core does.
async fn checkpoint(store: &Store, key: &EcdsaSigningKey, at: UnixTime) -> Checkpoint {
    let head = store.head().await.unwrap();
    let message = audit::checkpoint_message(head.seq, &head.hash, at);
    let checkpoint = Checkpoint {
        seq: head.seq,
        head_hash: head.hash,
        signed_at: at,
        signer_spki_der: key.public_key().spki_der().to_vec(),
        signature: key.sign(&message).unwrap(),
        algorithm: "ES256".into(),
    };
    store.add_checkpoint(&checkpoint).await.unwrap();
    checkpoint
}

fn challenge(nonce: u8, expires_at: UnixTime) -> Challenge {
    Challenge {
        nonce: [nonce; 32],
        platform: "tpm".into(),
        hello: vec![1, 2, 3],
        activation_commitment: Some([9; 32]),
        created_at: t(0),
        expires_at,
    }
}

#[tokio::test]
async fn nonce_is_consumed_once_then_rejected_with_nonce_consumed() {
    let (_dir, store) = open().await;
    let issued = challenge(1, t(60_000));
    store.insert_challenge(&issued).await.unwrap();
    let consumed = store.consume_challenge(&[1; 32], t(1000)).await.unwrap();
    assert_eq!(consumed, issued);
    assert!(matches!(
        store.consume_challenge(&[1; 32], t(2000)).await,
        Err(Error::NonceConsumed)
    ));
    // A consumed nonce stays consumed, even once expired.
    assert!(matches!(
        store.consume_challenge(&[1; 32], t(120_000)).await,
        Err(Error::NonceConsumed)
    ));
}

#[tokio::test]
async fn rejects_expired_nonce_with_nonce_expired() {
    let (_dir, store) = open().await;
    store
        .insert_challenge(&challenge(2, t(60_000)))
        .await
        .unwrap();
    // Expiry is exclusive: at expires_at the nonce is no longer accepted.
    assert!(matches!(
        store.consume_challenge(&[2; 32], t(60_000)).await,
        Err(Error::NonceExpired)
    ));
}

#[tokio::test]
async fn rejects_unknown_nonce_with_nonce_unknown() {
    let (_dir, store) = open().await;
    assert!(matches!(
        store.consume_challenge(&[3; 32], t(0)).await,
        Err(Error::NonceUnknown)
    ));
}

#[tokio::test]
async fn rejects_duplicate_nonce_with_conflict() {
    let (_dir, store) = open().await;
    store
        .insert_challenge(&challenge(4, t(60_000)))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_challenge(&challenge(4, t(60_000))).await,
        Err(Error::Conflict { what: "challenge" })
    ));
}

#[tokio::test]
async fn purges_expired_challenges_which_then_are_unknown() {
    let (_dir, store) = open().await;
    store.insert_challenge(&challenge(5, t(10))).await.unwrap();
    store
        .insert_challenge(&challenge(6, t(60_000)))
        .await
        .unwrap();
    assert_eq!(store.purge_expired_challenges(t(10)).await.unwrap(), 1);
    assert!(matches!(
        store.consume_challenge(&[5; 32], t(11)).await,
        Err(Error::NonceUnknown)
    ));
    let _consumed = store.consume_challenge(&[6; 32], t(11)).await.unwrap();
}

#[tokio::test]
async fn registrations_create_list_get_delete() {
    let (_dir, store) = open().await;
    let node = store
        .create_registration(
            &NewRegistration {
                spiffe_id: "spiffe://example.org/node/a".into(),
                parent_id: None,
                selectors: vec![
                    "tpm:pcr:7:ab".into(),
                    "tpm:ek:cd".into(),
                    "tpm:ek:cd".into(),
                ],
                ttl_seconds: Some(3600),
                admin: false,
            },
            t(0),
        )
        .await
        .unwrap();
    assert_eq!(node.selectors, ["tpm:ek:cd", "tpm:pcr:7:ab"]);
    assert_eq!(node.id.len(), 32);
    let workload = store
        .create_registration(
            &NewRegistration {
                spiffe_id: "spiffe://example.org/web".into(),
                parent_id: Some("spiffe://example.org/node/a".into()),
                selectors: vec!["unix:uid:1000".into()],
                ttl_seconds: None,
                admin: true,
            },
            t(1),
        )
        .await
        .unwrap();
    assert_eq!(
        store.list_registrations().await.unwrap(),
        [node.clone(), workload.clone()]
    );
    assert_eq!(
        store.registrations_under(None).await.unwrap(),
        std::slice::from_ref(&node)
    );
    assert_eq!(
        store
            .registrations_under(Some("spiffe://example.org/node/a"))
            .await
            .unwrap(),
        std::slice::from_ref(&workload)
    );
    assert_eq!(
        store.get_registration(&workload.id).await.unwrap(),
        workload
    );
    store.delete_registration(&workload.id).await.unwrap();
    assert!(matches!(
        store.get_registration(&workload.id).await,
        Err(Error::NotFound {
            what: "registration",
            ..
        })
    ));
    assert!(matches!(
        store.delete_registration(&workload.id).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn rejects_same_identity_and_selectors_with_conflict() {
    let (_dir, store) = open().await;
    let new = NewRegistration {
        spiffe_id: "spiffe://example.org/node/a".into(),
        parent_id: None,
        selectors: vec!["b".into(), "a".into()],
        ttl_seconds: None,
        admin: false,
    };
    let _first = store.create_registration(&new, t(0)).await.unwrap();
    let reordered = NewRegistration {
        selectors: vec!["a".into(), "b".into()],
        ..new.clone()
    };
    assert!(matches!(
        store.create_registration(&reordered, t(1)).await,
        Err(Error::Conflict {
            what: "registration"
        })
    ));
    // Same SPIFFE ID and selectors under a parent is a different registration.
    let under_parent = NewRegistration {
        parent_id: Some("spiffe://example.org/node/b".into()),
        ..new
    };
    let _second = store
        .create_registration(&under_parent, t(2))
        .await
        .unwrap();
}

#[tokio::test]
async fn bans_are_found_by_spiffe_id_or_hardware_id() {
    let (_dir, store) = open().await;
    store
        .ban(BanKind::HardwareId, "ek:1", "stolen", t(0))
        .await
        .unwrap();
    store
        .ban(
            BanKind::SpiffeId,
            "spiffe://example.org/node/x",
            "retired",
            t(1),
        )
        .await
        .unwrap();
    assert!(matches!(
        store.ban(BanKind::HardwareId, "ek:1", "again", t(2)).await,
        Err(Error::Conflict { what: "ban" })
    ));
    let by_hw = store
        .find_ban(Some("spiffe://example.org/node/y"), Some("ek:1"))
        .await;
    assert_eq!(by_hw.unwrap().unwrap().reason, "stolen");
    let by_id = store
        .find_ban(Some("spiffe://example.org/node/x"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id.kind, BanKind::SpiffeId);
    assert_eq!(store.find_ban(None, Some("ek:2")).await.unwrap(), None);
    assert_eq!(store.list_bans().await.unwrap().len(), 2);
    store.unban(BanKind::HardwareId, "ek:1").await.unwrap();
    assert!(matches!(
        store.unban(BanKind::HardwareId, "ek:1").await,
        Err(Error::NotFound { what: "ban", .. })
    ));
    assert_eq!(store.find_ban(None, Some("ek:1")).await.unwrap(), None);
}

#[tokio::test]
async fn record_attestation_writes_record_svid_node_evidence_and_policy() {
    let (_dir, store) = open().await;
    let node = "spiffe://example.org/node/a";
    let first = attest(&store, node, t(0), "01").await;
    let second = attest(&store, node, t(5000), "02").await;
    assert_eq!((first.seq, second.seq), (1, 2));
    assert_eq!(first.prev_hash, audit::GENESIS_HASH);
    assert_eq!(second.prev_hash, first.record_hash);
    assert_eq!(store.audit_record(2).await.unwrap(), second);

    let svid = store.get_svid("02").await.unwrap();
    assert_eq!(svid.audit_seq, 2);
    assert_eq!(svid.issued_at, t(5000));
    assert_eq!(store.list_svids_for(node).await.unwrap().len(), 2);
    assert_eq!(store.count_outstanding(t(3_600_000)).await.unwrap(), 1);

    let row = store.get_node(node).await.unwrap();
    assert_eq!(row.first_attested_at, t(0));
    assert_eq!(row.last_attested_at, t(5000));
    assert_eq!(row.last_attestation_seq, 2);
    assert_eq!(row.last_verdict, "affirming");
    assert_eq!(store.list_nodes().await.unwrap(), [row]);

    let evidence = store.get_evidence(&second.evidence_sha256).await.unwrap();
    assert_eq!(
        evidence,
        format!("evidence of {node} at {}", t(5000)).as_bytes()
    );
    assert_eq!(
        store.get_policy(&policy().hash_hex).await.unwrap(),
        policy()
    );

    store.evict_node(node).await.unwrap();
    assert!(matches!(
        store.evict_node(node).await,
        Err(Error::NotFound { what: "node", .. })
    ));
}

#[tokio::test]
async fn rejects_reused_svid_serial_with_conflict_and_writes_nothing() {
    let (_dir, store) = open().await;
    let _first = attest(&store, "spiffe://example.org/node/a", t(0), "aa").await;
    let head = store.head().await.unwrap();
    let svid = NewIssuedSvid {
        serial_hex: "aa".into(),
        spiffe_id: "spiffe://example.org/node/b".into(),
        key_thumbprint: "k".into(),
        not_after: t(10_000),
    };
    let upsert = NodeUpsert {
        spiffe_id: "spiffe://example.org/node/b".into(),
        hardware_id: None,
        policy_name: "tpm-default".into(),
        policy_hash: policy().hash_hex,
    };
    let result = store
        .record_attestation(
            &new_record("spiffe://example.org/node/b", t(1), Some("aa")),
            Some(&svid),
            Some(&upsert),
            b"other evidence",
            Some(&policy()),
        )
        .await;
    assert!(matches!(
        result,
        Err(Error::Conflict {
            what: "issued SVID"
        })
    ));
    // The transaction rolled back whole: no record, no node, no evidence, same head.
    assert_eq!(store.head().await.unwrap(), head);
    assert!(matches!(
        store.audit_record(2).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.get_node("spiffe://example.org/node/b").await,
        Err(Error::NotFound { .. })
    ));
    let digest = plinth_crypto::digest(plinth_core::HashAlg::Sha256, b"other evidence").to_hex();
    assert!(matches!(
        store.get_evidence(&digest).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn workload_svid_is_recorded_against_its_nodes_attestation() {
    let (_dir, store) = open().await;
    let node = attest(&store, "spiffe://example.org/node/a", t(0), "aa").await;
    let workload = NewIssuedSvid {
        serial_hex: "bb".into(),
        spiffe_id: "spiffe://example.org/frontend".into(),
        key_thumbprint: "w".into(),
        not_after: t(300_000),
    };
    let recorded = store
        .record_workload_svid(&workload, t(5), node.seq)
        .await
        .unwrap();
    assert_eq!(store.get_svid("bb").await.unwrap(), recorded);
    assert_eq!(recorded.audit_seq, node.seq);
    // Its node's SVID list is unchanged; the workload's has it.
    assert_eq!(
        store
            .list_svids_for("spiffe://example.org/frontend")
            .await
            .unwrap(),
        vec![recorded]
    );
    // The audit chain is untouched.
    assert_eq!(store.head().await.unwrap().seq, node.seq);
}

#[tokio::test]
async fn rejects_workload_svid_with_a_reused_serial_with_conflict() {
    let (_dir, store) = open().await;
    let node = attest(&store, "spiffe://example.org/node/a", t(0), "aa").await;
    let reused = NewIssuedSvid {
        serial_hex: "aa".into(),
        spiffe_id: "spiffe://example.org/frontend".into(),
        key_thumbprint: "w".into(),
        not_after: t(300_000),
    };
    assert!(matches!(
        store.record_workload_svid(&reused, t(5), node.seq).await,
        Err(Error::Conflict {
            what: "issued SVID"
        })
    ));
}

#[tokio::test]
async fn rejects_workload_svid_naming_no_attestation_with_database() {
    let (_dir, store) = open().await;
    let orphan = NewIssuedSvid {
        serial_hex: "cc".into(),
        spiffe_id: "spiffe://example.org/frontend".into(),
        key_thumbprint: "w".into(),
        not_after: t(300_000),
    };
    assert!(matches!(
        store.record_workload_svid(&orphan, t(5), 42).await,
        Err(Error::Database(_))
    ));
    assert!(matches!(
        store.get_svid("cc").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn rejects_policy_text_not_matching_its_hash_with_policy_hash_mismatch() {
    let (_dir, store) = open().await;
    let mut wrong = policy();
    wrong.text.push('\n');
    assert!(matches!(
        store.put_policy(&wrong).await,
        Err(Error::PolicyHashMismatch { .. })
    ));
    assert!(matches!(
        store
            .record_attestation(&new_record("n", t(0), None), None, None, b"e", Some(&wrong))
            .await,
        Err(Error::PolicyHashMismatch { .. })
    ));
}

#[tokio::test]
async fn rejects_oversized_evidence_with_too_large() {
    let (_dir, store) = open().await;
    let big = vec![0; plinth_store::MAX_EVIDENCE_LEN + 1];
    assert!(matches!(
        store.put_evidence(&big).await,
        Err(Error::TooLarge {
            what: "evidence",
            ..
        })
    ));
    assert!(matches!(
        store
            .record_attestation(&new_record("n", t(0), None), None, None, &big, None)
            .await,
        Err(Error::TooLarge {
            what: "evidence",
            ..
        })
    ));
    assert_eq!(store.head().await.unwrap().seq, 0);
}

#[tokio::test]
async fn audit_chain_with_checkpoints_verifies() {
    let (_dir, store) = open().await;
    let key = signing_key();
    let trusted = vec![key.public_key().spki_der().to_vec()];
    for i in 0..5 {
        let _ = attest(
            &store,
            "spiffe://example.org/node/a",
            t(i),
            &format!("{i:02x}"),
        )
        .await;
    }
    let _c5 = checkpoint(&store, &key, t(100)).await;
    for i in 5..8 {
        let _ = attest(
            &store,
            "spiffe://example.org/node/b",
            t(i),
            &format!("{i:02x}"),
        )
        .await;
    }
    let verified = store.verify_audit(&trusted).await.unwrap();
    assert_eq!(verified.records(), 8);
    assert_eq!(verified.head_seq(), 8);
    assert_eq!(verified.last_checkpoint_seq(), Some(5));
    assert_eq!(verified.uncovered(), 3);
    assert_eq!(*verified.head_hash(), store.head().await.unwrap().hash);

    // The same, offline, from the records read back.
    let records = store.audit_records(0, 100).await.unwrap();
    let checkpoints = store.list_checkpoints().await.unwrap();
    let offline = audit::verify(&records, &checkpoints, &trusted).unwrap();
    assert_eq!(offline, verified);
}

#[tokio::test]
async fn rejects_tampered_verdict_with_broken_record_at_that_seq() {
    let (dir, store) = open().await;
    for i in 0..6 {
        let _ = attest(
            &store,
            "spiffe://example.org/node/a",
            t(i),
            &format!("{i:02x}"),
        )
        .await;
    }
    let raw = raw(&dir).await;
    let _ = raw
        .execute("UPDATE audit_log SET verdict = 'contraindicated' WHERE seq = 4")
        .await
        .unwrap();
    let error = store.verify_audit(&[]).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Audit(AuditError::BrokenRecord {
                seq: 4,
                reason: BrokenReason::RecordHashMismatch
            })
        ),
        "{error}"
    );
}

#[tokio::test]
async fn rejects_removed_tail_records_with_broken_record_head_mismatch() {
    let (dir, store) = open().await;
    for i in 0..4 {
        let _ = attest(
            &store,
            "spiffe://example.org/node/a",
            t(i),
            &format!("{i:02x}"),
        )
        .await;
    }
    let raw = raw(&dir).await;
    let _ = raw
        .execute("DELETE FROM issued_svids WHERE audit_seq >= 3")
        .await
        .unwrap();
    let _ = raw
        .execute("DELETE FROM audit_log WHERE seq >= 3")
        .await
        .unwrap();
    assert!(matches!(
        store.verify_audit(&[]).await,
        Err(Error::Audit(AuditError::BrokenRecord {
            seq: 3,
            reason: BrokenReason::HeadMismatch
        }))
    ));
}

#[tokio::test]
async fn rejects_tampered_checkpoint_with_bad_checkpoint() {
    let (dir, store) = open().await;
    let key = signing_key();
    let trusted = vec![key.public_key().spki_der().to_vec()];
    for i in 0..3 {
        let _ = attest(
            &store,
            "spiffe://example.org/node/a",
            t(i),
            &format!("{i:02x}"),
        )
        .await;
    }
    let _c = checkpoint(&store, &key, t(50)).await;
    let raw = raw(&dir).await;
    let _ = raw
        .execute("UPDATE audit_checkpoints SET signed_at = signed_at + 1 WHERE seq = 3")
        .await
        .unwrap();
    assert!(matches!(
        store.verify_audit(&trusted).await,
        Err(Error::Audit(AuditError::BadCheckpoint {
            seq: 3,
            reason: CheckpointFailure::BadSignature
        }))
    ));
}

#[tokio::test]
async fn rejects_checkpoint_by_other_key_with_untrusted_signer() {
    let (_dir, store) = open().await;
    let key = signing_key();
    let _r = attest(&store, "spiffe://example.org/node/a", t(0), "01").await;
    let _c = checkpoint(&store, &key, t(50)).await;
    let other = vec![signing_key().public_key().spki_der().to_vec()];
    assert!(matches!(
        store.verify_audit(&other).await,
        Err(Error::Audit(AuditError::UntrustedSigner { seq: 1 }))
    ));
}

#[tokio::test]
async fn rejects_checkpoint_with_wrong_head_on_add_with_bad_checkpoint() {
    let (_dir, store) = open().await;
    let key = signing_key();
    let _r = attest(&store, "spiffe://example.org/node/a", t(0), "01").await;
    let head = [7; 32];
    let checkpoint = Checkpoint {
        seq: 1,
        head_hash: head,
        signed_at: t(1),
        signer_spki_der: key.public_key().spki_der().to_vec(),
        signature: key
            .sign(&audit::checkpoint_message(1, &head, t(1)))
            .unwrap(),
        algorithm: "ES256".into(),
    };
    assert!(matches!(
        store.add_checkpoint(&checkpoint).await,
        Err(Error::Audit(AuditError::BadCheckpoint {
            seq: 1,
            reason: CheckpointFailure::HeadMismatch
        }))
    ));
}

/// Three nodes, checkpoints after records 4 and 9; export node b's records.
async fn exported_log() -> (TempDir, Store, Vec<Vec<u8>>, audit::AuditExport) {
    let (dir, store) = open().await;
    let key = signing_key();
    let nodes = ["a", "b", "c"].map(|n| format!("spiffe://example.org/node/{n}"));
    for i in 0..4_u64 {
        let node = &nodes[usize::try_from(i % 3).unwrap()];
        let _ = attest(&store, node, t(i), &format!("{i:02x}")).await;
    }
    let _c4 = checkpoint(&store, &key, t(100)).await;
    for i in 4..9_u64 {
        let node = &nodes[usize::try_from(i % 3).unwrap()];
        let _ = attest(&store, node, t(i), &format!("{i:02x}")).await;
    }
    let _c9 = checkpoint(&store, &key, t(200)).await;
    let _pending = attest(&store, &nodes[1], t(300), "ff").await;
    let export = store.export(Some(&nodes[1]), Some(t(4))).await.unwrap();
    (
        dir,
        store,
        vec![key.public_key().spki_der().to_vec()],
        export,
    )
}

#[tokio::test]
async fn export_of_one_node_verifies_offline() {
    let (_dir, _store, trusted, export) = exported_log().await;
    // Node b's records at or after t(4): seqs 5 and 8 (i = 4, 7); seq 10 is past the last
    // checkpoint and left out.
    let full: Vec<i64> = export
        .chain
        .iter()
        .filter_map(|e| match e {
            ExportEntry::Record(r) => Some(r.seq),
            ExportEntry::Stub { .. } => None,
        })
        .collect();
    assert_eq!(full, [5, 8]);
    assert_eq!(export.anchor.as_ref().map(|a| a.seq), Some(4));
    assert_eq!(export.chain.first().map(ExportEntry::seq), Some(5));
    assert_eq!(export.chain.last().map(ExportEntry::seq), Some(9));
    assert_eq!(export.pending_after_checkpoint, 1);
    assert_eq!(export.evidence.len(), 2);
    assert_eq!(export.policies.len(), 1);

    // Through JSON, as an auditor receives it.
    let json = export.to_json().unwrap();
    let parsed = audit::AuditExport::from_json(&json).unwrap();
    let verified = audit::verify_export(&parsed, &trusted).unwrap();
    assert_eq!(verified.records(), [5, 8]);
    assert_eq!(verified.stubs(), 3);
    assert_eq!(verified.first_seq(), 5);
    assert_eq!(verified.checkpoint_seq(), Some(9));
    // Other nodes' contents are not in the export.
    let text = String::from_utf8(json).unwrap();
    assert!(!text.contains("node/a") && !text.contains("node/c"));
}

#[tokio::test]
async fn rejects_export_with_flipped_evidence_byte_with_evidence_mismatch() {
    use base64::Engine as _;
    let (_dir, _store, trusted, mut export) = exported_log().await;
    let (digest, encoded) = export.evidence.iter().next().unwrap();
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    bytes[0] ^= 1;
    let digest = digest.clone();
    let _ = export.evidence.insert(
        digest.clone(),
        base64::engine::general_purpose::STANDARD.encode(bytes),
    );
    let seq = export
        .chain
        .iter()
        .find_map(|e| match e {
            ExportEntry::Record(r) if r.evidence_sha256 == digest => Some(r.seq),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        audit::verify_export(&export, &trusted),
        Err(AuditError::EvidenceMismatch { seq })
    );
}

#[tokio::test]
async fn rejects_export_with_modified_record_with_broken_record() {
    let (_dir, _store, trusted, mut export) = exported_log().await;
    let Some(ExportEntry::Record(record)) = export.chain.first_mut() else {
        panic!("first entry is a full record");
    };
    record.verdict = "warning".into();
    assert_eq!(
        audit::verify_export(&export, &trusted),
        Err(AuditError::BrokenRecord {
            seq: 5,
            reason: BrokenReason::RecordHashMismatch
        })
    );
    // Re-hashing the record does not help: the next full record (seq 8) still names the
    // original hash, and past it the chain would no longer reach the signed head.
    let Some(ExportEntry::Record(record)) = export.chain.first_mut() else {
        panic!("first entry is a full record");
    };
    record.record_hash = record.compute_hash();
    assert_eq!(
        audit::verify_export(&export, &trusted),
        Err(AuditError::BrokenRecord {
            seq: 8,
            reason: BrokenReason::PrevHashMismatch
        })
    );
}

#[tokio::test]
async fn rejects_export_with_changed_policy_text_with_policy_mismatch() {
    let (_dir, _store, trusted, mut export) = exported_log().await;
    for policy in export.policies.values_mut() {
        policy.text.push_str("allow_all = true\n");
    }
    assert_eq!(
        audit::verify_export(&export, &trusted),
        Err(AuditError::PolicyMismatch { seq: 5 })
    );
}

#[tokio::test]
async fn rejects_export_without_its_last_checkpoint_with_not_covered() {
    let (_dir, _store, trusted, mut export) = exported_log().await;
    export.checkpoints.clear();
    assert_eq!(
        audit::verify_export(&export, &trusted),
        Err(AuditError::NotCovered { seq: 5 })
    );
}

#[tokio::test]
async fn concurrent_appends_form_one_gap_free_chain() {
    let (_dir, store) = open().await;
    let mut tasks = Vec::new();
    for task in 0..8_u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25_u64 {
                let node = format!("spiffe://example.org/node/{task}");
                let _ = attest(
                    &store,
                    &node,
                    t(task * 100 + i),
                    &format!("{task:02x}{i:02x}"),
                )
                .await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let verified = store.verify_audit(&[]).await.unwrap();
    assert_eq!(verified.records(), 200);
    assert_eq!(verified.head_seq(), 200);
    let seqs: Vec<i64> = store
        .audit_records(0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    assert_eq!(store.count_outstanding(t(0)).await.unwrap(), 200);
}

#[tokio::test]
async fn reopening_keeps_the_data_and_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(dir.path()).await.unwrap();
    let first = attest(&store, "spiffe://example.org/node/a", t(0), "01").await;
    store.close().await;
    let again = Store::open_sqlite(dir.path()).await.unwrap();
    let second = attest(&again, "spiffe://example.org/node/a", t(1), "02").await;
    assert_eq!(second.prev_hash, first.record_hash);
    assert_eq!(again.verify_audit(&[]).await.unwrap().records(), 2);
}

#[tokio::test]
async fn rejects_unknown_url_with_unsupported_url() {
    assert!(matches!(
        Store::open("mysql://user:pw@host/db").await,
        Err(Error::UnsupportedUrl(url)) if !url.contains("pw")
    ));
}

#[tokio::test]
async fn rejects_export_with_altered_stub_with_bad_checkpoint() {
    let (_dir, _store, trusted, mut export) = exported_log().await;
    let Some(ExportEntry::Stub { seq: 9, body_hash }) = export.chain.last_mut() else {
        panic!("last entry is the stub of record 9");
    };
    body_hash[0] ^= 1;
    assert_eq!(
        audit::verify_export(&export, &trusted),
        Err(AuditError::BadCheckpoint {
            seq: 9,
            reason: CheckpointFailure::HeadMismatch
        })
    );
}

#[tokio::test]
async fn rejects_export_verified_with_another_key_with_untrusted_signer() {
    let (_dir, _store, _trusted, export) = exported_log().await;
    let other = vec![signing_key().public_key().spki_der().to_vec()];
    // The anchor (checkpoint 4) is the first signature checked.
    assert_eq!(
        audit::verify_export(&export, &other),
        Err(AuditError::UntrustedSigner { seq: 4 })
    );
}

/// A successful attestation of `node` with SVID `serial`, consuming `nonce` if given.
fn append_of(node: &str, at: UnixTime, serial: &str, nonce: Option<u8>) -> Append {
    Append {
        record: new_record(node, at, Some(serial)),
        svid: Some(NewIssuedSvid {
            serial_hex: serial.into(),
            spiffe_id: node.into(),
            key_thumbprint: "thumb".into(),
            not_after: t(3_600_000),
        }),
        node: Some(NodeUpsert {
            spiffe_id: node.into(),
            hardware_id: Some(format!("ek:{node}")),
            policy_name: "tpm-default".into(),
            policy_hash: policy().hash_hex,
        }),
        evidence: format!("evidence of {node} at {at}").into_bytes(),
        policy: Some(policy()),
        consume_nonce: nonce.map(|n| [n; 32]),
        registrations_epoch: None,
    }
}

#[tokio::test]
async fn pending_challenge_reads_without_consuming() {
    let (_dir, store) = open().await;
    let issued = challenge(1, t(60_000));
    store.insert_challenge(&issued).await.unwrap();
    assert_eq!(
        store.pending_challenge(&[1; 32], t(10)).await.unwrap(),
        issued
    );
    assert_eq!(
        store.pending_challenge(&[1; 32], t(20)).await.unwrap(),
        issued
    );
    assert!(matches!(
        store.pending_challenge(&[1; 32], t(60_000)).await,
        Err(Error::NonceExpired)
    ));
    assert!(matches!(
        store.pending_challenge(&[2; 32], t(10)).await,
        Err(Error::NonceUnknown)
    ));
    let _consumed = store.consume_challenge(&[1; 32], t(30)).await.unwrap();
    assert!(matches!(
        store.pending_challenge(&[1; 32], t(40)).await,
        Err(Error::NonceConsumed)
    ));
}

#[tokio::test]
async fn append_consumes_its_nonce_with_the_record() {
    let (_dir, store) = open().await;
    store
        .insert_challenge(&challenge(1, t(60_000)))
        .await
        .unwrap();
    let record = store
        .append(append_of("spiffe://example.org/a", t(10), "aa", Some(1)))
        .await
        .unwrap();
    assert_eq!(record.seq, 1);
    assert!(matches!(
        store.pending_challenge(&[1; 32], t(20)).await,
        Err(Error::NonceConsumed)
    ));
    // The replay writes nothing: no record, no SVID.
    assert!(matches!(
        store
            .append(append_of("spiffe://example.org/a", t(20), "bb", Some(1)))
            .await,
        Err(Error::NonceConsumed)
    ));
    assert_eq!(store.head().await.unwrap().seq, 1);
    assert!(matches!(
        store.get_svid("bb").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn rejects_append_with_expired_nonce_with_nonce_expired() {
    let (_dir, store) = open().await;
    store
        .insert_challenge(&challenge(1, t(60_000)))
        .await
        .unwrap();
    assert!(matches!(
        store
            .append(append_of(
                "spiffe://example.org/a",
                t(60_000),
                "aa",
                Some(1)
            ))
            .await,
        Err(Error::NonceExpired)
    ));
    assert!(matches!(
        store
            .append(append_of("spiffe://example.org/a", t(10), "aa", Some(9)))
            .await,
        Err(Error::NonceUnknown)
    ));
    assert_eq!(store.head().await.unwrap().seq, 0);
}

#[tokio::test]
async fn batch_refuses_only_its_replays() {
    let (_dir, store) = open().await;
    for nonce in 1..=3 {
        store
            .insert_challenge(&challenge(nonce, t(60_000)))
            .await
            .unwrap();
    }
    let _consumed = store.consume_challenge(&[3; 32], t(1)).await.unwrap();
    // Polled together, the five are queued before the appender runs: one transaction.
    let (fresh_a, fresh_b, replayed, twice, no_nonce) = tokio::join!(
        store.append(append_of("spiffe://example.org/a", t(10), "a1", Some(1))),
        store.append(append_of("spiffe://example.org/b", t(10), "b1", Some(2))),
        store.append(append_of("spiffe://example.org/c", t(10), "c1", Some(3))),
        store.append(append_of("spiffe://example.org/d", t(10), "d1", Some(2))),
        store.append(append_of("spiffe://example.org/e", t(10), "e1", None)),
    );
    assert!(matches!(replayed, Err(Error::NonceConsumed)));
    assert!(
        matches!(twice, Err(Error::NonceConsumed)),
        "nonce 2 twice in one batch"
    );
    let seqs: Vec<i64> = [fresh_a, fresh_b, no_nonce]
        .into_iter()
        .map(|r| r.unwrap().seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(store.verify_audit(&[]).await.unwrap().records(), 3);
    for refused in ["c1", "d1"] {
        assert!(matches!(
            store.get_svid(refused).await,
            Err(Error::NotFound { .. })
        ));
    }
}

#[tokio::test]
async fn rejects_duplicate_serial_in_a_batch_with_conflict_for_that_item_only() {
    let (_dir, store) = open().await;
    // The second "s1" fails its INSERT: the batch rolls back and each item is retried
    // alone, so only it fails.
    let (a, b, c) = tokio::join!(
        store.append(append_of("spiffe://example.org/a", t(10), "s1", None)),
        store.append(append_of("spiffe://example.org/b", t(10), "s1", None)),
        store.append(append_of("spiffe://example.org/c", t(10), "s3", None)),
    );
    assert_eq!(a.unwrap().seq, 1);
    assert!(matches!(
        b,
        Err(Error::Conflict {
            what: "issued SVID"
        })
    ));
    assert_eq!(c.unwrap().seq, 2);
    assert_eq!(store.verify_audit(&[]).await.unwrap().records(), 2);
}

#[tokio::test]
async fn rejects_batch_whose_commit_fails_with_append_failed_for_every_item() {
    let (dir, store) = open().await;
    store
        .insert_challenge(&challenge(1, t(60_000)))
        .await
        .unwrap();
    // A deferred foreign key broken by one record: checked, and failing, only at COMMIT.
    let raw = raw(&dir).await;
    for statement in [
        "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
        "CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
        "CREATE TRIGGER poison AFTER INSERT ON audit_log WHEN NEW.platform = 'poison' \
         BEGIN INSERT INTO child (parent) VALUES (1); END",
    ] {
        let _ = raw.execute(statement).await.unwrap();
    }
    let mut poisoned = append_of("spiffe://example.org/b", t(10), "b1", None);
    poisoned.record.platform = "poison".into();
    let (a, b, c) = tokio::join!(
        store.append(append_of("spiffe://example.org/a", t(10), "a1", Some(1))),
        store.append(poisoned),
        store.append(append_of("spiffe://example.org/c", t(10), "c1", None)),
    );
    for result in [a, b, c] {
        assert!(matches!(result, Err(Error::AppendFailed(_))), "{result:?}");
    }
    // Nothing of the batch was written, its nonce included.
    assert_eq!(store.head().await.unwrap().seq, 0);
    assert!(store.audit_records(0, 10).await.unwrap().is_empty());
    assert!(matches!(
        store.get_svid("a1").await,
        Err(Error::NotFound { .. })
    ));
    let _still_pending = store.pending_challenge(&[1; 32], t(20)).await.unwrap();
    // The store goes on: the next batch commits.
    let _ = raw.execute("DROP TRIGGER poison").await.unwrap();
    assert_eq!(
        store
            .append(append_of("spiffe://example.org/a", t(30), "a1", Some(1)))
            .await
            .unwrap()
            .seq,
        1
    );
}

#[tokio::test]
async fn close_writes_queued_appends_then_refuses_more() {
    let (_dir, store) = open().await;
    let (a, b, ()) = tokio::join!(
        store.append(append_of("spiffe://example.org/a", t(10), "a1", None)),
        store.append(append_of("spiffe://example.org/b", t(10), "b1", None)),
        store.close(),
    );
    assert_eq!(a.unwrap().seq, 1);
    assert_eq!(b.unwrap().seq, 2);
    assert!(matches!(
        store
            .append(append_of("spiffe://example.org/c", t(10), "c1", None))
            .await,
        Err(Error::Database(_))
    ));
}

#[tokio::test]
async fn another_handle_reads_the_challenge_from_the_database() {
    let (dir, first) = open().await;
    let other = Store::open_sqlite(dir.path()).await.unwrap();
    let issued = challenge(1, t(60_000));
    first.insert_challenge(&issued).await.unwrap();
    // The issuing (first) handle remembers it; the other reads the row: the same challenge.
    assert_eq!(
        first.pending_challenge(&[1; 32], t(10)).await.unwrap(),
        issued
    );
    assert_eq!(
        other.pending_challenge(&[1; 32], t(10)).await.unwrap(),
        issued
    );
    // Consumed through the other handle: the first still remembers it, and its append
    // is refused by the database, after which it forgets it.
    let _record = other
        .append(append_of("spiffe://example.org/a", t(20), "aa", Some(1)))
        .await
        .unwrap();
    assert_eq!(
        first.pending_challenge(&[1; 32], t(25)).await.unwrap(),
        issued
    );
    assert!(matches!(
        first
            .append(append_of("spiffe://example.org/a", t(30), "bb", Some(1)))
            .await,
        Err(Error::NonceConsumed)
    ));
    for store in [&first, &other] {
        assert!(matches!(
            store.pending_challenge(&[1; 32], t(40)).await,
            Err(Error::NonceConsumed)
        ));
    }
    assert_eq!(first.head().await.unwrap().seq, 1);
}

#[tokio::test]
async fn rejects_remembered_challenge_once_expired_with_nonce_expired() {
    let (_dir, store) = open().await;
    store
        .insert_challenge(&challenge(1, t(60_000)))
        .await
        .unwrap();
    assert!(matches!(
        store.pending_challenge(&[1; 32], t(60_000)).await,
        Err(Error::NonceExpired)
    ));
    // The purge forgets the expired ones it deletes.
    store
        .insert_challenge(&challenge(2, t(70_000)))
        .await
        .unwrap();
    assert_eq!(store.purge_expired_challenges(t(70_000)).await.unwrap(), 2);
    assert!(matches!(
        store.pending_challenge(&[2; 32], t(10)).await,
        Err(Error::NonceUnknown)
    ));
}

#[tokio::test]
async fn rejects_append_for_a_banned_node_with_banned_and_writes_nothing() {
    let (_dir, store) = open().await;
    for nonce in 1..=3 {
        store
            .insert_challenge(&challenge(nonce, t(60_000)))
            .await
            .unwrap();
    }
    store
        .ban(BanKind::SpiffeId, "spiffe://example.org/a", "stolen", t(1))
        .await
        .unwrap();
    // append_of's hardware ID is "ek:<SPIFFE ID>".
    store
        .ban(
            BanKind::HardwareId,
            "ek:spiffe://example.org/b",
            "decommissioned",
            t(1),
        )
        .await
        .unwrap();
    let (by_id, by_hardware, fine) = tokio::join!(
        store.append(append_of("spiffe://example.org/a", t(10), "a1", Some(1))),
        store.append(append_of("spiffe://example.org/b", t(10), "b1", Some(2))),
        store.append(append_of("spiffe://example.org/c", t(10), "c1", Some(3))),
    );
    assert!(matches!(by_id, Err(Error::Banned(ban)) if ban.reason == "stolen"));
    assert!(matches!(by_hardware, Err(Error::Banned(ban)) if ban.reason == "decommissioned"));
    assert_eq!(fine.unwrap().seq, 1);
    for refused in ["a1", "b1"] {
        assert!(matches!(
            store.get_svid(refused).await,
            Err(Error::NotFound { .. })
        ));
    }
    // Their nonces stay unconsumed, for the refusals' own records.
    let mut refusal = append_of("spiffe://example.org/a", t(20), "unused", Some(1));
    refusal.svid = None;
    refusal.node = None;
    refusal.record.svid_serial = None;
    assert_eq!(store.append(refusal).await.unwrap().seq, 2);
    assert!(store.pending_challenge(&[2; 32], t(20)).await.is_ok());
    assert!(matches!(
        store.get_node("spiffe://example.org/a").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn remembers_challenges_only_within_its_byte_budget() {
    let (dir, store) = open().await;
    // 128 Hellos of 256 KiB fill the 32 MiB budget; the 129th is only in the database.
    for nonce in 1..=129 {
        let mut big = challenge(nonce, t(60_000));
        big.hello = vec![nonce; plinth_store::MAX_HELLO_LEN];
        store.insert_challenge(&big).await.unwrap();
    }
    let _ = raw(&dir)
        .await
        .execute("DELETE FROM challenges")
        .await
        .unwrap();
    assert_eq!(
        store
            .pending_challenge(&[128; 32], t(10))
            .await
            .unwrap()
            .hello,
        vec![128; plinth_store::MAX_HELLO_LEN]
    );
    assert!(matches!(
        store.pending_challenge(&[129; 32], t(10)).await,
        Err(Error::NonceUnknown)
    ));
}

/// Automatic checkpoints are off (they would run inside the audit writer's commit); the
/// store's own checkpointer copies the WAL into the database file in the background.
#[tokio::test]
async fn background_checkpointer_copies_committed_writes_into_the_database_file() {
    let (dir, store) = open().await;
    // Until a checkpoint, committed pages live only in plinth.db-wal; 200 small records
    // stay far below the 1,000 pages at which SQLite's own automatic checkpoint would run.
    let file = dir.path().join("plinth.db");
    let size = || std::fs::metadata(&file).unwrap().len();
    let before = size();
    for i in 0..200_u64 {
        let _ = attest(
            &store,
            &format!("spiffe://t/n{}", i % 7),
            t(i),
            &format!("{i:08x}"),
        )
        .await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while size() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint reached {} ({before} bytes)",
            file.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    store.close().await;
}

fn node_registration(spiffe_id: &str) -> NewRegistration {
    NewRegistration {
        spiffe_id: spiffe_id.into(),
        parent_id: None,
        selectors: vec!["tpm:ek_hash:ab".into()],
        ttl_seconds: None,
        admin: false,
    }
}

#[tokio::test]
async fn rejects_append_minted_from_old_registrations_with_registrations_changed() {
    let (dir, first) = open().await;
    let other = Store::open_sqlite(dir.path()).await.unwrap();
    first
        .insert_challenge(&challenge(1, t(60_000)))
        .await
        .unwrap();
    let seen = first.node_registrations().await.unwrap();
    assert!(seen.registrations.is_empty());
    // Another handle (another server on this file) registers a node. The first handle's
    // copy is now stale, and it cannot know until it tries to commit.
    let created = other
        .create_registration(&node_registration("spiffe://example.org/node/a"), t(1))
        .await
        .unwrap();
    assert_eq!(first.node_registrations().await.unwrap(), seen);
    let mut minted = append_of("spiffe://example.org/a", t(10), "a1", Some(1));
    minted.registrations_epoch = Some(seen.epoch);
    assert!(matches!(
        first.append(minted.clone()).await,
        Err(Error::RegistrationsChanged)
    ));
    // Nothing of it was written, and its nonce is still there for the second attempt.
    assert_eq!(first.head().await.unwrap().seq, 0);
    assert!(matches!(
        first.get_svid("a1").await,
        Err(Error::NotFound { .. })
    ));
    assert!(first.pending_challenge(&[1; 32], t(10)).await.is_ok());
    // The refusal dropped the copy: the next read is current, and an SVID minted from it
    // commits.
    let current = first.node_registrations().await.unwrap();
    assert!(current.epoch > seen.epoch);
    assert_eq!(current.registrations, vec![created.clone()]);
    minted.registrations_epoch = Some(current.epoch);
    assert_eq!(first.append(minted).await.unwrap().seq, 1);
    // A handle's own registration writes are seen at once.
    first.delete_registration(&created.id).await.unwrap();
    let after_delete = first.node_registrations().await.unwrap();
    assert!(after_delete.epoch > current.epoch);
    assert!(after_delete.registrations.is_empty());
    // Items that name no epoch (refusals, workload records) are not affected.
    let mut unminted = append_of("spiffe://example.org/b", t(20), "b1", None);
    unminted.registrations_epoch = None;
    assert_eq!(first.append(unminted).await.unwrap().seq, 2);
}

#[tokio::test]
async fn failed_registration_write_leaves_the_epoch_and_the_copy() {
    let (_dir, store) = open().await;
    let created = store
        .create_registration(&node_registration("spiffe://example.org/node/a"), t(1))
        .await
        .unwrap();
    let seen = store.node_registrations().await.unwrap();
    assert!(matches!(
        store
            .create_registration(&node_registration("spiffe://example.org/node/a"), t(2))
            .await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        store.delete_registration("no-such-id").await,
        Err(Error::NotFound { .. })
    ));
    // Both writes rolled back, epoch bump included: an SVID minted before them commits.
    let mut minted = append_of("spiffe://example.org/a", t(10), "a1", None);
    minted.registrations_epoch = Some(seen.epoch);
    assert_eq!(store.append(minted).await.unwrap().seq, 1);
    assert_eq!(
        store.node_registrations().await.unwrap().registrations,
        vec![created]
    );
}
