//! `plinth audit verify|export`: re-verify the tamper-evident audit log, and write bundles
//! an auditor re-verifies offline.
//!
//! `verify` reads the datastore directly (it only reads): it recomputes the hash chain
//! from record 1 and checks every signed checkpoint against the trusted signers: the JWT
//! keys of the CA journal, or those of `--bundle` (a SPIFFE JWKS, as `plinth bundle show
//! --jwks` prints it), which is the stronger check: the journal lives in the same database
//! as the log. `verify --export FILE` needs no database: it trusts `--bundle`, or else the
//! signers the export itself names (and says so).
//!
//! The database is `--database-url`, else `plinth.db` in `--data-dir`, else
//! `$PLINTH_DATABASE_URL`, else `plinth.db` in `$PLINTH_DATA_DIR`, else in `plinth-data`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Subcommand};
use plinth_core::UnixTime;
use plinth_store::Store;
use plinth_store::audit::{AuditError, AuditExport, MAX_EXPORT_JSON_LEN, verify_export};
use serde_json::{Value, json};

use crate::output::{failure, out};

/// The server's default data directory (`plinth_server::Config`).
const DEFAULT_DATA_DIR: &str = "plinth-data";

/// Which database to read.
#[derive(Args)]
struct Database {
    /// The server's data directory (its SQLite database `plinth.db`) [default:
    /// `plinth-data`; env PLINTH_DATA_DIR].
    #[arg(long, value_name = "DIR", conflicts_with = "database_url")]
    data_dir: Option<PathBuf>,
    /// The database URL (`postgres://…` or `sqlite://…`) [env PLINTH_DATABASE_URL].
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

impl Database {
    /// Opens the store, refusing to create a database where none exists.
    async fn open(&self) -> Result<Store> {
        let env = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let url = self.database_url.clone().or_else(|| {
            self.data_dir
                .is_none()
                .then(|| env("PLINTH_DATABASE_URL"))?
        });
        if let Some(url) = url {
            return Store::open(&url)
                .await
                .context("opening the database (PLINTH_DATABASE_URL / --database-url)");
        }
        let dir = self
            .data_dir
            .clone()
            .or_else(|| env("PLINTH_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let file = dir.join("plinth.db");
        if !file.is_file() {
            bail!(
                "no database at {} (give the server's --data-dir or --database-url)",
                file.display()
            );
        }
        Store::open_sqlite(&dir)
            .await
            .with_context(|| format!("opening {}", file.display()))
    }
}

/// The audit log.
#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Recompute the hash chain and check every signed checkpoint; exit 1 at the first
    /// broken record or bad checkpoint.
    Verify(VerifyArgs),
    /// Write an export bundle (records, evidence, policies, checkpoints, CA journal) that
    /// `plinth audit verify --export` re-verifies offline.
    Export(ExportArgs),
}

/// `plinth audit verify`.
#[derive(Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    database: Database,
    /// Verify this export file offline instead of the database.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["data_dir", "database_url"])]
    export: Option<PathBuf>,
    /// Trust only the checkpoint signers of this SPIFFE bundle (JWKS) instead of the CA
    /// journal's (or the export's) keys.
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

/// `plinth audit export`.
#[derive(Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    database: Database,
    /// Only this node's records (its SPIFFE ID); the others appear as hash-only stubs.
    #[arg(long, value_name = "SPIFFE_ID")]
    node: Option<String>,
    /// Only records from this time on (RFC 3339, or Unix milliseconds).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Where to write the export (JSON).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a `plinth audit` command.
pub(crate) fn run(command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify(args) => verify(&args),
        AuditCommand::Export(args) => {
            let json = args.json;
            export(&args).unwrap_or_else(|e| failure(json, &e))
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The checkpoint signers (SubjectPublicKeyInfo DER) of a SPIFFE bundle's JWKS.
fn bundle_signers(path: &Path) -> Result<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the bundle {}", path.display()))?;
    let keys = plinth_policy::ear::jwks_signing_keys(&text)
        .with_context(|| format!("the bundle {}", path.display()))?;
    if keys.is_empty() {
        bail!(
            "the bundle {} has no JWT signing keys (jwt-svid)",
            path.display()
        );
    }
    Ok(keys.iter().map(|k| k.spki_der().to_vec()).collect())
}

/// An audit failure: the first broken record (seq and reason) or bad checkpoint.
fn audit_failure(as_json: bool, error: &AuditError) -> ExitCode {
    let (seq, reason) = match error {
        AuditError::BrokenRecord { seq, reason } => (Some(*seq), reason.to_string()),
        AuditError::BadCheckpoint { seq, reason } => (Some(*seq), reason.to_string()),
        AuditError::UntrustedSigner { seq }
        | AuditError::NotCovered { seq }
        | AuditError::EvidenceMissing { seq }
        | AuditError::EvidenceMismatch { seq }
        | AuditError::PolicyMissing { seq }
        | AuditError::PolicyMismatch { seq } => (Some(*seq), error.to_string()),
        _ => (None, error.to_string()),
    };
    if as_json {
        out!(
            "{:#}",
            json!({ "verified": false, "seq": seq, "reason": reason, "error": error.to_string() })
        );
    } else {
        eprintln!("audit verification failed: {error}");
    }
    ExitCode::FAILURE
}

fn verify(args: &VerifyArgs) -> ExitCode {
    let outcome = match &args.export {
        Some(path) => verify_export_file(path, args.bundle.as_deref()),
        None => verify_database(args),
    };
    match outcome {
        Ok(Verified::Done { value, human }) => crate::output::success(args.json, &value, &human),
        Ok(Verified::Broken(error)) => audit_failure(args.json, &error),
        Err(error) => failure(args.json, &error),
    }
}

/// The outcome of a verification that could be carried out.
enum Verified {
    /// Everything verified.
    Done { value: Value, human: String },
    /// The log or export does not verify.
    Broken(AuditError),
}

fn verify_database(args: &VerifyArgs) -> Result<Verified> {
    runtime()?.block_on(async {
        let store = args.database.open().await?;
        let (signers, trust) = match &args.bundle {
            Some(path) => (bundle_signers(path)?, "bundle"),
            None => (
                store
                    .list_authorities()
                    .await
                    .context("reading the CA journal")?
                    .into_iter()
                    .map(|a| a.jwt_public_spki_der)
                    .collect(),
                "ca_journal",
            ),
        };
        let checkpoints = store
            .list_checkpoints()
            .await
            .context("reading the checkpoints")?
            .len();
        let verified = store.verify_audit(&signers).await;
        store.close().await;
        let verified = match verified {
            Ok(verified) => verified,
            Err(plinth_store::Error::Audit(error)) => return Ok(Verified::Broken(error)),
            Err(error) => return Err(anyhow!(error).context("reading the audit log")),
        };
        let value = json!({
            "verified": true,
            "records": verified.records(),
            "head_seq": verified.head_seq(),
            "head_hash": hex::encode(verified.head_hash()),
            "checkpoints": checkpoints,
            "last_checkpoint_seq": verified.last_checkpoint_seq(),
            "uncovered": verified.uncovered(),
            "trusted_signers": trust,
        });
        let last = verified
            .last_checkpoint_seq()
            .map_or_else(String::new, |seq| format!(", the last at record {seq}"));
        let human = format!(
            "audit log verified: {} records, {checkpoints} signed checkpoints{last}, {} records \
             not yet covered by a checkpoint (signers trusted from the {})",
            verified.records(),
            verified.uncovered(),
            if trust == "bundle" {
                "bundle"
            } else {
                "CA journal"
            },
        );
        Ok(Verified::Done { value, human })
    })
}

fn verify_export_file(path: &Path, bundle: Option<&Path>) -> Result<Verified> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let limit = u64::try_from(MAX_EXPORT_JSON_LEN)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut bytes = Vec::new();
    let _read = file
        .take(limit)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    let export = match AuditExport::from_json(&bytes) {
        Ok(export) => export,
        Err(error) => return Ok(Verified::Broken(error)),
    };
    let (signers, trust, note) = match bundle {
        Some(bundle) => (bundle_signers(bundle)?, "bundle", String::new()),
        None => (
            export
                .authorities
                .iter()
                .map(|a| a.jwt_public_spki_der.clone())
                .collect(),
            "export",
            "; trusting the signers named in the export (give --bundle to check them against \
             a trust bundle)"
                .to_owned(),
        ),
    };
    let verified = match verify_export(&export, &signers) {
        Ok(verified) => verified,
        Err(error) => return Ok(Verified::Broken(error)),
    };
    let value = json!({
        "verified": true,
        "node": export.node,
        "records": verified.records(),
        "stubs": verified.stubs(),
        "first_seq": verified.first_seq(),
        "checkpoint_seq": verified.checkpoint_seq(),
        "pending_after_checkpoint": export.pending_after_checkpoint,
        "trusted_signers": trust,
    });
    let human = match verified.checkpoint_seq() {
        Some(seq) => format!(
            "export verified: {} records in full and {} stubs, chain from record {} to the \
             signed checkpoint at record {seq}{note}",
            verified.records().len(),
            verified.stubs(),
            verified.first_seq(),
        ),
        None => format!("export verified: it holds no records{note}"),
    };
    Ok(Verified::Done { value, human })
}

fn export(args: &ExportArgs) -> Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(UnixTime::parse)
        .transpose()
        .context("--since must be RFC 3339 or Unix milliseconds")?;
    let export = runtime()?.block_on(async {
        let store = args.database.open().await?;
        let export = store.export(args.node.as_deref(), since).await;
        store.close().await;
        export.context("exporting the audit log")
    })?;
    let bytes = export.to_json().context("encoding the export")?;
    std::fs::write(&args.out, bytes).with_context(|| format!("writing {}", args.out.display()))?;
    let records = export
        .chain
        .iter()
        .filter(|e| matches!(e, plinth_store::audit::ExportEntry::Record(_)))
        .count();
    let value = json!({
        "written": args.out.display().to_string(),
        "records": records,
        "entries": export.chain.len(),
        "pending_after_checkpoint": export.pending_after_checkpoint,
    });
    let pending = if export.pending_after_checkpoint > 0 {
        format!(
            "; {} newer matching records are not yet covered by a signed checkpoint and were \
             left out",
            export.pending_after_checkpoint
        )
    } else {
        String::new()
    };
    let human = format!(
        "wrote {records} records ({} chain entries) to {}{pending}",
        export.chain.len(),
        args.out.display()
    );
    Ok(crate::output::success(args.json, &value, &human))
}
