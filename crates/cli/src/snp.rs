//! `plinth snp ...`: AMD SEV-SNP attestation reports.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use plinth_core::UnixTime;
use plinth_snp::{AmdRoots, CertTable, Collateral, Product, TcbVersion, VerifiedReport};
use serde_json::{Map, Value, json};

use crate::clock::verification_time;
use crate::input::{read_evidence, read_pem_blocks};
use crate::output;

/// SNP subcommands.
#[derive(Subcommand)]
pub(crate) enum SnpCommand {
    /// Verify an attestation report: its ECDSA P-384 signature by the VCEK or VLEK, that
    /// key's chain to the pinned AMD root of the product at the given time, CHIP_ID against
    /// the VCEK's hwID and REPORTED_TCB against its TCB extensions.
    Verify(VerifyArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum ProductArg {
    Milan,
    Genoa,
    Turin,
}

impl From<ProductArg> for Product {
    fn from(value: ProductArg) -> Self {
        match value {
            ProductArg::Milan => Self::Milan,
            ProductArg::Genoa => Self::Genoa,
            ProductArg::Turin => Self::Turin,
        }
    }
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// The attestation report: 1184 bytes (raw, hex or base64).
    report: PathBuf,
    /// The VCEK certificate (DER or PEM).
    #[arg(long, conflicts_with = "vlek")]
    vcek: Option<PathBuf>,
    /// The VLEK certificate (DER or PEM).
    #[arg(long)]
    vlek: Option<PathBuf>,
    /// PEM bundle of AMD certificates: ASK or ASVK, optionally the ARK (ignored: the
    /// pinned one is used) and the VCEK/VLEK itself. Default: AMD's ASKs and ASVKs shipped
    /// with plinth.
    #[arg(long)]
    chain: Option<PathBuf>,
    /// An extended report's certificate table (GHCB GUID table, raw bytes): the VCEK/VLEK,
    /// ASK and CRL are taken from it.
    #[arg(long, value_name = "FILE")]
    cert_table: Option<PathBuf>,
    /// The product; default: from the report's CPUID, else the certificate's productName.
    /// The chain must end at the ARK pinned for it either way.
    #[arg(long, value_enum)]
    product: Option<ProductArg>,
    /// Verify as of this time: RFC 3339 (`2025-08-01T00:00:00Z`) or Unix milliseconds.
    /// Default: the current system time.
    #[arg(long)]
    at: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: SnpCommand) -> ExitCode {
    match command {
        SnpCommand::Verify(args) => match verify_command(&args) {
            Ok((verified, at)) => {
                let value = report_json(&verified, at);
                output::success(args.json, &value, &human(&verified, at))
            }
            Err(error) => output::failure(args.json, &error),
        },
    }
}

fn verify_command(args: &VerifyArgs) -> Result<(VerifiedReport, UnixTime)> {
    let at = verification_time(args.at.as_deref())?;
    let report = read_evidence(&args.report)?;
    let collateral = collateral(args)?;
    let roots = AmdRoots::builtin()?;
    let verified = plinth_snp::verify(
        &report,
        &collateral,
        &roots,
        args.product.map(Product::from),
        at,
    )?;
    Ok((verified, at))
}

fn collateral(args: &VerifyArgs) -> Result<Collateral> {
    let mut collateral = match &args.cert_table {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Collateral::from_cert_table(&CertTable::parse(&bytes)?)?
        }
        None => Collateral::new(),
    };
    if let Some(path) = &args.vcek {
        collateral
            .add_vcek(&read_evidence(path)?)
            .context("--vcek")?;
    }
    if let Some(path) = &args.vlek {
        collateral
            .add_vlek(&read_evidence(path)?)
            .context("--vlek")?;
    }
    match &args.chain {
        Some(path) => {
            for der in read_pem_blocks(path)? {
                let certificate = plinth_x509::Certificate::from_der(&der).context("--chain")?;
                match certificate.subject().common_name() {
                    Some("SEV-VCEK" | "SEV-VLEK") => {
                        collateral.add_endorsement(&der).context("--chain")?;
                    }
                    _ => collateral.add_intermediate(&der).context("--chain")?,
                }
            }
        }
        None => collateral = collateral.with_builtin_intermediates()?,
    }
    if collateral
        .endorsement(plinth_snp::SigningKey::Vcek)
        .is_none()
        && collateral
            .endorsement(plinth_snp::SigningKey::Vlek)
            .is_none()
    {
        bail!("no VCEK or VLEK given: use --vcek, --vlek, --chain or --cert-table");
    }
    Ok(collateral)
}

fn tcb_json(tcb: TcbVersion) -> Value {
    let mut map: Map<String, Value> = tcb
        .components()
        .map(|(component, level)| (component.name().to_owned(), json!(level)))
        .collect();
    let _previous = map.insert("raw".to_owned(), json!(format!("{:#018x}", tcb.raw())));
    Value::Object(map)
}

fn report_json(verified: &VerifiedReport, at: UnixTime) -> Value {
    let report = verified.report();
    let policy = verified.policy();
    let info = verified.platform_info();
    json!({
        "verified": true,
        "platform": "sev-snp",
        "product": verified.product().name(),
        "signing_key": verified.signing_key().name(),
        "report_version": report.version(),
        "vmpl": verified.vmpl(),
        "measurement": hex::encode(verified.measurement()),
        "host_data": hex::encode(verified.host_data()),
        "report_data": hex::encode(verified.report_data()),
        "chip_id": verified.chip_id().map(hex::encode),
        "reported_tcb": tcb_json(verified.reported_tcb()),
        "current_tcb": tcb_json(verified.current_tcb()),
        "committed_tcb": tcb_json(verified.committed_tcb()),
        "launch_tcb": tcb_json(verified.launch_tcb()),
        "policy": {
            "raw": format!("{:#x}", policy.raw()),
            "abi_major": policy.abi_major(),
            "abi_minor": policy.abi_minor(),
            "smt_allowed": policy.smt_allowed(),
            "migration_agent_allowed": policy.migration_agent_allowed(),
            "debug_allowed": policy.debug_allowed(),
            "single_socket_required": policy.single_socket_required(),
        },
        "platform_info": {
            "raw": format!("{:#x}", info.raw()),
            "smt_enabled": info.smt_enabled(),
            "tsme_enabled": info.tsme_enabled(),
            "ecc_enabled": info.ecc_enabled(),
        },
        "author_key_enabled": verified.author_key_enabled(),
        "id_key_digest": hex::encode(verified.id_key_digest()),
        "author_key_digest": hex::encode(verified.author_key_digest()),
        "csp_id": verified.csp_id(),
        "endorsement_sha256": verified.endorsement_fingerprint().to_hex(),
        "verified_at": at.to_string(),
    })
}

fn human(verified: &VerifiedReport, at: UnixTime) -> String {
    let tcb = verified.reported_tcb();
    let levels: Vec<String> = tcb
        .components()
        .map(|(component, level)| format!("{component}={level}"))
        .collect();
    let policy = verified.policy();
    [
        format!(
            "sev-snp report verified at {at}: {} signed by its {}",
            verified.product(),
            verified.signing_key()
        ),
        format!("  measurement  {}", hex::encode(verified.measurement())),
        format!(
            "  chip_id      {}",
            verified
                .chip_id()
                .map_or_else(|| "(not vouched for by a VLEK)".to_owned(), hex::encode)
        ),
        format!("  reported_tcb {} ({:#018x})", levels.join(" "), tcb.raw()),
        format!(
            "  policy       {:#x}{}",
            policy.raw(),
            if policy.debug_allowed() {
                " DEBUG ALLOWED"
            } else {
                ""
            }
        ),
        format!("  vmpl         {}", verified.vmpl()),
        format!("  report_data  {}", hex::encode(verified.report_data())),
    ]
    .join("\n")
}
