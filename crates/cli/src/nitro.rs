//! `plinth nitro ...`: AWS Nitro Enclaves attestation documents.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use plinth_core::UnixTime;
use plinth_nitro::{NitroTrust, VerifiedDocument, pcr};
use serde_json::{Map, Value, json};

use crate::clock::verification_time;
use crate::input::read_evidence;
use crate::output;

/// Nitro subcommands.
#[derive(Subcommand)]
pub(crate) enum NitroCommand {
    /// Verify an attestation document: COSE_Sign1 structure, ES384 signature, certificate
    /// chain to the pinned AWS Nitro root at the given time, and optionally the nonce.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// The attestation document: COSE_Sign1 bytes (raw, base64 or hex).
    doc: PathBuf,
    /// Verify as of this time: RFC 3339 (`2024-01-24T18:14:25Z`) or Unix milliseconds.
    /// Default: the current system time.
    #[arg(long)]
    at: Option<String>,
    /// The nonce the document must carry, hex (compared in constant time).
    #[arg(long)]
    nonce: Option<String>,
    /// SHA-256 fingerprint (hex) of the root to pin instead of AWS's Nitro Enclaves root G1.
    #[arg(long, value_name = "HEX")]
    root_sha256: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: NitroCommand) -> ExitCode {
    match command {
        NitroCommand::Verify(args) => match verify_command(&args) {
            Ok((verified, context)) => {
                let value = document_json(&verified, &context);
                output::success(args.json, &value, &human(&verified, &context))
            }
            Err(error) => output::failure(args.json, &error),
        },
    }
}

/// What the verification was run against, for the report.
struct Run {
    at: UnixTime,
    trust: NitroTrust,
    nonce_checked: bool,
}

fn verify_command(args: &VerifyArgs) -> Result<(VerifiedDocument, Run)> {
    let at = verification_time(args.at.as_deref())?;
    let trust = match &args.root_sha256 {
        Some(text) => NitroTrust::from_hex(text).context("--root-sha256")?,
        None => NitroTrust::aws_root_g1(),
    };
    let nonce = args
        .nonce
        .as_deref()
        .map(|text| hex::decode(text.trim()).context("--nonce must be hex"))
        .transpose()?;
    let bytes = read_evidence(&args.doc)?;
    let verified = plinth_nitro::verify(&bytes, &trust, at)?;
    if let Some(nonce) = &nonce {
        verified.verify_nonce(nonce)?;
    }
    Ok((
        verified,
        Run {
            at,
            trust,
            nonce_checked: nonce.is_some(),
        },
    ))
}

fn document_json(verified: &VerifiedDocument, context: &Run) -> Value {
    let doc = verified.document();
    let pcrs: Map<String, Value> = doc
        .pcrs()
        .iter()
        .map(|(index, value)| (index.to_string(), json!(value.to_hex())))
        .collect();
    let hex_or_null = |bytes: Option<&[u8]>| bytes.map_or(Value::Null, |b| json!(hex::encode(b)));
    json!({
        "verified": true,
        "platform": "nitro",
        "module_id": doc.module_id(),
        "instance_id": doc.instance_id(),
        "enclave_id": doc.enclave_id(),
        "timestamp": doc.timestamp().to_string(),
        "timestamp_ms": doc.timestamp().as_millis(),
        "digest": "SHA384",
        "debug": verified.is_debug(),
        "pcrs": pcrs,
        "nonce": hex_or_null(doc.nonce()),
        "nonce_checked": context.nonce_checked,
        "user_data": hex_or_null(doc.user_data()),
        "public_key": hex_or_null(doc.public_key()),
        "bound_key_spki": verified.bound_key().ok().map(|key| hex::encode(key.spki_der())),
        "root_sha256": hex::encode(context.trust.root_sha256()),
        "verified_at": context.at.to_string(),
    })
}

fn human(verified: &VerifiedDocument, context: &Run) -> String {
    let doc = verified.document();
    let mut lines = vec![
        format!("nitro attestation document verified at {}", context.at),
        format!("  module     {}", doc.module_id()),
        format!("  produced   {}", doc.timestamp()),
        format!(
            "  debug      {}",
            if verified.is_debug() {
                "YES (PCR0-2 are zero)"
            } else {
                "no"
            }
        ),
    ];
    for index in pcr::NAMED {
        if let Some(value) = doc.pcr(index) {
            lines.push(format!("  pcr{index:<2}      {}", value.to_hex()));
        }
    }
    let nonce = match (doc.nonce(), context.nonce_checked) {
        (Some(n), true) => format!("{} (matches)", hex::encode(n)),
        (Some(n), false) => format!("{} (not checked: pass --nonce)", hex::encode(n)),
        (None, _) => "none".to_owned(),
    };
    lines.push(format!("  nonce      {nonce}"));
    let key = match (doc.public_key(), verified.bound_key()) {
        (None, _) => "none".to_owned(),
        (Some(_), Ok(key)) => format!("SubjectPublicKeyInfo, {} bytes", key.spki_der().len()),
        (Some(bytes), Err(_)) => format!("{} bytes, not a SubjectPublicKeyInfo", bytes.len()),
    };
    lines.push(format!("  public_key {key}"));
    lines.push(format!(
        "  user_data  {}",
        doc.user_data()
            .map_or_else(|| "none".to_owned(), |d| format!("{} bytes", d.len()))
    ));
    lines.join("\n")
}
