//! Group commit of audit records.
//!
//! Each store runs one appender task. Attestations queue for it; it takes whatever is
//! queued (up to [`MAX_BATCH`] items or [`MAX_BATCH_BYTES`] of evidence) and writes it in
//! ONE transaction, so concurrent attestations share one commit (one fsync on SQLite, one
//! hold of the chain head lock on PostgreSQL) instead of queueing for the writer one
//! commit each. Nobody waits for a batch to fill: while one commits, the next gathers.
//!
//! ```text
//!  append(item) ─► queue ─► appender: BEGIN
//!                               bans on the items' nodes       (one query)
//!                               the registration epoch         (one query, if any item names one)
//!                               consume the items' nonces      (one statement, nonce order)
//!                               evidence and policy blobs      (sorted, deduplicated)
//!                               lock the chain head
//!                               records, SVID rows, node rows, in queue order
//!                               move the head; COMMIT
//!                           ─► each caller gets its own record (or its own refusal)
//! ```
//!
//! Failures stay with their item where they can:
//! - an item that does not validate is refused before it is queued;
//! - an item whose node is banned gets [`Error::Banned`] and nothing of it is written (its
//!   nonce stays unconsumed, for the refusal's own record);
//! - an item whose SVID was minted from registrations older than the current registration
//!   epoch gets [`Error::RegistrationsChanged`] and nothing of it is written (its nonce
//!   stays unconsumed, for its second attempt);
//! - an item whose nonce is already consumed (a replay that raced its original, on any
//!   replica) or expired gets [`Error::NonceConsumed`] / [`Error::NonceExpired`] /
//!   [`Error::NonceUnknown`] and nothing of it is written; the others commit;
//! - a statement that fails rolls the batch back and every item is retried in its own
//!   transaction, so one bad item fails alone;
//! - a failed BEGIN or COMMIT fails every item of the batch ([`Error::AppendFailed`]):
//!   nothing of it was written, so no caller may hand out an SVID.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use plinth_core::UnixTime;
use sqlx::{Any, AnyPool, Row as _, Transaction};
use tokio::sync::{mpsc, oneshot, watch};

use crate::audit::{AuditRecord, GENESIS_HASH};
use crate::blob::insert_policy;
use crate::challenge::{Remembered, why_unconsumed};
use crate::log::{NewAuditRecord, NewIssuedSvid, NodeUpsert, RECORD_COLUMNS};
use crate::node::{ban_of, bans_on};
use crate::registration::{RegistrationCache, read_epoch};
use crate::{
    Backend, Error, MAX_EVIDENCE_LEN, PolicyText, Result, Store, check_len, conflict_as, db_time,
    placeholders, read_hash, sha256_hex,
};

/// The most attestations one transaction writes.
const MAX_BATCH: usize = 256;
/// Evidence bytes after which a batch takes no more items.
const MAX_BATCH_BYTES: usize = 16 << 20;
/// Attestations waiting for the appender; callers wait for room beyond it.
const QUEUE_LEN: usize = 1024;

/// One attestation to append: its audit record and everything written with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    /// The audit record.
    pub record: NewAuditRecord,
    /// The SVID issued, on success.
    pub svid: Option<NewIssuedSvid>,
    /// The node row, on success. A ban on its SPIFFE ID or hardware ID, found in the
    /// transaction, refuses the item ([`Error::Banned`]).
    pub node: Option<NodeUpsert>,
    /// The evidence bytes (stored under their SHA-256).
    pub evidence: Vec<u8>,
    /// The policy text applied, stored under its hash; it must be the record's policy.
    pub policy: Option<PolicyText>,
    /// The challenge this attestation answers, consumed in the same transaction as of
    /// `record.recorded_at`: if it is already consumed (or expired, or gone) nothing of
    /// this item is written and the append fails with the reason.
    pub consume_nonce: Option<[u8; 32]>,
    /// The registration epoch of the registrations the SVID was minted from
    /// ([`crate::NodeRegistrations::epoch`]): unless it is still the current epoch when
    /// the transaction runs, nothing of this item is written and the append fails with
    /// [`Error::RegistrationsChanged`]. `None` when no registration decided anything.
    pub registrations_epoch: Option<i64>,
}

