//! Two plinth-store replicas (two connection pools) on one real PostgreSQL: single-use
//! nonces across replicas, shared registrations, and one gap-free audit chain under
//! concurrent appends from both.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use plinth_core::{HashAlg, UnixTime};
use plinth_crypto::{Curve, EcdsaSigningKey, SystemRandom};
use plinth_e2e::postgres::PgCluster;
use plinth_store::audit::{self, Checkpoint};
use plinth_store::{
    Append, Backend, Challenge, Error, NewAuditRecord, NewIssuedSvid, NewRegistration, NodeUpsert,
    PolicyText, Store,
};

const T0: u64 = 1_760_000_000_000;

fn t(offset_ms: u64) -> UnixTime {
    UnixTime::from_millis(T0 + offset_ms)
}

/// A cluster and two replicas on it (each opening runs the migrations; the second finds
/// them applied).
async fn replicas() -> (PgCluster, Store, Store) {
    let cluster = PgCluster::start().unwrap();
    let a = Store::open(&cluster.url()).await.unwrap();
    let b = Store::open(&cluster.url()).await.unwrap();
    assert_eq!(a.backend(), Backend::Postgres);
    (cluster, a, b)
}

fn challenge(nonce: [u8; 32]) -> Challenge {
    Challenge {
        nonce,
        platform: "nitro".into(),
        hello: b"hello".to_vec(),
        activation_commitment: None,
        created_at: t(0),
        expires_at: t(60_000),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nonce_issued_by_one_replica_is_consumed_once_by_the_other() {
    let (_cluster, a, b) = replicas().await;
    a.insert_challenge(&challenge([1; 32])).await.unwrap();
    let consumed = b.consume_challenge(&[1; 32], t(10)).await.unwrap();
    assert_eq!(consumed, challenge([1; 32]));
    for replica in [&a, &b] {
        assert!(matches!(
            replica.consume_challenge(&[1; 32], t(20)).await,
            Err(Error::NonceConsumed)
        ));
    }
    b.insert_challenge(&challenge([2; 32])).await.unwrap();
    assert!(matches!(
        a.consume_challenge(&[2; 32], t(60_000)).await,
        Err(Error::NonceExpired)
    ));
    assert!(matches!(
        a.consume_challenge(&[3; 32], t(0)).await,
        Err(Error::NonceUnknown)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consumes_from_both_replicas_succeed_exactly_once() {
    let (_cluster, a, b) = replicas().await;
    for round in 0..10_u8 {
        let nonce = [round; 32];
        a.insert_challenge(&challenge(nonce)).await.unwrap();
        let mut tasks = Vec::new();
        for task in 0..16_u64 {
            let replica = if task % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                replica.consume_challenge(&nonce, t(task)).await
            }));
        }
        let mut wins = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => wins += 1,
                Err(Error::NonceConsumed) => {}
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(wins, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registrations_written_by_one_replica_are_served_by_the_other() {
    let (_cluster, a, b) = replicas().await;
    let new = NewRegistration {
        spiffe_id: "spiffe://example.org/node/a".into(),
        parent_id: None,
        selectors: vec!["nitro:pcr0:abcd".into()],
        ttl_seconds: Some(600),
        admin: false,
    };
    let created = a.create_registration(&new, t(0)).await.unwrap();
    assert_eq!(
        b.list_registrations().await.unwrap(),
        std::slice::from_ref(&created)
    );
    assert_eq!(b.get_registration(&created.id).await.unwrap(), created);
    assert!(matches!(
        b.create_registration(&new, t(1)).await,
        Err(Error::Conflict {
            what: "registration"
        })
    ));
    b.delete_registration(&created.id).await.unwrap();
    assert!(a.list_registrations().await.unwrap().is_empty());
}

fn policy() -> PolicyText {
    let text = "name = \"nitro\"\n";
    PolicyText {
        name: "nitro".into(),
        hash_hex: plinth_crypto::digest(HashAlg::Sha256, text.as_bytes()).to_hex(),
        text: text.into(),
    }
}

async fn attest(store: &Store, replica: u64, i: u64) {
    let node = format!("spiffe://example.org/node/{replica}-{}", i % 4);
    let serial = format!("{replica:02x}{i:04x}");
    let at = t(replica * 1000 + i);
    let record = NewAuditRecord {
        recorded_at: at,
        platform: "nitro".into(),
        node_spiffe_id: Some(node.clone()),
        hardware_id: None,
        policy_name: Some("nitro".into()),
        policy_hash: Some(policy().hash_hex),
        verdict: "affirming".into(),
        error_code: None,
        error_message: None,
        claims_json: format!(r#"{{"i":{i}}}"#),
        result_json: format!(r#"{{"serial":"{serial}"}}"#),
        svid_serial: Some(serial.clone()),
    };
    let svid = NewIssuedSvid {
        serial_hex: serial,
        spiffe_id: node.clone(),
        key_thumbprint: "k".into(),
        not_after: UnixTime::from_millis(at.as_millis() + 600_000),
    };
    let upsert = NodeUpsert {
        spiffe_id: node,
        hardware_id: None,
        policy_name: "nitro".into(),
        policy_hash: policy().hash_hex,
    };
    let _record = store
        .record_attestation(
            &record,
            Some(&svid),
            Some(&upsert),
            format!("document {replica} {i}").as_bytes(),
            Some(&policy()),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_from_two_replicas_form_one_gap_free_chain() {
    let (_cluster, a, b) = replicas().await;
    let mut tasks = Vec::new();
    for (replica, store) in [(0_u64, a.clone()), (1, b.clone())] {
        // Several concurrent writers per replica, 50 appends per replica in all.
        for writer in 0..5_u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10_u64 {
                    attest(&store, replica, writer * 10 + i).await;
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }

    let key = EcdsaSigningKey::generate(Curve::P384, &SystemRandom).unwrap();
    let trusted = vec![key.public_key().spki_der().to_vec()];
    let head = b.head().await.unwrap();
    assert_eq!(head.seq, 100);
    let message = audit::checkpoint_message(head.seq, &head.hash, t(10_000));
    a.add_checkpoint(&Checkpoint {
        seq: head.seq,
        head_hash: head.hash,
        signed_at: t(10_000),
        signer_spki_der: trusted[0].clone(),
        signature: key.sign(&message).unwrap(),
        algorithm: "ES384".into(),
    })
    .await
    .unwrap();

    for replica in [&a, &b] {
        let verified = replica.verify_audit(&trusted).await.unwrap();
        assert_eq!(verified.records(), 100);
        assert_eq!(verified.last_checkpoint_seq(), Some(100));
        assert_eq!(verified.uncovered(), 0);
    }
    let seqs: Vec<i64> = a
        .audit_records(0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
    assert_eq!(b.count_outstanding(t(0)).await.unwrap(), 100);

    let export = b
        .export(Some("spiffe://example.org/node/1-3"), None)
        .await
        .unwrap();
    let verified = audit::verify_export(&export, &trusted).unwrap();
    assert_eq!(verified.records().len(), 12);
}

/// One racer's attestation answering `nonce`, with its own SVID serial.
fn answer(nonce: [u8; 32], racer: u64) -> Append {
    let serial = format!("{:02x}{racer:04x}", nonce[0]);
    Append {
        record: NewAuditRecord {
            recorded_at: t(racer),
            platform: "nitro".into(),
            node_spiffe_id: None,
            hardware_id: None,
            policy_name: None,
            policy_hash: None,
            verdict: "affirming".into(),
            error_code: None,
            error_message: None,
            claims_json: "{}".into(),
            result_json: "{}".into(),
            svid_serial: Some(serial.clone()),
        },
        svid: Some(NewIssuedSvid {
            serial_hex: serial,
            spiffe_id: "spiffe://example.org/node/racer".into(),
            key_thumbprint: "k".into(),
            not_after: t(600_000),
        }),
        node: None,
        evidence: format!("racer {racer}").into_bytes(),
        policy: None,
        consume_nonce: Some(nonce),
        registrations_epoch: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_answering_one_nonce_from_both_replicas_record_it_once() {
    let (_cluster, a, b) = replicas().await;
    for round in 0..10_u8 {
        let nonce = [round; 32];
        a.insert_challenge(&challenge(nonce)).await.unwrap();
        let mut tasks = Vec::new();
        for racer in 0..16_u64 {
            let replica = if racer % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                replica.append(answer(nonce, racer)).await
            }));
        }
        let mut wins = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => wins += 1,
                Err(Error::NonceConsumed) => {}
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(wins, 1, "round {round}");
        assert_eq!(a.head().await.unwrap().seq, i64::from(round) + 1);
    }
    // Only the winners' SVIDs exist, and the chain holds exactly their records.
    assert_eq!(b.count_outstanding(t(0)).await.unwrap(), 10);
    assert_eq!(b.verify_audit(&[]).await.unwrap().records(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn svid_minted_from_registrations_the_other_replica_changed_is_refused() {
    let (_cluster, a, b) = replicas().await;
    a.insert_challenge(&challenge([7; 32])).await.unwrap();
    let seen = a.node_registrations().await.unwrap();
    let created = b
        .create_registration(
            &NewRegistration {
                spiffe_id: "spiffe://example.org/node/web".into(),
                parent_id: None,
                selectors: vec!["nitro:pcr0:abcd".into()],
                ttl_seconds: None,
                admin: false,
            },
            t(1),
        )
        .await
        .unwrap();
    let mut minted = answer([7; 32], 1);
    minted.registrations_epoch = Some(seen.epoch);
    assert!(matches!(
        a.append(minted.clone()).await,
        Err(Error::RegistrationsChanged)
    ));
    assert_eq!(a.head().await.unwrap().seq, 0);
    // Its nonce was not consumed; minted again from the current registrations, it commits.
    let current = a.node_registrations().await.unwrap();
    assert_eq!(current.registrations, vec![created.clone()]);
    minted.registrations_epoch = Some(current.epoch);
    assert_eq!(a.append(minted).await.unwrap().seq, 1);

    // A delete racing appends minted at the current epoch: each append either committed
    // before the delete (and names the old epoch) or is refused; none commits after it.
    let mut racing = Vec::new();
    for i in 0..16_u8 {
        let nonce = [100 + i; 32];
        a.insert_challenge(&challenge(nonce)).await.unwrap();
        let mut item = answer(nonce, u64::from(i) + 10);
        item.registrations_epoch = Some(current.epoch);
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        racing.push(tokio::spawn(async move { store.append(item).await }));
    }
    b.delete_registration(&created.id).await.unwrap();
    let deleted_at = a.head().await.unwrap().seq;
    for race in racing {
        match race.await.unwrap() {
            Ok(record) => assert!(record.seq <= deleted_at, "committed after the delete"),
            Err(Error::RegistrationsChanged) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    // The replica that deleted sees it at once (the other, when an append tells it).
    assert!(
        b.node_registrations()
            .await
            .unwrap()
            .registrations
            .is_empty()
    );
}
