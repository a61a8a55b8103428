//! `plinth tpm eventlog <file>`: a TCG event log read from a file — parsed, replayed, and its
//! boot state shown, all marked unverified — and the `--event-log` part of `plinth tpm
//! verify-quote`, where the log is checked against the quote it came with.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use plinth_tpm::eventlog::efi::{CertificateInfo, SignatureEntry, SignatureValue, guids};
use plinth_tpm::eventlog::{
    BootState, EventLog, LogFormat, Provenance, ReplayedPcrs, SeparatorState,
};
use plinth_tpm::{VerifiedQuote, verify_event_log};
use serde_json::{Map, Value, json};

use crate::input::read_evidence;
use crate::output;
use crate::tpm::pcrs_json;

#[derive(Args)]
pub(crate) struct EventLogArgs {
    /// The event log (`/sys/kernel/security/tpm0/binary_bios_measurements`): raw, base64
    /// or hex.
    file: PathBuf,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

/// Parses and replays a log file and prints its boot state. Nothing is verified (there is
/// no quote), and the output says so; the command fails only when the log does not parse.
pub(crate) fn run_eventlog(args: EventLogArgs) -> ExitCode {
    let EventLogArgs {
        file,
        json: as_json,
    } = args;
    let result = read_evidence(&file)
        .and_then(|bytes| EventLog::parse(&bytes).context("parsing the event log"));
    match result {
        Ok(log) => {
            let replayed = log.replay();
            let state = log.boot_state_unverified();
            let mut value = log_json(&log, &replayed, &state);
            if let Value::Object(map) = &mut value {
                let _previous = map.insert("verified".into(), Value::Bool(false));
            }
            let human = format!(
                "{}\n{}\n(read from a file alone: nothing here is verified; use `plinth tpm \
                 verify-quote ... --event-log` to check it against a quote)",
                log_summary(&log, &replayed),
                state_text(&state)
            );
            output::success(as_json, &value, &human)
        }
        Err(error) => output::failure(as_json, &error),
    }
}

/// Verifies `log_bytes` against a verified quote and describes the result: the replayed
/// PCRs, what was verified, and the boot state drawn from verified PCRs only.
pub(crate) fn verify_with_quote(log_bytes: &[u8], quote: &VerifiedQuote) -> Result<Value> {
    let verified =
        verify_event_log(log_bytes, quote).context("event log does not match the quote")?;
    let state = verified.boot_state();
    let mut value = log_json(verified.log(), verified.replayed(), &state);
    if let Value::Object(map) = &mut value {
        let _previous = map.insert("verified".into(), Value::Bool(true));
        let banks: Vec<&str> = verified.verified_banks().iter().map(|b| b.name()).collect();
        let _previous = map.insert("verified_banks".into(), json!(banks));
        let pcrs: Vec<u8> = verified.verified_pcrs().iter().copied().collect();
        let _previous = map.insert("verified_pcrs".into(), json!(pcrs));
        let mut uncovered = Map::new();
        for (bank, pcr) in verified.uncovered_pcrs() {
            if let Value::Array(list) = uncovered
                .entry(bank.name())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                list.push(json!(pcr));
            }
        }
        let _previous = map.insert("uncovered_pcrs".into(), Value::Object(uncovered));
        let _previous = map.insert("summary".into(), Value::String(state_text(&state)));
    }
    Ok(value)
}

/// One line for human output after a verified quote.
pub(crate) fn verified_summary(value: &Value) -> String {
    let pcrs = value["verified_pcrs"].as_array().map_or(0, Vec::len);
    let banks: Vec<&str> = value["verified_banks"]
        .as_array()
        .map(|b| b.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    format!(
        "event log verified: replays exactly to the quote in {} ({pcrs} PCRs accounted for)\n{}",
        banks.join(", "),
        value["summary"].as_str().unwrap_or_default()
    )
}

fn format_name(format: LogFormat) -> &'static str {
    match format {
        LogFormat::Sha1 => "sha1",
        LogFormat::CryptoAgile => "crypto-agile",
        _ => "other",
    }
}

fn log_json(log: &EventLog, replayed: &ReplayedPcrs, state: &BootState) -> Value {
    json!({
        "format": format_name(log.format()),
        "events": log.events().len(),
        "banks": log.banks().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "unreplayable_banks": replayed.unreplayable_banks().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "startup_locality": replayed.startup_locality(),
        "pcrs": pcrs_json(replayed.values()),
        "boot_state": boot_state_json(state),
    })
}

fn log_summary(log: &EventLog, replayed: &ReplayedPcrs) -> String {
    let banks: Vec<String> = log.banks().iter().map(ToString::to_string).collect();
    let mut text = format!(
        "event log: {} format, {} events, banks {}",
        format_name(log.format()),
        log.events().len(),
        banks.join(", ")
    );
    if !replayed.unreplayable_banks().is_empty() {
        let names: Vec<String> = replayed
            .unreplayable_banks()
            .iter()
            .map(ToString::to_string)
            .collect();
        let _ok = write!(
            text,
            " ({} parsed but not replayable here)",
            names.join(", ")
        );
    }
    for (bank, pcr, value) in replayed.values().iter() {
        let _ok = write!(text, "\n  {bank}:{pcr:<2} {value}");
    }
    text
}

fn entry_json(entry: &SignatureEntry) -> Value {
    let owner = entry.owner.to_string();
    match &entry.value {
        SignatureValue::Certificate(cert) => json!({
            "type": "x509",
            "owner": owner,
            "sha256_fingerprint": cert.sha256_fingerprint(),
            "subject": cert.subject(),
        }),
        SignatureValue::Hash { kind, hash } => json!({
            "type": hash_kind(*kind),
            "owner": owner,
            "hash": hex::encode(hash),
        }),
        SignatureValue::Other { kind, data } => json!({
            "type": kind.to_string(),
            "owner": owner,
            "data": hex::encode(data),
        }),
        _ => json!({ "owner": owner }),
    }
}

