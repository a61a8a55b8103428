//! `plinth tpm verify-ek`: validate a TPM EK certificate against TPM vendor roots.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use plinth_core::UnixTime;
use plinth_tpm::{EkAllowList, EkRoots, Public, VerifiedEk, verify_ek_certificate};
use plinth_x509::Certificate;
use serde_json::{Value, json};

use crate::clock::verification_time;
use crate::input::{read_evidence, read_pem_blocks};
use crate::output;

/// Most files read from one certificate directory (recursively).
const MAX_FILES: usize = 4096;
/// Deepest directory level read below a certificate directory.
const MAX_DIR_DEPTH: usize = 4;

/// Arguments of `plinth tpm verify-ek`.
#[derive(Args)]
pub(crate) struct VerifyEkArgs {
    /// The EK certificate: DER (NV padding after it is trimmed), PEM, base64 or hex.
    cert: PathBuf,
    /// Directory of trusted root certificates, read recursively: every file is DER or PEM
    /// (several PEM blocks per file allowed). Self-issued certificates here are the trust
    /// anchors; any other certificate found here (vendor bundles mix them in) is used only
    /// as an intermediate, trusted through a root.
    #[arg(long)]
    roots: PathBuf,
    /// Directory of intermediate CA certificates (same formats); these are trusted only
    /// through a root.
    #[arg(long)]
    intermediates: Option<PathBuf>,
    /// Validate at this time (RFC 3339, or Unix milliseconds) instead of now.
    #[arg(long)]
    at: Option<String>,
    /// Also check that this EK public area (TPM2B_PUBLIC or TPMT_PUBLIC; raw, base64 or
    /// hex) holds the certified key.
    #[arg(long)]
    ek_public: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `plinth tpm verify-ek`: exit 0 only when the certificate validates.
pub(crate) fn run_verify_ek(args: VerifyEkArgs) -> ExitCode {
    let as_json = args.json;
    match verify_ek_command(args) {
        Ok((value, human)) => output::success(as_json, &value, &human),
        Err(error) => output::failure(as_json, &error),
    }
}

fn verify_ek_command(args: VerifyEkArgs) -> Result<(Value, String)> {
    let VerifyEkArgs {
        cert,
        roots: roots_dir,
        intermediates,
        at,
        ek_public,
        json: _,
    } = args;
    let now = verification_time(at.as_deref())?;
    let mut roots = EkRoots::new();
    for (path, der) in certificates_in(&roots_dir)? {
        let certificate = Certificate::from_der_trimmed(&der)
            .with_context(|| format!("certificate {}", path.display()))?;
        if certificate.is_self_issued() {
            roots.add_root(certificate);
        } else {
            roots.add_intermediate(certificate);
        }
    }
    if roots.roots().is_empty() {
        bail!("no root certificates found in {}", roots_dir.display());
    }
    if let Some(dir) = &intermediates {
        for (path, der) in certificates_in(dir)? {
            roots
                .add_intermediate_der(&der)
                .with_context(|| format!("intermediate {}", path.display()))?;
        }
    }
    let cert_der = read_evidence(&cert)?;
    let ek = verify_ek_certificate(&cert_der, &roots, now)
        .with_context(|| format!("EK certificate {}", cert.display()))?;
    let ek_public_matches = match &ek_public {
        Some(path) => {
            let public = Public::from_either(&read_evidence(path)?)
                .with_context(|| format!("EK public area {}", path.display()))?;
            ek.check_public_matches(&public)?;
            Some(true)
        }
        None => None,
    };
    Ok((ek_json(&ek, now, ek_public_matches)?, ek_human(&ek)))
}

/// Every certificate (DER) in the files under `dir`, in path order.
fn certificates_in(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    collect_files(dir, 0, &mut files)?;
    files.sort();
    let mut certificates = Vec::new();
    for path in files {
        for der in read_pem_blocks(&path)? {
            certificates.push((path.clone(), der));
        }
    }
    Ok(certificates)
}

fn collect_files(dir: &Path, depth: usize, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.is_dir() {
            if depth < MAX_DIR_DEPTH {
                collect_files(&path, depth + 1, files)?;
            }
        } else if files.len() < MAX_FILES {
            files.push(path);
        } else {
            bail!("more than {MAX_FILES} files under {}", dir.display());
        }
    }
    Ok(())
}

