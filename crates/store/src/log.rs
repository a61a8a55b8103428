//! Appending to the audit log, checkpoints, and reading the log back.

use std::collections::{BTreeMap, BTreeSet};

use plinth_core::UnixTime;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::append::Append;
use crate::audit::{
    AuditExport, AuditRecord, ChainVerifier, Checkpoint, EXPORT_FORMAT, ExportEntry, ExportPolicy,
    VerifiedAudit,
};
use crate::{
    Error, MAX_PAGE, MAX_TEXT_LEN, PolicyText, Result, Store, check_len, conflict_as, db_time,
    read_hash, read_time, to_hash,
};

/// The most full records one export holds.
pub const MAX_EXPORT_RECORDS: usize = 10_000;
/// The longest chain span (full records and stubs) one export covers.
pub const MAX_EXPORT_SPAN: i64 = 1_000_000;
/// The longest short text field (platform, IDs, verdict, codes, serials).
const MAX_SHORT_LEN: usize = 4096;

/// An appraisal to append: every [`AuditRecord`] field the caller decides. The store adds
/// seq, hashes and the evidence digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditRecord {
    /// When the appraisal finished.
    pub recorded_at: UnixTime,
    /// `tpm`, `nitro` or `snp`.
    pub platform: String,
    /// The node's SPIFFE ID, when one was chosen.
    pub node_spiffe_id: Option<String>,
    /// The hardware identity, when known.
    pub hardware_id: Option<String>,
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
    /// The verified claims as JSON text (stored and hashed exactly as given).
    pub claims_json: String,
    /// The result (SVID serial, SPIFFE ID, EAR token, …) as JSON text.
    pub result_json: String,
    /// The serial of the SVID issued, if any (lower-case hex).
    pub svid_serial: Option<String>,
}

/// The SVID issued by an attestation; `issued_at` and `audit_seq` come from its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIssuedSvid {
    /// The certificate serial number, lower-case hex.
    pub serial_hex: String,
    /// The SPIFFE ID it names.
    pub spiffe_id: String,
    /// base64url (no padding) SHA-256 of the key's SubjectPublicKeyInfo.
    pub key_thumbprint: String,
    /// When it expires.
    pub not_after: UnixTime,
}

/// The node row an attestation writes; platform, verdict, time and seq come from its
/// record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUpsert {
    /// The node's SPIFFE ID.
    pub spiffe_id: String,
    /// The hardware identity, when known.
    pub hardware_id: Option<String>,
    /// The policy applied.
    pub policy_name: String,
    /// Lower-case hex SHA-256 of its text.
    pub policy_hash: String,
}

/// The chain head: the last record's seq and hash (0 and
/// [`crate::audit::GENESIS_HASH`] when empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// The last seq.
    pub seq: i64,
    /// Its record hash.
    pub hash: [u8; 32],
}

pub(crate) const RECORD_COLUMNS: &str = "seq, prev_hash, record_hash, recorded_at, platform, \
    node_spiffe_id, hardware_id, evidence_sha256, policy_name, policy_hash, verdict, \
    error_code, error_message, claims_json, result_json, svid_serial";
const CHECKPOINT_COLUMNS: &str = "seq, head_hash, signed_at, signer_spki_der, signature, algorithm";

impl NewAuditRecord {
    /// The budgets of its fields.
    pub(crate) fn check(&self) -> Result<()> {
        for short in [
            Some(&self.platform),
            self.node_spiffe_id.as_ref(),
            self.hardware_id.as_ref(),
            self.policy_name.as_ref(),
            self.policy_hash.as_ref(),
            Some(&self.verdict),
            self.error_code.as_ref(),
            self.svid_serial.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            check_len("audit field", short.len(), MAX_SHORT_LEN)?;
        }
        for (what, text) in [
            ("error message", self.error_message.as_deref().unwrap_or("")),
            ("claims", self.claims_json.as_str()),
            ("result", self.result_json.as_str()),
        ] {
            check_len(what, text.len(), MAX_TEXT_LEN)?;
        }
        Ok(())
    }
}