impl Append {
    /// Every budget and consistency check that needs no database.
    fn check(&self) -> Result<()> {
        self.record.check()?;
        check_len("evidence", self.evidence.len(), MAX_EVIDENCE_LEN)?;
        let _ = db_time(self.record.recorded_at)?;
        if let Some(svid) = &self.svid {
            let _ = db_time(svid.not_after)?;
        }
        if let Some(policy) = &self.policy {
            policy.check()?;
            if self.record.policy_hash.as_deref() != Some(policy.hash_hex.as_str()) {
                return Err(Error::PolicyHashMismatch {
                    expected: self.record.policy_hash.clone().unwrap_or_default(),
                });
            }
        }
        Ok(())
    }
}

type Reply = oneshot::Sender<Result<AuditRecord>>;

#[derive(Debug)]
enum Message {
    Append(Box<Append>, Reply),
    /// Stop taking items; write those queued, then stop.
    Close,
}

/// The handle on a store's appender task.
#[derive(Debug, Clone)]
pub(crate) struct Appender {
    queue: mpsc::Sender<Message>,
    /// Turns true when the task has written its last batch.
    pub(crate) finished: watch::Receiver<bool>,
}

impl Appender {
    /// Starts the task (on the current Tokio runtime). It holds a pool handle, not a
    /// store, so it ends when every store clone is dropped or [`Self::close`] is called.
    /// Nonces it consumes (or finds unusable) are forgotten by `remembered`; node
    /// registrations older than an epoch it reads, by `registrations`.
    pub(crate) fn start(
        pool: AnyPool,
        backend: Backend,
        remembered: Arc<Remembered>,
        registrations: Arc<RegistrationCache>,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_LEN);
        let (done, finished) = watch::channel(false);
        drop(tokio::spawn(async move {
            run(&pool, backend, &remembered, &registrations, receiver).await;
            let _ = done.send(true);
        }));
        Self { queue, finished }
    }

    /// Refuses new items, and returns once every queued one is written.
    pub(crate) async fn close(&self) {
        let _ = self.queue.send(Message::Close).await;
        let _ = self.finished.clone().wait_for(|finished| *finished).await;
    }
}

/// The error a caller sees when the appender is gone: the store was closed.
fn closed() -> Error {
    Error::Database(sqlx::Error::PoolClosed)
}

impl Store {
    /// Appends one attestation: the audit record, its evidence, the policy text, the
    /// issued SVID and the node row (and consumes its nonce, if it names one), in one
    /// transaction shared with the other attestations queued meanwhile, which commits
    /// before this returns. The chain head is locked inside that transaction, so appends
    /// from every replica are serialized and the chain never forks or skips a seq.
    ///
    /// # Errors
    /// [`Error::TooLarge`] (evidence over [`MAX_EVIDENCE_LEN`], texts over
    /// [`crate::MAX_TEXT_LEN`]); [`Error::PolicyHashMismatch`] when the policy does not
    /// hash to its hash or is not the record's policy; [`Error::NonceConsumed`],
    /// [`Error::NonceExpired`] or [`Error::NonceUnknown`] when `consume_nonce` cannot be
    /// consumed; [`Error::Banned`] when its node is banned; [`Error::Conflict`] for an
    /// SVID serial issued before;
    /// [`Error::AppendFailed`] when the shared transaction failed to commit;
    /// [`Error::Database`]. On error nothing of this item is written.
    pub async fn append(&self, item: Append) -> Result<AuditRecord> {
        item.check()?;
        let (reply, answer) = oneshot::channel();
        self.appender
            .queue
            .send(Message::Append(Box::new(item), reply))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// The appender: batch after batch until the queue is closed and drained.
async fn run(
    pool: &AnyPool,
    backend: Backend,
    remembered: &Remembered,
    registrations: &RegistrationCache,
    mut queue: mpsc::Receiver<Message>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = Vec::new();
        let mut bytes = 0_usize;
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Append(item, reply) => {
                    bytes = bytes.saturating_add(item.evidence.len());
                    batch.push((item, reply));
                }
                // recv() still yields what was queued before, then None.
                Message::Close => queue.close(),
            }
            next = if batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                queue.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty() {
            for (item, _) in &batch {
                if let Some(nonce) = &item.consume_nonce {
                    remembered.forget(nonce);
                }
            }
            write_and_reply(pool, backend, registrations, batch).await;
        }
    }
}

