//! The audit log's records, hash chain, checkpoints and exports, and their verification.
//!
//! Everything here is pure: [`verify`] and [`verify_export`] take records, checkpoints and
//! the trusted signer keys and return a verified summary or the first thing wrong, so
//! `plinth audit verify` and an auditor's offline check run the same code the server does.
//! The crate docs explain the chain and checkpoint formats.

use std::collections::BTreeMap;
use std::fmt;

use plinth_core::{HashAlg, UnixTime};
use plinth_crypto::{Curve, Hasher, KeyKind, PublicKey, SignatureScheme};
use serde::{Deserialize, Serialize};

use crate::CaJournalEntry;
use crate::serde_fmt::{base64, hex32, millis};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: [u8; 32] = [0; 32];
/// Domain separation of a record's body hash.
const BODY_DOMAIN: &[u8] = b"plinth-audit-body-v1\0";
/// Domain separation of a record's chain hash.
const RECORD_DOMAIN: &[u8] = b"plinth-audit-v1\0";
/// Domain separation of a checkpoint's signed message.
const CHECKPOINT_DOMAIN: &[u8] = b"plinth-audit-checkpoint-v1\0";
/// The `format` of an [`AuditExport`].
pub const EXPORT_FORMAT: &str = "plinth-audit-export-v1";
/// The largest export JSON [`AuditExport::from_json`] reads.
pub const MAX_EXPORT_JSON_LEN: usize = 512 << 20;

/// Why an audit log, checkpoint or export does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The first record that breaks the chain.
    #[error("audit record {seq} is broken: {reason}")]
    BrokenRecord {
        /// Its sequence number (or the position where one was expected).
        seq: i64,
        /// What is wrong.
        reason: BrokenReason,
    },
    /// A checkpoint does not match the chain or its signature does not verify.
    #[error("checkpoint at {seq} is bad: {reason}")]
    BadCheckpoint {
        /// The checkpoint's sequence number.
        seq: i64,
        /// What is wrong.
        reason: CheckpointFailure,
    },
    /// A checkpoint was signed by a key not among the trusted signers.
    #[error("checkpoint at {seq} was signed by an untrusted key")]
    UntrustedSigner {
        /// The checkpoint's sequence number.
        seq: i64,
    },
    /// An exported record lies after the last checkpoint of the export: nothing signed
    /// vouches for it.
    #[error("exported record {seq} is not covered by a signed checkpoint")]
    NotCovered {
        /// The record's sequence number.
        seq: i64,
    },
    /// The evidence an exported record names is not in the export.
    #[error("evidence of record {seq} is missing from the export")]
    EvidenceMissing {
        /// The record's sequence number.
        seq: i64,
    },
    /// The exported evidence does not hash to the record's `evidence_sha256`.
    #[error("evidence of record {seq} does not match its digest")]
    EvidenceMismatch {
        /// The record's sequence number.
        seq: i64,
    },
    /// The policy an exported record names is not in the export.
    #[error("policy of record {seq} is missing from the export")]
    PolicyMissing {
        /// The record's sequence number.
        seq: i64,
    },
    /// The exported policy text does not hash to the record's `policy_hash`, or its name
    /// differs.
    #[error("policy of record {seq} does not match its hash")]
    PolicyMismatch {
        /// The record's sequence number.
        seq: i64,
    },
    /// The export is not one this version reads.
    #[error("malformed export: {0}")]
    Malformed(String),
}

/// Why a record breaks the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokenReason {
    /// The record's seq is not the one that follows its predecessor (a gap, a duplicate
    /// or a reordering).
    SeqOutOfOrder {
        /// The seq that was expected here.
        expected: i64,
    },
    /// `prev_hash` is not the hash of the record before.
    PrevHashMismatch,
    /// `record_hash` is not the hash of this record's contents.
    RecordHashMismatch,
    /// The chain stops before the head the database records (records were removed), or
    /// its last hash is not that head.
    HeadMismatch,
}

impl fmt::Display for BrokenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SeqOutOfOrder { expected } => write!(f, "out of order (expected seq {expected})"),
            Self::PrevHashMismatch => f.write_str("prev_hash is not the previous record's hash"),
            Self::RecordHashMismatch => f.write_str("contents do not hash to record_hash"),
            Self::HeadMismatch => f.write_str("the chain does not end at the recorded head"),
        }
    }
}

