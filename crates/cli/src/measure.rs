//! `plinth measure`: reference values from artifacts, for policy files.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::output::out;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use plinth_core::{Digest, HashAlg};
use serde_json::{Value, json};

/// Measure subcommands.
#[derive(Subcommand)]
pub(crate) enum MeasureCommand {
    /// The Authenticode digest of PE/COFF EFI binaries (shim, GRUB, kernel, UKI): the
    /// value UEFI measures into PCR 4 and `[tpm.boot] boot_applications` lists.
    Authenticode(AuthenticodeArgs),
    /// The SEV-SNP launch measurement of a QEMU/OVMF guest: the MEASUREMENT its reports
    /// carry, the value `[snp] measurements` lists.
    Snp(SnpArgs),
}

#[derive(Args)]
pub(crate) struct SnpArgs {
    /// The OVMF image (unified OVMF.fd with SEV metadata).
    #[arg(long)]
    ovmf: PathBuf,
    /// The kernel, for measured direct boot.
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// The initrd (with --kernel).
    #[arg(long, requires = "kernel")]
    initrd: Option<PathBuf>,
    /// The kernel command line (with --kernel).
    #[arg(long, requires = "kernel")]
    append: Option<String>,
    /// The vCPU count.
    #[arg(long)]
    vcpus: u32,
    /// The QEMU vCPU model (EPYC, EPYC-v4, EPYC-Rome, EPYC-Milan, EPYC-Genoa, EPYC-Turin).
    #[arg(long)]
    vcpu_type: String,
    /// SEV_FEATURES of the VMSAs.
    #[arg(long, default_value = "0x1")]
    guest_features: String,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct AuthenticodeArgs {
    /// PE/COFF images.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The hash: sha1, sha256, sha384 or sha512.
    #[arg(long, default_value = "sha256")]
    alg: String,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: MeasureCommand) -> ExitCode {
    match command {
        MeasureCommand::Authenticode(args) => match authenticode(&args) {
            Ok(measured) => {
                if args.json {
                    let files: Vec<Value> = measured
                        .iter()
                        .map(|(file, digest)| {
                            json!({
                                "file": file.display().to_string(),
                                "alg": digest.alg().name(),
                                "digest": digest.to_hex(),
                            })
                        })
                        .collect();
                    out!("{:#}", json!({ "files": files }));
                } else {
                    for (file, digest) in &measured {
                        out!("{}  {}", digest.to_hex(), file.display());
                    }
                }
                ExitCode::SUCCESS
            }
            Err(error) => crate::output::failure(args.json, &error),
        },
        MeasureCommand::Snp(args) => match snp(&args) {
            Ok(measurement) => crate::output::success(
                args.json,
                &json!({ "measurement": hex::encode(measurement) }),
                &hex::encode(measurement),
            ),
            Err(error) => crate::output::failure(args.json, &error),
        },
    }
}

fn snp(args: &SnpArgs) -> Result<[u8; 48]> {
    use plinth_policy::snp_measure::{SnpLaunch, snp_launch_measurement, vcpu_type_signature};
    let read =
        |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let ovmf = read(&args.ovmf)?;
    let kernel = args.kernel.as_ref().map(read).transpose()?;
    let initrd = args.initrd.as_ref().map(read).transpose()?;
    let features = args.guest_features.trim();
    let guest_features = match features.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => features.parse(),
    }
    .context("--guest-features")?;
    let launch = SnpLaunch {
        ovmf: &ovmf,
        kernel: kernel.as_deref(),
        initrd: initrd.as_deref(),
        cmdline: args.append.as_deref(),
        vcpus: args.vcpus,
        vcpu_signature: vcpu_type_signature(&args.vcpu_type)
            .with_context(|| format!("unknown --vcpu-type {:?}", args.vcpu_type))?,
        guest_features,
    };
    Ok(snp_launch_measurement(&launch)?)
}

fn authenticode(args: &AuthenticodeArgs) -> Result<Vec<(PathBuf, Digest)>> {
    let alg: HashAlg = args.alg.parse().context("--alg")?;
    args.files
        .iter()
        .map(|path| {
            let image =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let digest = plinth_policy::authenticode::authenticode_digest(&image, alg)
                .with_context(|| format!("{}", path.display()))?;
            Ok((path.clone(), digest))
        })
        .collect()
}