/// How a batch transaction failed (either way, nothing of it is written).
enum BatchError {
    /// A statement failed: perhaps one item's fault, so each is tried alone.
    Statement(Error),
    /// BEGIN or COMMIT failed: the batch fails as a whole.
    Whole(Error),
}

async fn write_and_reply(
    pool: &AnyPool,
    backend: Backend,
    registrations: &RegistrationCache,
    batch: Vec<(Box<Append>, Reply)>,
) {
    let items: Vec<&Append> = batch.iter().map(|(item, _)| &**item).collect();
    let results = match write_batch(pool, backend, registrations, &items).await {
        Ok(results) => results,
        Err(BatchError::Statement(_)) if items.len() > 1 => {
            let mut results = Vec::with_capacity(items.len());
            for item in &items {
                results.push(
                    match write_batch(pool, backend, registrations, &[item]).await {
                        Ok(mut one) => one.pop().unwrap_or_else(|| Err(closed())),
                        Err(BatchError::Statement(e) | BatchError::Whole(e)) => Err(e),
                    },
                );
            }
            results
        }
        Err(BatchError::Statement(error) | BatchError::Whole(error)) if items.len() == 1 => {
            vec![Err(error)]
        }
        Err(BatchError::Statement(error) | BatchError::Whole(error)) => {
            let detail = error.to_string();
            items
                .iter()
                .map(|_| Err(Error::AppendFailed(detail.clone())))
                .collect()
        }
    };
    for ((_, reply), result) in batch.into_iter().zip(results) {
        // A caller that went away no longer needs its answer; its record stands.
        let _ = reply.send(result);
    }
}

/// Writes `items` in one transaction; returns each item's record or nonce refusal.
async fn write_batch(
    pool: &AnyPool,
    backend: Backend,
    registrations: &RegistrationCache,
    items: &[&Append],
) -> Result<Vec<Result<AuditRecord>>, BatchError> {
    let mut tx = begin_write(pool, backend)
        .await
        .map_err(BatchError::Whole)?;
    let results = append_in(&mut tx, registrations, items)
        .await
        .map_err(BatchError::Statement)?;
    tx.commit()
        .await
        .map_err(|e| BatchError::Whole(Error::Database(e)))?;
    Ok(results)
}

/// Starts a transaction that writes: on SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`), so it never fails half-way on a lock upgrade.
pub(crate) async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> Result<Transaction<'static, Any>> {
    let statement = match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    };
    Ok(pool.begin_with(statement).await?)
}

