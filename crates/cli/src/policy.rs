//! `plinth policy lint` and `plinth policy check`: policy files for compliance reviewers.
//!
//! `check` is a dry run: it verifies the evidence given with the platform crates exactly as
//! the server would, appraises it against the policy, and prints every rule with what was
//! observed and what was expected. Evidence is passed per platform:
//! - TPM: `--tpm-ak --tpm-quote --tpm-signature --nonce --pcrs [--event-log]` plus the
//!   TPM's identity, `--ak-cert` or `--ek-cert`, with `--tpm-root`/`--tpm-intermediate`;
//! - Nitro: `--nitro <document>`;
//! - SEV-SNP: `--snp <report>` with `--vcek <cert>` or `--vlek <cert>` (AMD's ASKs/ASVKs
//!   and pinned ARKs ship with plinth).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use plinth_core::UnixTime;
use plinth_nitro::NitroTrust;
use plinth_policy::ear::{VerifiedEar, VerifierId, issue_ear};
use plinth_policy::{Appraisal, Evidence, Outcome, Policy, TpmEvidence, TpmIdentity};
use plinth_snp::{AmdRoots, Collateral};
use plinth_tpm::{EkRoots, Public};
use serde_json::{Value, json};

use crate::clock::verification_time;
use crate::input::{read_evidence, read_pem_blocks};
use crate::output::out;

/// Policy subcommands.
#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Check policy files (a file, or every `*.toml` in a directory): schema, hex values,
    /// templates. Each error names file:line:column. Exits 1 if any file is rejected.
    Lint(LintArgs),
    /// Dry run: verify the evidence, appraise it against the policy and print every rule,
    /// pass or fail, with the observed and expected values. Exits 0 only when the verdict
    /// passes (affirming or warning).
    Check(Box<CheckArgs>),
    /// Verify an EAR attestation result offline with a trust bundle (the SPIFFE JWKS of
    /// `plinth bundle show --jwks`, or a plain JWKS), and print its appraisal.
    VerifyEar(VerifyEarArgs),
}