/// Why a checkpoint is bad.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointFailure {
    /// Its head is not the recomputed chain hash at its seq.
    HeadMismatch,
    /// Its signature does not verify.
    BadSignature,
    /// Its algorithm is not ES256 or ES384.
    UnknownAlgorithm(String),
    /// Its signer key cannot be decoded, or is not on the algorithm's curve.
    KeyRejected,
    /// It names a seq the chain does not reach (records were removed from the end), or
    /// one outside an export's span.
    BeyondChain,
    /// Two checkpoints name the same seq.
    Duplicate,
}

impl fmt::Display for CheckpointFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeadMismatch => f.write_str("head does not match the chain"),
            Self::BadSignature => f.write_str("signature does not verify"),
            Self::UnknownAlgorithm(alg) => write!(f, "unknown algorithm {alg:?}"),
            Self::KeyRejected => f.write_str("signer key rejected"),
            Self::BeyondChain => f.write_str("the chain does not reach it"),
            Self::Duplicate => f.write_str("duplicate checkpoint"),
        }
    }
}

/// One appended appraisal, as stored and hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// `record_hash` of the previous record ([`GENESIS_HASH`] for seq 1).
    #[serde(with = "hex32")]
    pub prev_hash: [u8; 32],
    /// This record's chain hash ([`AuditRecord::compute_hash`]).
    #[serde(with = "hex32")]
    pub record_hash: [u8; 32],
    /// When the appraisal finished.
    #[serde(with = "millis")]
    pub recorded_at: UnixTime,
    /// `tpm`, `nitro` or `snp`.
    pub platform: String,
    /// The node's SPIFFE ID, when one was chosen.
    pub node_spiffe_id: Option<String>,
    /// The hardware identity (EK hash, chip ID, …), when known.
    pub hardware_id: Option<String>,
    /// Lower-case hex SHA-256 of the evidence bytes.
    pub evidence_sha256: String,
    /// The policy applied.
    pub policy_name: Option<String>,
    /// Lower-case hex SHA-256 of the policy text applied.
    pub policy_hash: Option<String>,
    /// `affirming`, `warning`, `contraindicated` or `error`.
    pub verdict: String,
    /// A stable error code, on failure.
    pub error_code: Option<String>,
    /// The error message, on failure.
    pub error_message: Option<String>,
    /// The verified claims, as JSON text (stored and hashed exactly as given).
    pub claims_json: String,
    /// The result (SVID serial, SPIFFE ID, EAR token, …), as JSON text.
    pub result_json: String,
    /// The serial of the SVID issued, if any.
    pub svid_serial: Option<String>,
}

impl AuditRecord {
    /// SHA-256 over the canonical encoding of every field but the two hashes.
    pub fn body_hash(&self) -> [u8; 32] {
        let mut h = Hasher::new(HashAlg::Sha256);
        h.update(BODY_DOMAIN);
        h.update(&self.seq.to_be_bytes());
        h.update(&self.recorded_at.as_millis().to_be_bytes());
        put_str(&mut h, &self.platform);
        put_opt(&mut h, self.node_spiffe_id.as_deref());
        put_opt(&mut h, self.hardware_id.as_deref());
        put_str(&mut h, &self.evidence_sha256);
        put_opt(&mut h, self.policy_name.as_deref());
        put_opt(&mut h, self.policy_hash.as_deref());
        put_str(&mut h, &self.verdict);
        put_opt(&mut h, self.error_code.as_deref());
        put_opt(&mut h, self.error_message.as_deref());
        put_str(&mut h, &self.claims_json);
        put_str(&mut h, &self.result_json);
        put_opt(&mut h, self.svid_serial.as_deref());
        finish32(h)
    }

    /// The chain hash this record should have: over its `prev_hash` and body.
    pub fn compute_hash(&self) -> [u8; 32] {
        chain_hash(&self.prev_hash, &self.body_hash())
    }
}

/// `SHA-256("plinth-audit-v1\0" ‖ prev ‖ body_hash)`.
pub fn chain_hash(prev: &[u8; 32], body_hash: &[u8; 32]) -> [u8; 32] {
    let mut h = Hasher::new(HashAlg::Sha256);
    h.update(RECORD_DOMAIN);
    h.update(prev);
    h.update(body_hash);
    finish32(h)
}