/// The batch's statements. Row locks are taken in one global order (the registration
/// epoch, shared; challenges by nonce, evidence by hash, policies by hash, then the chain
/// head), so two replicas' batches never deadlock, nor a batch and a registration write
/// (which locks only the epoch, first), and everything that can be written before the
/// head lock is.
async fn append_in(
    tx: &mut Transaction<'static, Any>,
    registrations: &RegistrationCache,
    items: &[&Append],
) -> Result<Vec<Result<AuditRecord>>> {
    // Items refused here (nothing of them is written), by position.
    let mut refusals = banned(tx, items).await?;
    refusals.append(&mut minted_from_old_registrations(tx, registrations, items).await?);
    let mut by_nonce: Vec<(&[u8; 32], usize)> = items
        .iter()
        .enumerate()
        .filter(|(i, _)| !refusals.contains_key(i))
        .filter_map(|(i, item)| Some((item.consume_nonce.as_ref()?, i)))
        .collect();
    by_nonce.sort_unstable();
    if !by_nonce.is_empty() {
        // Consumed as of the batch's latest record: an item whose nonce expired between
        // its own appraisal and that moment is refused (fail closed).
        let at = items
            .iter()
            .map(|item| item.record.recorded_at)
            .fold(UnixTime::from_millis(0), UnixTime::max);
        let consumed = consume_nonces(tx, &by_nonce, at).await?;
        let mut claimed = BTreeSet::new();
        for (nonce, i) in by_nonce {
            // A nonce twice in one batch: the first item (in queue order) consumed it.
            if consumed.contains(nonce) && claimed.insert(*nonce) {
                continue;
            }
            let refusal = if consumed.contains(nonce) {
                Error::NonceConsumed
            } else {
                why_unconsumed(&mut **tx, nonce, at).await?
            };
            let _ = refusals.insert(i, refusal);
        }
    }
    let live = |i: &usize| !refusals.contains_key(i);

    let mut evidence: BTreeMap<String, &[u8]> = BTreeMap::new();
    let mut policies: BTreeMap<&str, &PolicyText> = BTreeMap::new();
    let mut digests = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let digest = sha256_hex(&item.evidence);
        if live(&i) {
            let _ = evidence.entry(digest.clone()).or_insert(&item.evidence);
            if let Some(policy) = &item.policy {
                let _ = policies.entry(&policy.hash_hex).or_insert(policy);
            }
        }
        digests.push(digest);
    }
    let rows = evidence
        .iter()
        .map(|(digest, bytes)| vec![Value::Text(Some(digest.as_str())), Value::Bytes(bytes)])
        .collect();
    insert_rows(
        tx,
        "INSERT INTO evidence (sha256_hex, bytes)",
        "ON CONFLICT (sha256_hex) DO NOTHING",
        rows,
    )
    .await?;
    for policy in policies.values() {
        insert_policy(&mut **tx, policy).await?;
    }

    // Lock the head: every other append, on any replica, waits here until this commits.
    let head = sqlx::query(
        "UPDATE audit_head SET head_seq = head_seq WHERE id = 1 RETURNING head_seq, head_hash",
    )
    .fetch_one(&mut **tx)
    .await?;
    let mut seq: i64 = head.try_get("head_seq")?;
    let mut prev_hash = read_hash(&head, "head_hash")?;
    let mut results = Vec::with_capacity(items.len());
    for ((i, item), digest) in items.iter().enumerate().zip(digests) {
        if let Some(refusal) = refusals.remove(&i) {
            results.push(Err(refusal));
            continue;
        }
        seq = seq.checked_add(1).ok_or(Error::Corrupt {
            what: "audit head",
            detail: "seq overflow".into(),
        })?;
        let record = chain_record(&item.record, seq, prev_hash, digest);
        prev_hash = record.record_hash;
        results.push(Ok(record));
    }
    let written: Vec<(&Append, &AuditRecord)> = items
        .iter()
        .zip(&results)
        .filter_map(|(item, result)| Some((*item, result.as_ref().ok()?)))
        .collect();
    insert_records(tx, &written).await?;
    let _ = sqlx::query("UPDATE audit_head SET head_seq = $1, head_hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(prev_hash.to_vec())
        .execute(&mut **tx)
        .await?;
    Ok(results)
}

/// Consumes every nonce of `by_nonce` (sorted) that is unconsumed and unexpired at `at`,
/// in one conditional statement; returns those it consumed. PostgreSQL locks the rows in
/// the order it scans them (an index scan sorts the `IN` list: nonce order, as before).
/// Should two replicas' batches still deadlock (only replays racing across replicas share
/// nonces), PostgreSQL aborts one, and its items are retried one by one.
async fn consume_nonces(
    tx: &mut Transaction<'static, Any>,
    by_nonce: &[(&[u8; 32], usize)],
    at: UnixTime,
) -> Result<BTreeSet<[u8; 32]>> {
    let anonymous = tx.backend_name() == SQLITE_BACKEND_NAME;
    let sql = format!(
        "UPDATE challenges SET consumed_at = {} \
         WHERE nonce IN ({}) AND consumed_at IS NULL AND expires_at > {} RETURNING nonce",
        if anonymous { "?" } else { "$1" },
        placeholders(anonymous, 2, by_nonce.len()),
        if anonymous { "?" } else { "$1" },
    );
    let at = db_time(at)?;
    let mut query = sqlx::query(&sql).bind(at);
    for (nonce, _) in by_nonce {
        query = query.bind(nonce.to_vec());
    }
    if anonymous {
        query = query.bind(at);
    }
    query
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| read_hash(row, "nonce"))
        .collect()
}