impl Store {
    /// Appends one appraisal without consuming a nonce: [`Store::append`] with borrowed
    /// parts.
    ///
    /// # Errors
    /// As [`Store::append`].
    pub async fn record_attestation(
        &self,
        new: &NewAuditRecord,
        svid: Option<&NewIssuedSvid>,
        node: Option<&NodeUpsert>,
        evidence: &[u8],
        policy: Option<&PolicyText>,
    ) -> Result<AuditRecord> {
        self.append(Append {
            record: new.clone(),
            svid: svid.cloned(),
            node: node.cloned(),
            evidence: evidence.to_vec(),
            policy: policy.cloned(),
            consume_nonce: None,
            registrations_epoch: None,
        })
        .await
    }

    /// The chain head as the database records it.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn head(&self) -> Result<ChainHead> {
        let row = sqlx::query("SELECT head_seq, head_hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(ChainHead {
            seq: row.try_get("head_seq")?,
            hash: read_hash(&row, "head_hash")?,
        })
    }

    /// Stores a checkpoint the server signed. It must name a record that exists, with
    /// that record's hash, and its signature must verify with the key it names (whether
    /// that key is trusted is for [`crate::audit::verify`] to say).
    ///
    /// # Errors
    /// [`Error::NotFound`] for a seq with no record; [`Error::Audit`] with
    /// [`crate::audit::AuditError::BadCheckpoint`] for a wrong head or signature;
    /// [`Error::Conflict`] if a checkpoint at that seq exists.
    pub async fn add_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        checkpoint.verify_signature()?;
        let record = self.audit_record(checkpoint.seq).await?;
        if record.record_hash != checkpoint.head_hash {
            return Err(crate::audit::AuditError::BadCheckpoint {
                seq: checkpoint.seq,
                reason: crate::audit::CheckpointFailure::HeadMismatch,
            }
            .into());
        }
        let _ = sqlx::query(&format!(
            "INSERT INTO audit_checkpoints ({CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(checkpoint.seq)
        .bind(checkpoint.head_hash.to_vec())
        .bind(db_time(checkpoint.signed_at)?)
        .bind(&checkpoint.signer_spki_der)
        .bind(&checkpoint.signature)
        .bind(&checkpoint.algorithm)
        .execute(&self.pool)
        .await
        .map_err(conflict_as("checkpoint"))?;
        Ok(())
    }

    /// Every checkpoint, by seq.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn list_checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    /// The checkpoint with the highest seq, if any.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>> {
        let row = sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(checkpoint_from_row).transpose()
    }

    /// One audit record.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn audit_record(&self, seq: i64) -> Result<AuditRecord> {
        let row = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM audit_log WHERE seq = $1"
        ))
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "audit record",
            key: seq.to_string(),
        })?;
        record_from_row(&row)
    }

    /// Up to `limit` (at most [`MAX_PAGE`]) records with seq greater than `after_seq`, in
    /// seq order.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    pub async fn audit_records(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after_seq)
        .bind(i64::from(limit.min(MAX_PAGE)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Recomputes the whole chain from the database, page by page, checks every
    /// checkpoint against `trusted_signers` (SubjectPublicKeyInfo DER), and checks that
    /// the chain ends at the recorded head (so records cut off the end are noticed even
    /// after the last checkpoint).
    ///
    /// # Errors
    /// [`Error::Audit`] with the first break; [`Error::Database`], [`Error::Corrupt`].
    pub async fn verify_audit(&self, trusted_signers: &[Vec<u8>]) -> Result<VerifiedAudit> {
        // Checkpoints first, then the head: every checkpoint names a record at or before
        // the head read after it. Records appended meanwhile are left for the next run.
        let checkpoints = self.list_checkpoints().await?;
        let head = self.head().await?;
        let mut verifier = ChainVerifier::new(&checkpoints, trusted_signers)?;
        while verifier.head_seq() < head.seq {
            let before = verifier.head_seq();
            let page = self.audit_records(before, MAX_PAGE).await?;
            for record in page.iter().filter(|r| r.seq <= head.seq) {
                verifier.push(record)?;
            }
            if verifier.head_seq() == before {
                break; // nothing more up to the head: records are missing
            }
        }
        if head.seq != verifier.head_seq() || head.hash != *verifier.head_hash() {
            return Err(crate::audit::AuditError::BrokenRecord {
                seq: verifier.head_seq().saturating_add(1).min(head.seq),
                reason: crate::audit::BrokenReason::HeadMismatch,
            }
            .into());
        }
        Ok(verifier.finish()?)
    }

    /// Builds an export of the records of `node` (all nodes when `None`) recorded at or
    /// after `since`, for an auditor to re-verify offline with
    /// [`crate::audit::verify_export`]. Only records up to the latest checkpoint are
    /// exported (sign one first to include the newest).
    ///
    /// The chain starts after the last checkpoint before the first selected record (or
    /// at seq 1) and ends at the first checkpoint at or after the last one; records in
    /// between that are not selected appear as stubs.
    ///
    /// # Errors
    /// [`Error::TooLarge`] past [`MAX_EXPORT_RECORDS`] selected records or a span longer
    /// than [`MAX_EXPORT_SPAN`]; [`Error::Database`], [`Error::Corrupt`].
    pub async fn export(&self, node: Option<&str>, since: Option<UnixTime>) -> Result<AuditExport> {
        let mut export = AuditExport {
            format: EXPORT_FORMAT.to_owned(),
            node: node.map(str::to_owned),
            since: since.map(UnixTime::as_millis),
            anchor: None,
            chain: Vec::new(),
            checkpoints: Vec::new(),
            evidence: BTreeMap::new(),
            policies: BTreeMap::new(),
            authorities: self.list_authorities().await?,
            pending_after_checkpoint: 0,
        };
        let since_ms = since.map(db_time).transpose()?.unwrap_or(0);
        let (pending, selected) = self.export_selection(node, since_ms).await?;
        export.pending_after_checkpoint = pending;
        check_len("export", selected.len(), MAX_EXPORT_RECORDS)?;
        let (Some(&first), Some(&last)) = (selected.first(), selected.last()) else {
            return Ok(export);
        };

        let anchor = self.checkpoint_before(first).await?;
        let end = self
            .checkpoint_at_or_after(last)
            .await?
            .ok_or(Error::Corrupt {
                what: "audit checkpoints",
                detail: format!("no checkpoint at or after record {last}"),
            })?;
        let start = anchor.as_ref().map_or(0, |a| a.seq);
        let span = end.seq.saturating_sub(start);
        if span > MAX_EXPORT_SPAN {
            return Err(Error::TooLarge {
                what: "export span",
                len: usize::try_from(span).unwrap_or(usize::MAX),
                max: usize::try_from(MAX_EXPORT_SPAN).unwrap_or(usize::MAX),
            });
        }
        export.checkpoints = self
            .list_checkpoints()
            .await?
            .into_iter()
            .filter(|c| c.seq > start && c.seq <= end.seq)
            .collect();
        export.anchor = anchor;

        self.export_span(&mut export, start, end.seq, &selected)
            .await?;
        Ok(export)
    }

    /// Which records an export selects (up to the latest checkpoint, at most one more
    /// than [`MAX_EXPORT_RECORDS`]), and how many matching records come after it.
    async fn export_selection(
        &self,
        node: Option<&str>,
        since_ms: i64,
    ) -> Result<(u64, BTreeSet<i64>)> {
        let latest = self.latest_checkpoint().await?;
        let covered = latest.as_ref().map_or(0, |c| c.seq);
        // $1: seq bound, $2: since, $3: row limit, $4: the node (only when filtering).
        let filter = if node.is_some() {
            "recorded_at >= $2 AND node_spiffe_id = $4"
        } else {
            "recorded_at >= $2"
        };
        let max_rows = i64::try_from(MAX_EXPORT_RECORDS)
            .unwrap_or(i64::MAX)
            .saturating_add(1);
        let count_sql = format!(
            "SELECT COUNT(*) AS n FROM (SELECT seq FROM audit_log \
             WHERE seq > $1 AND {filter} LIMIT $3) AS pending"
        );
        let pending: i64 = bind_node(
            sqlx::query(&count_sql)
                .bind(covered)
                .bind(since_ms)
                .bind(i64::MAX),
            node,
        )
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;

        let select_sql =
            format!("SELECT seq FROM audit_log WHERE seq <= $1 AND {filter} ORDER BY seq LIMIT $3");
        let rows = bind_node(
            sqlx::query(&select_sql)
                .bind(covered)
                .bind(since_ms)
                .bind(max_rows),
            node,
        )
        .fetch_all(&self.pool)
        .await?;
        let selected = rows
            .iter()
            .map(|row| row.try_get::<i64, _>("seq"))
            .collect::<Result<BTreeSet<i64>, _>>()?;
        Ok((u64::try_from(pending).unwrap_or(0), selected))
    }

    /// Appends seqs `start + 1 ..= end` to the export: selected records in full (with
    /// their evidence and policy), the others as stubs.
    async fn export_span(
        &self,
        export: &mut AuditExport,
        start: i64,
        end: i64,
        selected: &BTreeSet<i64>,
    ) -> Result<()> {
        let mut after = start;
        while after < end {
            let page = self.audit_records(after, MAX_PAGE).await?;
            let Some(last_in_page) = page.last().map(|r| r.seq) else {
                break;
            };
            for record in page.into_iter().filter(|r| r.seq <= end) {
                if selected.contains(&record.seq) {
                    self.export_blobs(export, &record).await?;
                    export.chain.push(ExportEntry::Record(Box::new(record)));
                } else {
                    export.chain.push(ExportEntry::Stub {
                        seq: record.seq,
                        body_hash: record.body_hash(),
                    });
                }
            }
            after = last_in_page;
        }
        Ok(())
    }

    async fn export_blobs(&self, export: &mut AuditExport, record: &AuditRecord) -> Result<()> {
        use base64::Engine as _;
        if !export.evidence.contains_key(&record.evidence_sha256) {
            let bytes = self.get_evidence(&record.evidence_sha256).await?;
            let _ = export.evidence.insert(
                record.evidence_sha256.clone(),
                base64::engine::general_purpose::STANDARD.encode(bytes),
            );
        }
        if let Some(hash) = &record.policy_hash
            && !export.policies.contains_key(hash)
        {
            let policy = self.get_policy(hash).await?;
            let _ = export.policies.insert(
                hash.clone(),
                ExportPolicy {
                    name: policy.name,
                    text: policy.text,
                },
            );
        }
        Ok(())
    }

    async fn checkpoint_before(&self, seq: i64) -> Result<Option<Checkpoint>> {
        let row = sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq < $1 \
             ORDER BY seq DESC LIMIT 1"
        ))
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(checkpoint_from_row).transpose()
    }

    async fn checkpoint_at_or_after(&self, seq: i64) -> Result<Option<Checkpoint>> {
        let row = sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq >= $1 \
             ORDER BY seq LIMIT 1"
        ))
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(checkpoint_from_row).transpose()
    }
}