fn put_str(h: &mut Hasher, s: &str) {
    // usize is at most 64 bits on every target Rust supports with std.
    let len = u64::try_from(s.len()).unwrap_or(u64::MAX);
    h.update(&len.to_be_bytes());
    h.update(s.as_bytes());
}

fn put_opt(h: &mut Hasher, s: Option<&str>) {
    match s {
        None => h.update(&[0]),
        Some(s) => {
            h.update(&[1]);
            put_str(h, s);
        }
    }
}

fn finish32(h: Hasher) -> [u8; 32] {
    let digest = h.finish();
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_bytes());
    out
}

/// A signed statement "the chain's hash at `seq` is `head_hash`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The seq of the last record covered.
    pub seq: i64,
    /// That record's `record_hash`.
    #[serde(with = "hex32")]
    pub head_hash: [u8; 32],
    /// When it was signed.
    #[serde(with = "millis")]
    pub signed_at: UnixTime,
    /// The signer's SubjectPublicKeyInfo, DER.
    #[serde(with = "base64")]
    pub signer_spki_der: Vec<u8>,
    /// ECDSA signature over [`checkpoint_message`], fixed-length `r ‖ s`.
    #[serde(with = "base64")]
    pub signature: Vec<u8>,
    /// `ES256` (P-256, SHA-256) or `ES384` (P-384, SHA-384).
    pub algorithm: String,
}

/// The bytes a checkpoint signs:
/// `"plinth-audit-checkpoint-v1\0" ‖ seq (i64 BE) ‖ head_hash ‖ signed_at (u64 ms BE)`.
pub fn checkpoint_message(seq: i64, head_hash: &[u8; 32], signed_at: UnixTime) -> Vec<u8> {
    let mut message = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 8 + 32 + 8);
    message.extend_from_slice(CHECKPOINT_DOMAIN);
    message.extend_from_slice(&seq.to_be_bytes());
    message.extend_from_slice(head_hash);
    message.extend_from_slice(&signed_at.as_millis().to_be_bytes());
    message
}

impl Checkpoint {
    /// Checks the signature with the key the checkpoint names, and nothing else: not
    /// whether that key is trusted, not the head. [`verify`] does all three.
    ///
    /// # Errors
    /// [`AuditError::BadCheckpoint`].
    pub fn verify_signature(&self) -> Result<(), AuditError> {
        let bad = |reason| AuditError::BadCheckpoint {
            seq: self.seq,
            reason,
        };
        let (hash, curve) = match self.algorithm.as_str() {
            "ES256" => (HashAlg::Sha256, Curve::P256),
            "ES384" => (HashAlg::Sha384, Curve::P384),
            other => return Err(bad(CheckpointFailure::UnknownAlgorithm(other.to_owned()))),
        };
        let key = PublicKey::from_spki_der(&self.signer_spki_der)
            .map_err(|_| bad(CheckpointFailure::KeyRejected))?;
        if key.kind() != KeyKind::Ec(curve) {
            return Err(bad(CheckpointFailure::KeyRejected));
        }
        let message = checkpoint_message(self.seq, &self.head_hash, self.signed_at);
        key.verify(SignatureScheme::EcdsaFixed(hash), &message, &self.signature)
            .map_err(|_| bad(CheckpointFailure::BadSignature))
    }

    /// Trust, signature, then head against the recomputed `computed_head`.
    fn verify_against(
        &self,
        computed_head: &[u8; 32],
        trusted: &[Vec<u8>],
    ) -> Result<(), AuditError> {
        if !trusted.contains(&self.signer_spki_der) {
            return Err(AuditError::UntrustedSigner { seq: self.seq });
        }
        self.verify_signature()?;
        if self.head_hash != *computed_head {
            return Err(AuditError::BadCheckpoint {
                seq: self.seq,
                reason: CheckpointFailure::HeadMismatch,
            });
        }
        Ok(())
    }
}

/// A chain that recomputed, with every checkpoint verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAudit {
    records: u64,
    head_seq: i64,
    head_hash: [u8; 32],
    last_checkpoint_seq: Option<i64>,
}