/// The items whose SVID was minted from registrations older than the current epoch:
/// [`Error::RegistrationsChanged`] for each, by position (and the handle's copy of the
/// registrations is dropped). Read before any nonce is consumed, so a refused item's nonce
/// is still there for its second attempt; on PostgreSQL `FOR SHARE` holds off registration
/// writes until this transaction ends.
async fn minted_from_old_registrations(
    tx: &mut Transaction<'static, Any>,
    registrations: &RegistrationCache,
    items: &[&Append],
) -> Result<BTreeMap<usize, Error>> {
    let mut refusals = BTreeMap::new();
    if items.iter().all(|item| item.registrations_epoch.is_none()) {
        return Ok(refusals);
    }
    let for_share = tx.backend_name() != SQLITE_BACKEND_NAME;
    let current = read_epoch(&mut **tx, for_share).await?;
    for (i, item) in items.iter().enumerate() {
        if item
            .registrations_epoch
            .is_some_and(|epoch| epoch != current)
        {
            let _ = refusals.insert(i, Error::RegistrationsChanged);
        }
    }
    if !refusals.is_empty() {
        registrations.forget_before(current);
    }
    Ok(refusals)
}

/// The items that would issue an SVID to a banned node: [`Error::Banned`] for each, by
/// position. Checked in the transaction that writes the SVID rows, so a ban committed
/// before an attestation commits is never missed between a check and the issue.
async fn banned(
    tx: &mut Transaction<'static, Any>,
    items: &[&Append],
) -> Result<BTreeMap<usize, Error>> {
    let nodes: Vec<(usize, &NodeUpsert)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| Some((i, item.node.as_ref()?)))
        .collect();
    let mut refusals = BTreeMap::new();
    if nodes.is_empty() {
        return Ok(refusals);
    }
    let spiffe_ids: Vec<&str> = nodes.iter().map(|(_, n)| n.spiffe_id.as_str()).collect();
    let hardware_ids: Vec<&str> = nodes
        .iter()
        .filter_map(|(_, n)| n.hardware_id.as_deref())
        .collect();
    let anonymous = tx.backend_name() == SQLITE_BACKEND_NAME;
    let bans = bans_on(&mut **tx, anonymous, &spiffe_ids, &hardware_ids).await?;
    for (i, node) in nodes {
        if let Some(ban) = ban_of(&bans, Some(&node.spiffe_id), node.hardware_id.as_deref()) {
            let _ = refusals.insert(i, Error::Banned(ban.clone()));
        }
    }
    Ok(refusals)
}

/// The record `seq` after `prev_hash`, with its hash.
fn chain_record(
    new: &NewAuditRecord,
    seq: i64,
    prev_hash: [u8; 32],
    evidence_sha256: String,
) -> AuditRecord {
    let mut record = AuditRecord {
        seq,
        prev_hash,
        record_hash: GENESIS_HASH,
        recorded_at: new.recorded_at,
        platform: new.platform.clone(),
        node_spiffe_id: new.node_spiffe_id.clone(),
        hardware_id: new.hardware_id.clone(),
        evidence_sha256,
        policy_name: new.policy_name.clone(),
        policy_hash: new.policy_hash.clone(),
        verdict: new.verdict.clone(),
        error_code: new.error_code.clone(),
        error_message: new.error_message.clone(),
        claims_json: new.claims_json.clone(),
        result_json: new.result_json.clone(),
        svid_serial: new.svid_serial.clone(),
    };
    record.record_hash = record.compute_hash();
    record
}