#[derive(Args)]
pub(crate) struct VerifyEarArgs {
    /// The EAR token (JWS compact serialization) file.
    token: PathBuf,
    /// The JWKS bundle file.
    #[arg(long)]
    bundle: PathBuf,
    /// Print machine-readable JSON (the verified claims).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct LintArgs {
    /// Policy files or directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// The policy file.
    policy: PathBuf,
    /// TPM: the AK public area (TPMT_PUBLIC or TPM2B_PUBLIC).
    #[arg(long, requires_all = ["tpm_quote", "tpm_signature", "nonce"])]
    tpm_ak: Option<PathBuf>,
    /// TPM: the quote (TPMS_ATTEST).
    #[arg(long)]
    tpm_quote: Option<PathBuf>,
    /// TPM: the quote's TPMT_SIGNATURE.
    #[arg(long)]
    tpm_signature: Option<PathBuf>,
    /// TPM: the qualifying data the quote must carry, hex.
    #[arg(long)]
    nonce: Option<String>,
    /// TPM: PCR values as JSON (`{"sha256": {"0": "<hex>"}}`, optionally under "pcrs").
    #[arg(long)]
    pcrs: Option<PathBuf>,
    /// TPM: the TCG event log, verified against the quote.
    #[arg(long)]
    event_log: Option<PathBuf>,
    /// TPM identity: the AK certificate (its key must be `--tpm-ak`).
    #[arg(long, conflicts_with = "ek_cert")]
    ak_cert: Option<PathBuf>,
    /// TPM identity: the EK certificate. The EK-to-AK link comes from credential activation
    /// at enrollment and cannot be checked from files: this dry run takes it as given.
    #[arg(long)]
    ek_cert: Option<PathBuf>,
    /// TPM: a root certificate for `--ak-cert`/`--ek-cert` (DER or PEM; repeatable).
    #[arg(long)]
    tpm_root: Vec<PathBuf>,
    /// TPM: an intermediate certificate (DER or PEM; repeatable).
    #[arg(long)]
    tpm_intermediate: Vec<PathBuf>,
    /// Nitro: the attestation document.
    #[arg(long, conflicts_with_all = ["tpm_ak", "snp"])]
    nitro: Option<PathBuf>,
    /// SEV-SNP: the attestation report.
    #[arg(long, conflicts_with = "tpm_ak")]
    snp: Option<PathBuf>,
    /// SEV-SNP: the VCEK certificate (DER or PEM).
    #[arg(long, conflicts_with = "vlek")]
    vcek: Option<PathBuf>,
    /// SEV-SNP: the VLEK certificate (DER or PEM).
    #[arg(long)]
    vlek: Option<PathBuf>,
    /// Verify and appraise as of this time: RFC 3339 or Unix milliseconds. Default: now.
    #[arg(long)]
    at: Option<String>,
    /// Sign the result as an EAR token with the active authority of the CA in this
    /// directory (`plinth ca init`), and print it.
    #[arg(long, value_name = "CA_DIR")]
    ear_ca: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::Lint(args) => lint(&args),
        PolicyCommand::Check(args) => {
            match check(&args).and_then(|appraisal| {
                let ear = args
                    .ear_ca
                    .as_deref()
                    .map(|dir| ear(&args, dir, &appraisal))
                    .transpose()?;
                Ok((appraisal, ear))
            }) {
                Ok((appraisal, ear)) => print_appraisal(&args, &appraisal, ear.as_deref()),
                Err(error) => crate::output::failure(args.json, &error),
            }
        }
        PolicyCommand::VerifyEar(args) => match verify_ear(&args) {
            Ok(ear) => {
                let status = ear.status().unwrap_or("none");
                let human = format!(
                    "EAR signature valid (kid {})\nstatus: {status}\npolicy: {}\nbound key: {}",
                    ear.key_id(),
                    ear.policy_hash().unwrap_or("none"),
                    ear.bound_key_thumbprint().unwrap_or("none"),
                );
                crate::output::success(args.json, &Value::Object(ear.claims().clone()), &human)
            }
            Err(error) => crate::output::failure(args.json, &error),
        },
    }
}

fn read_policy(path: &Path) -> Result<Policy> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{}: a policy is UTF-8 text", path.display()))?;
    Ok(Policy::parse(&path.display().to_string(), &text)?)
}