impl VerifiedAudit {
    /// How many records were verified.
    pub const fn records(&self) -> u64 {
        self.records
    }
    /// The seq of the last record (0 for an empty log).
    pub const fn head_seq(&self) -> i64 {
        self.head_seq
    }
    /// The recomputed hash of the last record.
    pub const fn head_hash(&self) -> &[u8; 32] {
        &self.head_hash
    }
    /// The seq of the last verified checkpoint, if any.
    pub const fn last_checkpoint_seq(&self) -> Option<i64> {
        self.last_checkpoint_seq
    }
    /// How many records at the end no checkpoint covers yet.
    pub fn uncovered(&self) -> u64 {
        let covered = self.last_checkpoint_seq.unwrap_or(0);
        u64::try_from(self.head_seq.saturating_sub(covered)).unwrap_or(0)
    }
}

/// Verifies a chain record by record, checking each checkpoint when the chain reaches
/// its seq, so that the error reported is the first thing wrong in chain order. Used by
/// [`verify`], by [`crate::Store::verify_audit`] (which streams pages from the database)
/// and by [`verify_export`].
#[derive(Debug)]
pub struct ChainVerifier<'t> {
    trusted: &'t [Vec<u8>],
    pending: BTreeMap<i64, Checkpoint>,
    next_seq: i64,
    prev: [u8; 32],
    records: u64,
    last_checkpoint_seq: Option<i64>,
}

impl<'t> ChainVerifier<'t> {
    /// A verifier for a chain starting at seq 1, with these checkpoints and signer keys.
    ///
    /// # Errors
    /// [`AuditError::BadCheckpoint`] with [`CheckpointFailure::Duplicate`] when two
    /// checkpoints name one seq, [`CheckpointFailure::BeyondChain`] for a seq below 1.
    pub fn new(checkpoints: &[Checkpoint], trusted: &'t [Vec<u8>]) -> Result<Self, AuditError> {
        Self::starting_after(0, GENESIS_HASH, checkpoints, trusted)
    }

    fn starting_after(
        seq: i64,
        head: [u8; 32],
        checkpoints: &[Checkpoint],
        trusted: &'t [Vec<u8>],
    ) -> Result<Self, AuditError> {
        let mut pending = BTreeMap::new();
        for checkpoint in checkpoints {
            if checkpoint.seq <= seq {
                return Err(AuditError::BadCheckpoint {
                    seq: checkpoint.seq,
                    reason: CheckpointFailure::BeyondChain,
                });
            }
            if pending.insert(checkpoint.seq, checkpoint.clone()).is_some() {
                return Err(AuditError::BadCheckpoint {
                    seq: checkpoint.seq,
                    reason: CheckpointFailure::Duplicate,
                });
            }
        }
        Ok(Self {
            trusted,
            pending,
            next_seq: seq.saturating_add(1),
            prev: head,
            records: 0,
            last_checkpoint_seq: None,
        })
    }

    /// Checks the next record: its seq, its link to the previous one and its own hash.
    ///
    /// # Errors
    /// [`AuditError::BrokenRecord`], or a checkpoint error at this seq.
    pub fn push(&mut self, record: &AuditRecord) -> Result<(), AuditError> {
        self.check_seq(record.seq)?;
        let broken = |reason| AuditError::BrokenRecord {
            seq: record.seq,
            reason,
        };
        if record.prev_hash != self.prev {
            return Err(broken(BrokenReason::PrevHashMismatch));
        }
        let hash = chain_hash(&self.prev, &record.body_hash());
        if hash != record.record_hash {
            return Err(broken(BrokenReason::RecordHashMismatch));
        }
        self.advance(hash)
    }

    /// Continues the chain over a record seen only by its body hash.
    fn push_stub(&mut self, seq: i64, body_hash: &[u8; 32]) -> Result<(), AuditError> {
        self.check_seq(seq)?;
        let hash = chain_hash(&self.prev, body_hash);
        self.advance(hash)
    }

    fn check_seq(&self, seq: i64) -> Result<(), AuditError> {
        if seq == self.next_seq {
            Ok(())
        } else {
            Err(AuditError::BrokenRecord {
                seq,
                reason: BrokenReason::SeqOutOfOrder {
                    expected: self.next_seq,
                },
            })
        }
    }