/// The audit records, then the SVID rows (which name their record) and node rows.
async fn insert_records(
    tx: &mut Transaction<'static, Any>,
    written: &[(&Append, &AuditRecord)],
) -> Result<()> {
    let mut records = Vec::with_capacity(written.len());
    let mut svids = Vec::new();
    // One row per node (a statement may not upsert a row twice): its first and last
    // attestation in this batch.
    let mut nodes: BTreeMap<&str, (&NodeUpsert, i64, &AuditRecord)> = BTreeMap::new();
    for &(item, record) in written {
        let at = db_time(record.recorded_at)?;
        records.push(vec![
            Value::Int(record.seq),
            Value::Bytes(&record.prev_hash),
            Value::Bytes(&record.record_hash),
            Value::Int(at),
            Value::Text(Some(record.platform.as_str())),
            Value::Text(record.node_spiffe_id.as_deref()),
            Value::Text(record.hardware_id.as_deref()),
            Value::Text(Some(record.evidence_sha256.as_str())),
            Value::Text(record.policy_name.as_deref()),
            Value::Text(record.policy_hash.as_deref()),
            Value::Text(Some(record.verdict.as_str())),
            Value::Text(record.error_code.as_deref()),
            Value::Text(record.error_message.as_deref()),
            Value::Text(Some(record.claims_json.as_str())),
            Value::Text(Some(record.result_json.as_str())),
            Value::Text(record.svid_serial.as_deref()),
        ]);
        if let Some(svid) = &item.svid {
            svids.push(vec![
                Value::Text(Some(svid.serial_hex.as_str())),
                Value::Text(Some(svid.spiffe_id.as_str())),
                Value::Text(Some(svid.key_thumbprint.as_str())),
                Value::Int(db_time(svid.not_after)?),
                Value::Int(at),
                Value::Int(record.seq),
            ]);
        }
        if let Some(node) = &item.node {
            let first = nodes.get(node.spiffe_id.as_str()).map_or(at, |n| n.1);
            let _ = nodes.insert(&node.spiffe_id, (node, first, record));
        }
    }
    let mut node_rows = Vec::with_capacity(nodes.len());
    for (node, first, record) in nodes.into_values() {
        node_rows.push(vec![
            Value::Text(Some(node.spiffe_id.as_str())),
            Value::Text(Some(record.platform.as_str())),
            Value::Text(node.hardware_id.as_deref()),
            Value::Text(Some(node.policy_name.as_str())),
            Value::Text(Some(node.policy_hash.as_str())),
            Value::Int(first),
            Value::Int(db_time(record.recorded_at)?),
            Value::Text(Some(record.verdict.as_str())),
            Value::Int(record.seq),
        ]);
    }
    insert_rows(
        tx,
        &format!("INSERT INTO audit_log ({RECORD_COLUMNS})"),
        "",
        records,
    )
    .await?;
    insert_rows(
        tx,
        "INSERT INTO issued_svids \
         (serial_hex, spiffe_id, key_thumbprint, not_after, issued_at, audit_seq)",
        "",
        svids,
    )
    .await
    .map_err(|e| match e {
        Error::Database(e) => conflict_as("issued SVID")(e),
        other => other,
    })?;
    insert_rows(
        tx,
        "INSERT INTO nodes (spiffe_id, platform, hardware_id, policy_name, \
         policy_hash, first_attested_at, last_attested_at, last_verdict, \
         last_attestation_seq)",
        "ON CONFLICT (spiffe_id) DO UPDATE SET platform = excluded.platform, \
         hardware_id = excluded.hardware_id, policy_name = excluded.policy_name, \
         policy_hash = excluded.policy_hash, \
         last_attested_at = excluded.last_attested_at, \
         last_verdict = excluded.last_verdict, \
         last_attestation_seq = excluded.last_attestation_seq",
        node_rows,
    )
    .await
}

/// Rows per multi-row statement: few statements per batch (each is a round trip, or a
/// hand-off to SQLite's worker thread), well under both databases' bind limits.
const ROWS_PER_STATEMENT: usize = 64;

/// What sqlx's `Any` driver calls a SQLite connection (`AnyConnection::backend_name`).
const SQLITE_BACKEND_NAME: &str = "SQLite";

/// One bound value of a multi-row statement.
enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    Text(Option<&'a str>),
}

/// Runs `{head} VALUES (…), (…) {tail}` over `rows` (all of one width), in chunks.
async fn insert_rows(
    tx: &mut Transaction<'static, Any>,
    head: &str,
    tail: &str,
    rows: Vec<Vec<Value<'_>>>,
) -> Result<()> {
    // SQLite looks a numbered parameter's name up by a linear scan for every value it
    // binds (quadratic in a statement of hundreds); anonymous `?` parameters, bound in
    // order, need no lookup. PostgreSQL only takes `$n`.
    let anonymous = tx.backend_name() == SQLITE_BACKEND_NAME;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let width = chunk.first().map_or(0, Vec::len);
        let tuples: Vec<String> = (0..chunk.len())
            .map(|row| format!("({})", placeholders(anonymous, row * width + 1, width)))
            .collect();
        let sql = format!("{head} VALUES {} {tail}", tuples.join(", "));
        let mut query = sqlx::query(&sql);
        for value in chunk.iter().flatten() {
            query = match *value {
                Value::Int(v) => query.bind(v),
                Value::Bytes(v) => query.bind(v),
                Value::Text(v) => query.bind(v),
            };
        }
        let _ = query.execute(&mut **tx).await?;
    }
    Ok(())
}