/// Binds `$4`, the node, when the export filters on one.
fn bind_node<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    node: Option<&'q str>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    match node {
        Some(node) => query.bind(node),
        None => query,
    }
}

fn record_from_row(row: &AnyRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        prev_hash: read_hash(row, "prev_hash")?,
        record_hash: read_hash(row, "record_hash")?,
        recorded_at: read_time(row, "recorded_at")?,
        platform: row.try_get("platform")?,
        node_spiffe_id: row.try_get("node_spiffe_id")?,
        hardware_id: row.try_get("hardware_id")?,
        evidence_sha256: row.try_get("evidence_sha256")?,
        policy_name: row.try_get("policy_name")?,
        policy_hash: row.try_get("policy_hash")?,
        verdict: row.try_get("verdict")?,
        error_code: row.try_get("error_code")?,
        error_message: row.try_get("error_message")?,
        claims_json: row.try_get("claims_json")?,
        result_json: row.try_get("result_json")?,
        svid_serial: row.try_get("svid_serial")?,
    })
}

fn checkpoint_from_row(row: &AnyRow) -> Result<Checkpoint> {
    let signature: Vec<u8> = row.try_get("signature")?;
    Ok(Checkpoint {
        seq: row.try_get("seq")?,
        head_hash: to_hash(row.try_get("head_hash")?, "head_hash")?,
        signed_at: read_time(row, "signed_at")?,
        signer_spki_der: row.try_get("signer_spki_der")?,
        signature,
        algorithm: row.try_get("algorithm")?,
    })
}

#[cfg(test)]
mod tests {
    use crate::audit::{GENESIS_HASH, chain_hash};

    #[test]
    fn genesis_chain_hash_is_stable() {
        // Pins the chain hash construction: SHA-256("plinth-audit-v1\0" ‖ 0^32 ‖ 0^32).
        let hash = chain_hash(&GENESIS_HASH, &GENESIS_HASH);
        assert_eq!(hash.len(), 32);
        assert_ne!(hash, GENESIS_HASH);
    }
}