    fn advance(&mut self, hash: [u8; 32]) -> Result<(), AuditError> {
        let seq = self.next_seq;
        if let Some(checkpoint) = self.pending.remove(&seq) {
            checkpoint.verify_against(&hash, self.trusted)?;
            self.last_checkpoint_seq = Some(seq);
        }
        self.prev = hash;
        self.records = self.records.saturating_add(1);
        self.next_seq = seq.saturating_add(1);
        Ok(())
    }

    /// The seq of the last record pushed (the start position before any).
    pub const fn head_seq(&self) -> i64 {
        self.next_seq.saturating_sub(1)
    }

    /// The hash of the last record pushed.
    pub const fn head_hash(&self) -> &[u8; 32] {
        &self.prev
    }

    /// Ends the walk.
    ///
    /// # Errors
    /// [`AuditError::BadCheckpoint`] with [`CheckpointFailure::BeyondChain`] when a
    /// checkpoint names a seq the chain never reached: records were cut off the end.
    pub fn finish(self) -> Result<VerifiedAudit, AuditError> {
        if let Some((&seq, _)) = self.pending.first_key_value() {
            return Err(AuditError::BadCheckpoint {
                seq,
                reason: CheckpointFailure::BeyondChain,
            });
        }
        Ok(VerifiedAudit {
            records: self.records,
            head_seq: self.head_seq(),
            head_hash: self.prev,
            last_checkpoint_seq: self.last_checkpoint_seq,
        })
    }
}

/// Recomputes the whole chain (`records` in seq order from 1) and checks every checkpoint
/// against it and `trusted_signers` (SubjectPublicKeyInfo DER).
///
/// # Errors
/// The first [`AuditError`] in chain order.
pub fn verify(
    records: &[AuditRecord],
    checkpoints: &[Checkpoint],
    trusted_signers: &[Vec<u8>],
) -> Result<VerifiedAudit, AuditError> {
    let mut verifier = ChainVerifier::new(checkpoints, trusted_signers)?;
    for record in records {
        verifier.push(record)?;
    }
    verifier.finish()
}

/// One position of an exported chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExportEntry {
    /// A selected record, in full: its hash is recomputed from its contents.
    Record(Box<AuditRecord>),
    /// A record not selected (another node's, or outside the time range): only its body
    /// hash, enough to carry the chain hash forward, and nothing about its contents.
    Stub {
        /// Its seq.
        seq: i64,
        /// [`AuditRecord::body_hash`].
        #[serde(with = "hex32")]
        body_hash: [u8; 32],
    },
}

impl ExportEntry {
    /// The entry's seq.
    pub const fn seq(&self) -> i64 {
        match self {
            Self::Record(record) => record.seq,
            Self::Stub { seq, .. } => *seq,
        }
    }
}

/// A policy text in an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportPolicy {
    /// The policy's name.
    pub name: String,
    /// The exact policy text.
    pub text: String,
}

/// What `plinth audit export` writes: a self-contained bundle an auditor re-verifies
/// offline with [`verify_export`].
///
/// The chain runs from just after `anchor` (a signed checkpoint, or the genesis when
/// `None`) to the last checkpoint in `checkpoints`. Selected records are in full; every
/// other record in that span is a stub carrying only its body hash. Because the verifier
/// recomputes every chain hash itself, from full contents or from a stub's body hash, a
/// stub cannot stand in for a changed full record: changing a record changes its hash and
/// every hash after it, up to the signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditExport {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// The node the export was restricted to.
    pub node: Option<String>,
    /// The earliest `recorded_at` selected.
    pub since: Option<u64>,
    /// The checkpoint the chain continues from (`None`: from the first record).
    pub anchor: Option<Checkpoint>,
    /// The chain, in seq order, from `anchor.seq + 1`.
    pub chain: Vec<ExportEntry>,
    /// The checkpoints inside the span; the last one is at the last entry.
    pub checkpoints: Vec<Checkpoint>,
    /// Evidence of the selected records, by lower-case hex SHA-256, base64.
    pub evidence: BTreeMap<String, String>,
    /// Policy texts of the selected records, by lower-case hex SHA-256.
    pub policies: BTreeMap<String, ExportPolicy>,
    /// The CA journal: certificates and JWT public keys of every authority.
    pub authorities: Vec<CaJournalEntry>,
    /// How many matching records were left out because no checkpoint covers them yet
    /// (sign a checkpoint before exporting to include them).
    pub pending_after_checkpoint: u64,
}