fn policy_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("{}: no *.toml policy files", path.display());
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn lint(args: &LintArgs) -> ExitCode {
    let files = match policy_files(&args.paths) {
        Ok(files) => files,
        Err(error) => return crate::output::failure(args.json, &error),
    };
    let mut results = Vec::new();
    let mut ok = true;
    for file in files {
        match read_policy(&file) {
            Ok(policy) => {
                if !args.json {
                    out!(
                        "ok    {} ({} policy {}, sha256:{})",
                        file.display(),
                        policy.platform().name(),
                        policy.name(),
                        policy.hash().to_hex()
                    );
                }
                results.push(json!({
                    "file": file.display().to_string(),
                    "ok": true,
                    "name": policy.name(),
                    "platform": policy.platform().name(),
                    "sha256": policy.hash().to_hex(),
                }));
            }
            Err(error) => {
                ok = false;
                if !args.json {
                    out!("error {}", crate::output::reason(&error));
                }
                results.push(json!({
                    "file": file.display().to_string(),
                    "ok": false,
                    "error": crate::output::reason(&error),
                }));
            }
        }
    }
    if args.json {
        out!("{:#}", json!({ "ok": ok, "files": results }));
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn check(args: &CheckArgs) -> Result<Appraisal> {
    let policy = read_policy(&args.policy)?;
    let now = verification_time(args.at.as_deref())?;
    if let Some(path) = &args.nitro {
        let doc = plinth_nitro::verify(&read_evidence(path)?, &NitroTrust::aws_root_g1(), now)
            .context("verifying the Nitro document")?;
        return Ok(plinth_policy::appraise(
            &policy,
            &Evidence::Nitro(&doc),
            now,
        ));
    }
    if let Some(path) = &args.snp {
        let mut collateral = Collateral::new().with_builtin_intermediates()?;
        match (&args.vcek, &args.vlek) {
            (Some(vcek), None) => collateral
                .add_vcek(&read_evidence(vcek)?)
                .context("--vcek")?,
            (None, Some(vlek)) => collateral
                .add_vlek(&read_evidence(vlek)?)
                .context("--vlek")?,
            _ => bail!("--snp needs --vcek or --vlek"),
        }
        let report = plinth_snp::verify(
            &read_evidence(path)?,
            &collateral,
            &AmdRoots::builtin()?,
            None,
            now,
        )
        .context("verifying the SEV-SNP report")?;
        return Ok(plinth_policy::appraise(
            &policy,
            &Evidence::Snp(&report),
            now,
        ));
    }
    if args.tpm_ak.is_some() {
        return check_tpm(args, &policy, now);
    }
    bail!("no evidence: give --tpm-ak/--tpm-quote/..., --nitro or --snp")
}

fn check_tpm(args: &CheckArgs, policy: &Policy, now: UnixTime) -> Result<Appraisal> {
    let required = |path: &Option<PathBuf>, flag: &str| {
        path.as_deref()
            .map(read_evidence)
            .transpose()?
            .with_context(|| format!("TPM evidence needs {flag}"))
    };
    let ak = Public::from_either(&required(&args.tpm_ak, "--tpm-ak")?)
        .context("parsing the AK public area")?;
    let attest = required(&args.tpm_quote, "--tpm-quote")?;
    let signature = required(&args.tpm_signature, "--tpm-signature")?;
    let nonce = hex::decode(args.nonce.as_deref().unwrap_or_default().trim())
        .context("--nonce must be hex")?;
    let pcrs = match &args.pcrs {
        Some(path) => crate::tpm::parse_pcrs_json(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )?,
        None => plinth_tpm::PcrValues::default(),
    };
    let quote = plinth_tpm::verify_quote(&ak, &attest, &signature, &nonce, &pcrs)
        .context("verifying the quote")?;
    let log = args
        .event_log
        .as_deref()
        .map(|path| -> Result<_> {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            plinth_tpm::verify_event_log(&bytes, &quote)
                .context("verifying the event log against the quote")
        })
        .transpose()?;
    let mut roots = EkRoots::new();
    for path in &args.tpm_root {
        for der in read_pem_blocks(path)? {
            roots
                .add_root_der(&der)
                .with_context(|| format!("--tpm-root {}", path.display()))?;
        }
    }
    for path in &args.tpm_intermediate {
        for der in read_pem_blocks(path)? {
            roots
                .add_intermediate_der(&der)
                .with_context(|| format!("--tpm-intermediate {}", path.display()))?;
        }
    }
    let appraise = |identity| {
        let evidence = Evidence::Tpm(TpmEvidence {
            quote: &quote,
            event_log: log.as_ref(),
            identity,
        });
        plinth_policy::appraise(policy, &evidence, now)
    };
    if let Some(path) = &args.ak_cert {
        let cert = plinth_tpm::verify_ak_certificate(&read_evidence(path)?, &[], &roots, now)
            .context("verifying --ak-cert")?;
        cert.check_public_matches(&ak)
            .context("--ak-cert does not certify --tpm-ak")?;
        return Ok(appraise(TpmIdentity::AkCertificate(&cert)));
    }
    if let Some(path) = &args.ek_cert {
        let ek = plinth_tpm::verify_ek_certificate(&read_evidence(path)?, &roots, now)
            .context("verifying --ek-cert")?;
        return Ok(appraise(TpmIdentity::Ek(&ek)));
    }
    bail!("TPM evidence needs the TPM's identity: --ak-cert or --ek-cert")
}

fn appraisal_json(args: &CheckArgs, appraisal: &Appraisal) -> Value {
    let vector = appraisal.trust_vector().to_json();
    let rules: Vec<Value> = appraisal
        .rules()
        .iter()
        .map(|r| {
            let mut rule = r.to_json();
            let _previous = rule.insert("component".into(), json!(r.component().name()));
            Value::Object(rule)
        })
        .collect();
    json!({
        "policy": {
            "file": args.policy.display().to_string(),
            "name": appraisal.policy_name(),
            "sha256": appraisal.policy_hash().to_hex(),
            "platform": appraisal.platform().name(),
        },
        "appraised_at": appraisal.appraised_at().to_string(),
        "verdict": appraisal.verdict().name(),
        "passes": appraisal.verdict().passes(),
        "trust_vector": vector,
        "rules": rules,
        "claims": appraisal.claims(),
        "identity": appraisal.identity().map(|id| json!({
            "spiffe_id": id.spiffe_id().to_string(),
            "selectors": id.selectors(),
            "svid_ttl_seconds": id.svid_ttl_seconds(),
        })),
    })
}

fn print_appraisal(args: &CheckArgs, appraisal: &Appraisal, ear: Option<&str>) -> ExitCode {
    if args.json {
        let mut value = appraisal_json(args, appraisal);
        if let (Some(ear), Some(object)) = (ear, value.as_object_mut()) {
            let _none = object.insert("ear".to_owned(), json!(ear));
        }
        out!("{value:#}");
    } else {
        out!(
            "policy {} (sha256:{}) from {}",
            appraisal.policy_name(),
            appraisal.policy_hash().to_hex(),
            args.policy.display()
        );
        out!(
            "platform {}, appraised at {}",
            appraisal.platform().name(),
            appraisal.appraised_at()
        );
        if args.ek_cert.is_some() {
            out!(
                "note: the EK-to-AK link (credential activation) is taken as given in this dry run"
            );
        }
        out!();
        for rule in appraisal.rules() {
            let tag = match rule.outcome() {
                Outcome::Pass => "PASS",
                Outcome::Warn => "WARN",
                _ => "FAIL",
            };
            out!("{tag}  {}  [{}]", rule.rule(), rule.component().name());
            out!("      observed: {}", rule.observed());
            out!("      expected: {}", rule.expected());
        }
        out!();
        let vector: Vec<String> = appraisal
            .trust_vector()
            .claims()
            .map(|(c, v)| format!("{}={v}", c.name()))
            .collect();
        out!("trust vector: {}", vector.join(" "));
        out!("verdict: {}", appraisal.verdict());
        match appraisal.identity() {
            Some(id) => {
                out!(
                    "identity: {} (SVID TTL {} s)",
                    id.spiffe_id(),
                    id.svid_ttl_seconds()
                );
                for selector in id.selectors() {
                    out!("selector: {selector}");
                }
            }
            None => out!("identity: none (the verdict does not pass)"),
        }
        if let Some(ear) = ear {
            out!("ear: {ear}");
        }
    }
    if appraisal.verdict().passes() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn ear(args: &CheckArgs, dir: &Path, appraisal: &Appraisal) -> Result<String> {
    let pin = std::env::var("PLINTH_PKCS11_PIN")
        .ok()
        .map(zeroize::Zeroizing::new);
    let store = plinth_ca::CaDir::open(dir, pin, verification_time(None)?)
        .with_context(|| format!("opening the CA in {}", dir.display()))?;
    let authority = store.ca().active()?;
    let nonce = args
        .nonce
        .as_deref()
        .map(hex::decode)
        .transpose()
        .context("--nonce must be hex")?;
    let verifier = VerifierId {
        developer: "plinth".to_owned(),
        build: format!("plinth {}", env!("CARGO_PKG_VERSION")),
    };
    Ok(issue_ear(
        appraisal,
        None,
        nonce.as_deref(),
        &verifier,
        &plinth_server::AuthorityEarSigner(authority),
    )?)
}

fn verify_ear(args: &VerifyEarArgs) -> Result<VerifiedEar> {
    let token = std::fs::read_to_string(&args.token)
        .with_context(|| format!("reading {}", args.token.display()))?;
    let bundle = std::fs::read_to_string(&args.bundle)
        .with_context(|| format!("reading {}", args.bundle.display()))?;
    Ok(plinth_policy::ear::verify_ear(token.trim(), &bundle)?)
}
