//! Crash safety: `kill -9` a `plinth server` process while TPM attestations are in
//! flight, restart it on the same data directory, and check that the audit chain still
//! verifies, that every SVID a client received has its issued-SVID row and audit record,
//! that no issued-SVID row lacks its record, and that the restarted server still attests.
//!
//! ```text
//!  3 swtpm nodes ─► challenge → evidence, several each, in advance
//!  all evidence at once ─► plinth server ──(2nd SVID back)──► SIGKILL
//!  restart on the same data dir ─► plinth audit verify; Store: records ⇔ SVID rows
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use plinth_api::attestation::attestation_client::AttestationClient;
use plinth_api::attestation::{AttestationResult, Evidence};
use plinth_e2e::fleet::{TpmNode, write_trust_for};
use plinth_store::Store;
use tonic::transport::Channel;

mod common;
use common::{ServerProcess, plinth_command};

/// swtpm instances, and the evidence messages each produces before submission.
const NODES: usize = 3;
const PER_NODE: usize = 8;
/// The server is killed as soon as this many SVIDs have come back. One: answers come
/// back a committed batch at a time, and when a slow commit (an fsync on a busy disk) let
/// every other attestation queue behind it, the batch that delivered a second answer
/// held all the rest, and the kill interrupted nothing.
const KILL_AFTER: usize = 1;

/// The server's configuration besides its data directory and ports: the policies and
/// roots `write_trust_for` put in `dir`.
fn config(dir: &Path, tpm_roots: &Path) -> String {
    format!(
        "trust_domain = \"example.org\"\n\
         policies = {policies:?}\n\
         tpm_roots = [{roots:?}]\n\
         nonce_ttl_seconds = 600\n\
         shutdown_grace_seconds = 5\n",
        policies = dir.join("policies").display().to_string(),
        roots = tpm_roots.display().to_string(),
    )
}

/// Each node answers `per_node` challenges, one after another (a TPM is one device);
/// the nodes work in parallel.
async fn evidence_in_advance(
    nodes: &Arc<Vec<TpmNode>>,
    channel: &Channel,
    per_node: usize,
) -> Vec<Evidence> {
    let mut producing = Vec::new();
    for index in 0..nodes.len() {
        let nodes = Arc::clone(nodes);
        let mut client = AttestationClient::new(channel.clone());
        producing.push(tokio::spawn(async move {
            let mut evidence = Vec::new();
            for _ in 0..per_node {
                let hello = nodes[index].hello.clone();
                let challenge = client.challenge(hello).await.unwrap().into_inner();
                let nodes = Arc::clone(&nodes);
                let (answer, _key) =
                    tokio::task::spawn_blocking(move || nodes[index].evidence(&challenge))
                        .await
                        .unwrap();
                evidence.push(answer);
            }
            evidence
        }));
    }
    let mut all = Vec::new();
    for task in producing {
        all.extend(task.await.unwrap());
    }
    all
}

/// The issued-SVID key of a minted leaf: hex of its serial without leading zero bytes.
fn serial_hex(leaf_der: &[u8]) -> String {
    let leaf = plinth_x509::Certificate::from_der(leaf_der).unwrap();
    let serial = leaf.serial();
    let start = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
    hex::encode(&serial[start..])
}