impl AuditExport {
    /// Parses an export's JSON, refusing more than [`MAX_EXPORT_JSON_LEN`] bytes.
    ///
    /// # Errors
    /// [`AuditError::Malformed`].
    pub fn from_json(json: &[u8]) -> Result<Self, AuditError> {
        if json.len() > MAX_EXPORT_JSON_LEN {
            return Err(AuditError::Malformed(format!(
                "{} bytes, more than {MAX_EXPORT_JSON_LEN}",
                json.len()
            )));
        }
        serde_json::from_slice(json).map_err(|e| AuditError::Malformed(e.to_string()))
    }

    /// The export as pretty-printed JSON.
    ///
    /// # Errors
    /// [`AuditError::Malformed`] if serialization fails (it does not for these types).
    pub fn to_json(&self) -> Result<Vec<u8>, AuditError> {
        serde_json::to_vec_pretty(self).map_err(|e| AuditError::Malformed(e.to_string()))
    }
}

/// An export whose chain recomputed up to a trusted checkpoint and whose every selected
/// record has its evidence and policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedExport {
    records: Vec<i64>,
    stubs: u64,
    first_seq: i64,
    checkpoint_seq: Option<i64>,
}

impl VerifiedExport {
    /// The seqs of the full records verified.
    pub fn records(&self) -> &[i64] {
        &self.records
    }
    /// How many stubs carried the chain.
    pub const fn stubs(&self) -> u64 {
        self.stubs
    }
    /// The first seq of the span.
    pub const fn first_seq(&self) -> i64 {
        self.first_seq
    }
    /// The seq of the last checkpoint verified (`None` for an empty export).
    pub const fn checkpoint_seq(&self) -> Option<i64> {
        self.checkpoint_seq
    }
}

/// Re-verifies an export offline: the anchor and every checkpoint against
/// `trusted_signers`, the chain recomputed over full records and stubs, every full record
/// covered by a checkpoint, each full record's evidence hashing to its
/// `evidence_sha256` and its policy text to its `policy_hash`.
///
/// # Errors
/// The first [`AuditError`] found, in chain order, then evidence and policies.
pub fn verify_export(
    export: &AuditExport,
    trusted_signers: &[Vec<u8>],
) -> Result<VerifiedExport, AuditError> {
    if export.format != EXPORT_FORMAT {
        return Err(AuditError::Malformed(format!(
            "format {:?}, expected {EXPORT_FORMAT:?}",
            export.format
        )));
    }
    let (start_seq, start_hash) = match &export.anchor {
        Some(anchor) => {
            // The anchor's head is taken as given once its signature is trusted.
            anchor.verify_against(&anchor.head_hash, trusted_signers)?;
            (anchor.seq, anchor.head_hash)
        }
        None => (0, GENESIS_HASH),
    };
    let mut verifier =
        ChainVerifier::starting_after(start_seq, start_hash, &export.checkpoints, trusted_signers)?;
    let mut records = Vec::new();
    let mut stubs = 0_u64;
    for entry in &export.chain {
        match entry {
            ExportEntry::Record(record) => {
                verifier.push(record)?;
                records.push(record);
            }
            ExportEntry::Stub { seq, body_hash } => {
                verifier.push_stub(*seq, body_hash)?;
                stubs = stubs.saturating_add(1);
            }
        }
    }
    let walked = verifier.finish()?;
    let covered = walked.last_checkpoint_seq().unwrap_or(start_seq);
    if let Some(record) = records.iter().find(|r| r.seq > covered) {
        return Err(AuditError::NotCovered { seq: record.seq });
    }
    for record in &records {
        check_exported_evidence(export, record)?;
        check_exported_policy(export, record)?;
    }
    Ok(VerifiedExport {
        records: records.iter().map(|r| r.seq).collect(),
        stubs,
        first_seq: start_seq.saturating_add(1),
        checkpoint_seq: walked.last_checkpoint_seq(),
    })
}

