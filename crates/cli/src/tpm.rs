//! `plinth tpm ...`: TPM 2.0 quotes and EK certificates.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use plinth_core::{Digest, HashAlg};
use plinth_tpm::{PcrValues, Public, VerifiedQuote, verify_quote};
use serde_json::{Map, Value, json};

use crate::input::read_evidence;
use crate::output;

/// TPM subcommands.
#[derive(Subcommand)]
pub(crate) enum TpmCommand {
    /// Verify a TPM2_Quote: AK signature, TPM origin, nonce, and the supplied PCR values.
    VerifyQuote(VerifyQuoteArgs),
    /// Verify an EK certificate chain against a directory of TPM-maker roots.
    VerifyEk(crate::tpm_ek::VerifyEkArgs),
    /// Parse and replay a TCG event log file and show its boot state (unverified: use
    /// `verify-quote --event-log` to check a log against its quote).
    Eventlog(crate::tpm_eventlog::EventLogArgs),
}

#[derive(Args)]
pub(crate) struct VerifyQuoteArgs {
    /// The AK public area: TPMT_PUBLIC or TPM2B_PUBLIC (raw, base64 or hex).
    #[arg(long)]
    ak: PathBuf,
    /// The quote: TPMS_ATTEST as the TPM produced it.
    #[arg(long)]
    quote: PathBuf,
    /// The quote's TPMT_SIGNATURE.
    #[arg(long)]
    signature: PathBuf,
    /// The expected qualifying data (the challenge nonce), hex.
    #[arg(long)]
    nonce: String,
    /// PCR values as JSON: `{"sha256": {"0": "<hex>", ...}, ...}`, optionally under a
    /// top-level `"pcrs"` key. Required when the quote selects any PCR.
    #[arg(long)]
    pcrs: Option<PathBuf>,
    /// A TCG event log to verify together with the quote: it must replay exactly to the
    /// quoted PCRs. Its boot state is then reported.
    #[arg(long)]
    event_log: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: TpmCommand) -> ExitCode {
    match command {
        TpmCommand::VerifyQuote(args) => {
            let as_json = args.json;
            match verify_quote_command(&args).and_then(|quote| {
                let log = match &args.event_log {
                    Some(path) => Some(crate::tpm_eventlog::verify_with_quote(
                        &read_evidence(path)?,
                        &quote,
                    )?),
                    None => None,
                };
                Ok((quote, log))
            }) {
                Ok((quote, log)) => {
                    let mut value = quote_json(&quote);
                    let mut human = format!(
                        "quote verified: {} PCRs across {} bank(s), signed with {}, reset count {}",
                        quote.pcrs().iter().count(),
                        quote.selection().len(),
                        quote.signing_hash(),
                        quote.clock_info().reset_count
                    );
                    if let (Some(log), Value::Object(map)) = (log, &mut value) {
                        human = format!("{human}\n{}", crate::tpm_eventlog::verified_summary(&log));
                        let _previous = map.insert("event_log".into(), log);
                    }
                    output::success(as_json, &value, &human)
                }
                Err(error) => output::failure(as_json, &error),
            }
        }
        TpmCommand::VerifyEk(args) => crate::tpm_ek::run_verify_ek(args),
        TpmCommand::Eventlog(args) => crate::tpm_eventlog::run_eventlog(args),
    }
}

fn verify_quote_command(args: &VerifyQuoteArgs) -> Result<VerifiedQuote> {
    let ak =
        Public::from_either(&read_evidence(&args.ak)?).context("parsing the AK public area")?;
    let attest = read_evidence(&args.quote)?;
    let signature = read_evidence(&args.signature)?;
    let nonce = hex::decode(args.nonce.trim()).context("--nonce must be hex")?;
    let pcrs = match &args.pcrs {
        Some(path) => parse_pcrs_json(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )?,
        None => PcrValues::default(),
    };
    Ok(verify_quote(&ak, &attest, &signature, &nonce, &pcrs)?)
}

/// Parses `{"sha256": {"0": "<hex>"}}`, or the same under a top-level `"pcrs"` key.
pub(crate) fn parse_pcrs_json(bytes: &[u8]) -> Result<PcrValues> {
    let root: Value = serde_json::from_slice(bytes).context("PCR file is not JSON")?;
    let banks = root.get("pcrs").unwrap_or(&root);
    let Some(banks) = banks.as_object() else {
        bail!("PCR JSON must be an object of banks")
    };
    let mut pcrs = PcrValues::default();
    for (bank_name, values) in banks {
        let bank: HashAlg = bank_name.parse()?;
        let Some(values) = values.as_object() else {
            bail!("PCR bank {bank_name} must be an object")
        };
        for (index, value) in values {
            let index: u8 = index
                .parse()
                .with_context(|| format!("PCR index {index:?}"))?;
            let Some(hex) = value.as_str() else {
                bail!("PCR {bank_name}:{index} must be a hex string")
            };
            let digest =
                Digest::from_hex(bank, hex).with_context(|| format!("PCR {bank_name}:{index}"))?;
            pcrs.insert(bank, index, digest)?;
        }
    }
    Ok(pcrs)
}

/// `{"sha256": {"0": "<hex>", ...}}` for the given values.
pub(crate) fn pcrs_json(pcrs: &PcrValues) -> Value {
    let mut banks = Map::new();
    for (bank, index, value) in pcrs.iter() {
        let entry = banks
            .entry(bank.name())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(values) = entry {
            let _previous = values.insert(index.to_string(), Value::String(value.to_hex()));
        }
    }
    Value::Object(banks)
}

fn quote_json(quote: &VerifiedQuote) -> Value {
    let clock = quote.clock_info();
    json!({
        "verified": true,
        "signing_hash": quote.signing_hash().name(),
        "qualifying_data": hex::encode(quote.qualifying_data()),
        "qualified_signer": hex::encode(quote.qualified_signer()),
        "firmware_version": format!("{:#018x}", quote.firmware_version()),
        "clock": {
            "clock_ms": clock.clock,
            "reset_count": clock.reset_count,
            "restart_count": clock.restart_count,
            "safe": clock.safe,
        },
        "pcrs": pcrs_json(quote.pcrs()),
    })
}