fn audit_verify(data_dir: &Path) -> serde_json::Value {
    let output: Output = plinth_command(&[
        "audit",
        "verify",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--json",
    ])
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "plinth audit verify failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every SVID a client received is in the store with its audit record; every issued-SVID
/// row has an audit record naming its serial, and every record naming a serial has its row.
async fn check_records(data_dir: &Path, received: &[AttestationResult]) {
    let store = Store::open_sqlite(data_dir).await.unwrap();
    for result in received {
        let serial = serial_hex(&result.svid_chain[0]);
        let record = store.audit_record(result.audit_seq).await.unwrap();
        assert_eq!(record.svid_serial.as_deref(), Some(serial.as_str()));
        assert_eq!(
            record.node_spiffe_id.as_deref(),
            Some(result.spiffe_id.as_str())
        );
        assert_eq!(record.verdict, "affirming");
        let issued = store.get_svid(&serial).await.unwrap();
        assert_eq!(issued.audit_seq, result.audit_seq);
        assert_eq!(issued.spiffe_id, result.spiffe_id);
    }

    let head = store.head().await.unwrap();
    let records = store
        .audit_records(0, u32::try_from(head.seq).unwrap() + 1)
        .await
        .unwrap();
    assert_eq!(records.len(), usize::try_from(head.seq).unwrap());
    let mut serials_in_records = BTreeSet::new();
    for record in &records {
        if let Some(serial) = &record.svid_serial {
            let issued = store.get_svid(serial).await.unwrap();
            assert_eq!(issued.audit_seq, record.seq);
            assert!(serials_in_records.insert(serial.clone()));
        }
    }
    let node_ids: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| r.node_spiffe_id.as_deref())
        .collect();
    let mut rows = 0;
    for id in node_ids {
        for issued in store.list_svids_for(id).await.unwrap() {
            let record = store.audit_record(issued.audit_seq).await.unwrap();
            assert_eq!(
                record.svid_serial.as_deref(),
                Some(issued.serial_hex.as_str())
            );
            assert_eq!(record.node_spiffe_id.as_deref(), Some(id));
            rows += 1;
        }
    }
    assert_eq!(rows, serials_in_records.len());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_attestations_keeps_the_audit_chain_and_a_record_for_every_svid() {
    let nodes = Arc::new(TpmNode::start_many(NODES));
    let dir = tempfile::tempdir().unwrap();
    let tpm_roots = write_trust_for(dir.path(), &nodes.iter().collect::<Vec<_>>());
    let data_dir: PathBuf = dir.path().join("data");
    let mut server =
        ServerProcess::start(dir.path(), &config(dir.path(), &tpm_roots), "server-1.log");
    let channel = server.channel().await;

    let evidence = evidence_in_advance(&nodes, &channel, PER_NODE).await;
    let total = evidence.len();
    let (sent, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
    for answer in evidence {
        let mut client = AttestationClient::new(channel.clone());
        let sent = sent.clone();
        let _task = tokio::spawn(async move {
            let outcome = client.attest(answer).await.map(tonic::Response::into_inner);
            let _delivered = sent.send(outcome);
        });
    }
    drop(sent);
    let mut received = Vec::new();
    let mut interrupted = Vec::new();
    while let Some(outcome) = outcomes.recv().await {
        match outcome {
            Ok(result) => {
                received.push(result);
                if received.len() == KILL_AFTER {
                    server.kill();
                }
            }
            Err(status) => interrupted.push(status),
        }
    }
    assert_eq!(received.len() + interrupted.len(), total);
    assert!(received.len() >= KILL_AFTER, "{interrupted:?}");
    // Otherwise the kill interrupted nothing and the test proves nothing.
    assert!(
        !interrupted.is_empty(),
        "every attestation finished before the kill"
    );

    // Restart on the same data directory.
    let mut server =
        ServerProcess::start(dir.path(), &config(dir.path(), &tpm_roots), "server-2.log");
    let verified = audit_verify(&data_dir);
    assert_eq!(verified["verified"], true, "{verified}");
    check_records(&data_dir, &received).await;

    // The restarted server still attests, and records it.
    let mut client = AttestationClient::new(server.channel().await);
    let (after, _key) = nodes[0].attest(&mut client).await.unwrap();
    received.push(after);
    let status = server.terminate();
    assert!(status.success(), "{status}: {}", server.log());
    let verified = audit_verify(&data_dir);
    assert_eq!(verified["verified"], true, "{verified}");
    check_records(&data_dir, &received).await;
    eprintln!(
        "{} submitted: {} SVIDs received before the kill, {} interrupted; audit verified: {verified}",
        total,
        received.len() - 1,
        interrupted.len()
    );
}