fn check_exported_evidence(export: &AuditExport, record: &AuditRecord) -> Result<(), AuditError> {
    use ::base64::Engine as _;
    let seq = record.seq;
    let encoded = export
        .evidence
        .get(&record.evidence_sha256)
        .ok_or(AuditError::EvidenceMissing { seq })?;
    let bytes = ::base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| AuditError::EvidenceMismatch { seq })?;
    if crate::sha256_hex(&bytes) == record.evidence_sha256 {
        Ok(())
    } else {
        Err(AuditError::EvidenceMismatch { seq })
    }
}

fn check_exported_policy(export: &AuditExport, record: &AuditRecord) -> Result<(), AuditError> {
    let seq = record.seq;
    let Some(hash) = &record.policy_hash else {
        return Ok(());
    };
    let policy = export
        .policies
        .get(hash)
        .ok_or(AuditError::PolicyMissing { seq })?;
    let name_matches = record
        .policy_name
        .as_ref()
        .is_none_or(|name| *name == policy.name);
    if name_matches && crate::sha256_hex(policy.text.as_bytes()) == *hash {
        Ok(())
    } else {
        Err(AuditError::PolicyMismatch { seq })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: i64, prev: [u8; 32]) -> AuditRecord {
        let mut r = AuditRecord {
            seq,
            prev_hash: prev,
            record_hash: [0; 32],
            recorded_at: UnixTime::from_millis(1_700_000_000_000),
            platform: "tpm".into(),
            node_spiffe_id: Some("spiffe://example.org/node".into()),
            hardware_id: None,
            evidence_sha256: crate::sha256_hex(b"evidence"),
            policy_name: None,
            policy_hash: None,
            verdict: "affirming".into(),
            error_code: None,
            error_message: None,
            claims_json: "{}".into(),
            result_json: "{}".into(),
            svid_serial: None,
        };
        r.record_hash = r.compute_hash();
        r
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH;
        (1..=n)
            .map(|seq| {
                let r = record(seq, prev);
                prev = r.record_hash;
                r
            })
            .collect()
    }

    #[test]
    fn none_and_empty_string_hash_differently() {
        let mut a = record(1, GENESIS_HASH);
        a.hardware_id = Some(String::new());
        let b = record(1, GENESIS_HASH);
        assert_ne!(a.body_hash(), b.body_hash());
        // Moving bytes between adjacent fields changes the hash (length prefixes).
        let mut c = record(1, GENESIS_HASH);
        c.claims_json = "{}{".into();
        c.result_json = "}".into();
        assert_ne!(c.body_hash(), b.body_hash());
    }

    #[test]
    fn verifies_a_chain_without_checkpoints() {
        let records = chain(5);
        let verified = verify(&records, &[], &[]).unwrap();
        assert_eq!(verified.records(), 5);
        assert_eq!(verified.head_seq(), 5);
        assert_eq!(verified.uncovered(), 5);
        assert_eq!(verified.last_checkpoint_seq(), None);
    }

    #[test]
    fn rejects_a_gap_with_broken_record() {
        let mut records = chain(4);
        let _removed = records.remove(2);
        assert_eq!(
            verify(&records, &[], &[]),
            Err(AuditError::BrokenRecord {
                seq: 4,
                reason: BrokenReason::SeqOutOfOrder { expected: 3 }
            })
        );
    }

    #[test]
    fn rejects_a_changed_field_with_broken_record() {
        let mut records = chain(3);
        records[1].verdict = "warning".into();
        assert_eq!(
            verify(&records, &[], &[]),
            Err(AuditError::BrokenRecord {
                seq: 2,
                reason: BrokenReason::RecordHashMismatch
            })
        );
        // Re-hashing the changed record breaks the link to the next one instead.
        records[1].record_hash = records[1].compute_hash();
        assert_eq!(
            verify(&records, &[], &[]),
            Err(AuditError::BrokenRecord {
                seq: 3,
                reason: BrokenReason::PrevHashMismatch
            })
        );
    }

    #[test]
    fn checkpoint_message_layout() {
        let message = checkpoint_message(2, &[7; 32], UnixTime::from_millis(3));
        assert_eq!(message.len(), CHECKPOINT_DOMAIN.len() + 48);
        assert!(message.starts_with(b"plinth-audit-checkpoint-v1\0\0\0\0\0\0\0\0\x02\x07"));
        assert!(message.ends_with(&[7, 0, 0, 0, 0, 0, 0, 0, 3]));
    }
}