fn ek_json(ek: &VerifiedEk, now: UnixTime, ek_public_matches: Option<bool>) -> Result<Value> {
    let cert = ek.certificate();
    let validity = cert.validity();
    let issuer_chain: Vec<String> = ek
        .chain()
        .certificates()
        .skip(1)
        .map(|c| c.subject().to_string())
        .collect();
    let ek_sha256 = EkAllowList::spki_sha256(ek.public_key())?;
    Ok(json!({
        "verified": true,
        "verified_at": now.to_string(),
        "subject": cert.subject().to_string(),
        "issuer_chain": issuer_chain,
        "root": ek.root_subject(),
        "validity": {
            "not_before": validity.not_before().to_string(),
            "not_after": validity.not_after().to_string(),
        },
        "manufacturer": ek.manufacturer(),
        "model": ek.model(),
        "version": ek.version(),
        "ek_public_key_sha256": ek_sha256.to_hex(),
        "ek_public_key_type": format!("{:?}", ek.public_key().kind()),
        "ek_public_matches": ek_public_matches,
        "certificate_sha256": cert.fingerprint().to_hex(),
        "padding_trimmed": ek.padding_trimmed(),
    }))
}

fn ek_human(ek: &VerifiedEk) -> String {
    let tpm = [ek.manufacturer(), ek.model(), ek.version()]
        .iter()
        .flatten()
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let tpm = if tpm.is_empty() {
        "no TCG attributes".to_owned()
    } else {
        tpm
    };
    let path: Vec<String> = ek
        .chain()
        .certificates()
        .skip(1)
        .map(|c: &Certificate| {
            c.subject()
                .common_name()
                .map_or_else(|| c.subject().to_string(), str::to_owned)
        })
        .collect();
    format!(
        "EK certificate verified: TPM {tpm}; chain: EK -> {}",
        path.join(" -> ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TPM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/tpm");

    fn args(cert: &str, roots: &str, intermediates: Option<&str>) -> VerifyEkArgs {
        VerifyEkArgs {
            cert: PathBuf::from(format!("{TPM}/{cert}")),
            roots: PathBuf::from(format!("{TPM}/{roots}")),
            intermediates: intermediates.map(|d| PathBuf::from(format!("{TPM}/{d}"))),
            at: Some("2026-11-23T00:00:00Z".to_owned()),
            ek_public: None,
            json: true,
        }
    }

    #[test]
    fn parses_its_command_line() {
        use clap::{Args as _, FromArgMatches as _};
        let command = VerifyEkArgs::augment_args(clap::Command::new("verify-ek"));
        let matches = command
            .try_get_matches_from([
                "verify-ek",
                "ek.der",
                "--roots",
                "roots",
                "--intermediates",
                "inter",
                "--at",
                "1700000000000",
                "--ek-public",
                "ek.pub",
                "--json",
            ])
            .unwrap();
        let a = VerifyEkArgs::from_arg_matches(&matches).unwrap();
        assert_eq!(a.cert, PathBuf::from("ek.der"));
        assert_eq!(a.roots, PathBuf::from("roots"));
        assert_eq!(a.intermediates, Some(PathBuf::from("inter")));
        assert_eq!(a.at.as_deref(), Some("1700000000000"));
        assert_eq!(a.ek_public, Some(PathBuf::from("ek.pub")));
        assert!(a.json);
    }

    #[test]
    fn verifies_intel_ek_against_keylime_store_and_reports_json() {
        let mut a = args(
            "ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der",
            "ca-roots/keylime-tpm_cert_store",
            None,
        );
        a.ek_public = Some(PathBuf::from(format!(
            "{TPM}/ek-certs/intel-ptt/ek_rsa.tpm2b_public.bin"
        )));
        let (value, human) = verify_ek_command(a).unwrap();
        assert_eq!(value["verified"], true);
        assert_eq!(value["manufacturer"], "id:494E5443");
        assert_eq!(value["model"], "SPT");
        assert_eq!(value["ek_public_matches"], true);
        assert_eq!(value["padding_trimmed"], 0);
        assert_eq!(value["ek_public_key_sha256"].as_str().unwrap().len(), 64);
        assert!(human.contains("id:494E5443 SPT id:00020000"), "{human}");
    }

    #[test]
    fn verifies_padded_stmicro_ek_with_separate_intermediates() {
        let a = args(
            "ek-certs/stmicro/st_rsa_ek_cert.nv-raw.der",
            "ca-roots/keylime-tpm_cert_store",
            Some("ca-roots/loicsikidi"),
        );
        let (value, _) = verify_ek_command(a).unwrap();
        assert_eq!(value["padding_trimmed"], 431);
    }

    #[test]
    fn rejects_ek_from_vendor_missing_from_roots_dir() {
        let a = args(
            "ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der",
            "ca-roots/google-vtpm",
            None,
        );
        let err = verify_ek_command(a).unwrap_err();
        assert!(matches!(
            err.downcast_ref::<plinth_tpm::Error>(),
            Some(plinth_tpm::Error::EkUntrustedRoot { .. })
        ));
    }
}