fn hash_kind(kind: plinth_tpm::eventlog::efi::Guid) -> String {
    match kind {
        guids::EFI_CERT_SHA256 => "sha256".into(),
        guids::EFI_CERT_SHA1 => "sha1".into(),
        guids::EFI_CERT_SHA384 => "sha384".into(),
        guids::EFI_CERT_SHA512 => "sha512".into(),
        guids::EFI_CERT_X509_SHA256 => "x509_sha256".into(),
        other => other.to_string(),
    }
}

fn database_json(entries: Option<&[SignatureEntry]>) -> Value {
    entries.map_or(Value::Null, |entries| {
        Value::Array(entries.iter().map(entry_json).collect())
    })
}

fn separator_name(state: SeparatorState) -> String {
    match state {
        SeparatorState::Present => "present".into(),
        SeparatorState::Error => "error".into(),
        SeparatorState::Other(value) => format!("other ({value:#010x})"),
        SeparatorState::Missing => "missing".into(),
        _ => "unknown".into(),
    }
}

fn boot_state_json(state: &BootState) -> Value {
    let separators: Map<String, Value> = (0u8..)
        .zip(state.separators())
        .map(|(pcr, s)| (pcr.to_string(), Value::String(separator_name(*s))))
        .collect();
    json!({
        "provenance": match state.provenance() {
            Provenance::Verified => "verified",
            _ => "unverified",
        },
        "pcrs": state.pcrs().iter().collect::<Vec<_>>(),
        "secure_boot": state.secure_boot(),
        "deployed_mode": state.deployed_mode(),
        "setup_mode": state.setup_mode(),
        "pk": database_json(state.pk()),
        "kek": database_json(state.kek()),
        "db": database_json(state.db()),
        "dbx": database_json(state.dbx()),
        "authorities": state.authorities().map(|list| list.iter().map(|a| json!({
            "event": a.event,
            "variable": a.variable,
            "sha256_fingerprint": a.certificate.as_ref().map(CertificateInfo::sha256_fingerprint),
            "subject": a.certificate.as_ref().and_then(CertificateInfo::subject),
            "data": (!a.data.is_empty()).then(|| hex::encode(&a.data)),
        })).collect::<Vec<_>>()),
        "boot_applications": state.boot_applications().map(|apps| apps.iter().map(|app| json!({
            "event": app.event,
            "authenticode": app.digests.iter().map(|d| (d.alg().name().to_owned(), Value::String(d.to_hex()))).collect::<Map<_, _>>(),
            "device_path": app.device_path,
            "file": app.file,
        })).collect::<Vec<_>>()),
        "kernel_cmdline": state.kernel_cmdline(),
        "bootloader": state.bootloader().map(|b| json!({ "name": b.name, "shim": b.shim, "basis": b.basis })),
        "separators": separators,
        "exit_boot_services": state.exit_boot_services(),
        "crtm_version": state.crtm_version(),
        "unbound_events": state.unbound_events(),
    })
}

fn yes_no(value: Option<bool>, yes: &str, no: &str) -> String {
    match value {
        Some(true) => yes.to_owned(),
        Some(false) => no.to_owned(),
        None => "not measured".to_owned(),
    }
}

fn count(entries: Option<&[SignatureEntry]>) -> String {
    entries.map_or_else(|| "not measured".to_owned(), |e| e.len().to_string())
}

/// The boot state as a few human lines.
fn state_text(state: &BootState) -> String {
    let mut text = format!(
        "boot state ({}):\n  secure boot: {} (deployed mode: {})\n  PK {} · KEK {} · db {} · dbx {} entries",
        match state.provenance() {
            Provenance::Verified => "verified PCRs only",
            _ => "unverified",
        },
        yes_no(state.secure_boot(), "on", "off"),
        yes_no(state.deployed_mode(), "yes", "no"),
        count(state.pk()),
        count(state.kek()),
        count(state.db()),
        count(state.dbx()),
    );
    match state.boot_applications() {
        Some(apps) => {
            let _ok = write!(text, "\n  boot applications ({}):", apps.len());
            for app in apps {
                let digest = app
                    .digests
                    .last()
                    .map(|d| format!("{}:{}", d.alg(), d.to_hex()))
                    .unwrap_or_default();
                let path = app
                    .file
                    .as_deref()
                    .unwrap_or(if app.device_path.is_empty() {
                        "(from memory)"
                    } else {
                        &app.device_path
                    });
                let _ok = write!(text, "\n    #{:<3} {path}  {digest}", app.event);
            }
        }
        None => text.push_str("\n  boot applications: not verified"),
    }
    let _ok = write!(
        text,
        "\n  kernel command line: {}",
        state.kernel_cmdline().unwrap_or("not measured")
    );
    match state.bootloader() {
        Some(b) => {
            let shim = if b.shim { "shim → " } else { "" };
            let _ok = write!(text, "\n  boot loader: {shim}{} ({})", b.name, b.basis);
        }
        None => text.push_str("\n  boot loader: unknown"),
    }
    let separators: Vec<String> = state
        .separators()
        .iter()
        .map(|s| separator_name(*s))
        .collect();
    let _ok = write!(text, "\n  separators PCR 0-7: {}", separators.join(" "));
    let _ok = write!(
        text,
        "\n  exit boot services: {}",
        yes_no(state.exit_boot_services(), "reached", "not reached")
    );
    if !state.unbound_events().is_empty() {
        let _ok = write!(
            text,
            "\n  events whose data does not hash to their digest (data ignored): {:?}",
            state.unbound_events()
        );
    }
    text
}
