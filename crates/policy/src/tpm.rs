//! TPM rules: PCR values per bank, boot state from the verified event log, TPM identity.

use plinth_core::{Digest, HashAlg};
use plinth_crypto::PublicKey;
use plinth_tpm::{
    AllowListedEk, BootState, VerifiedAkCertificate, VerifiedEk, VerifiedEventLog, VerifiedQuote,
};

use crate::appraisal::{Component, Outcome, Recorder, one_of};
use crate::policy::TpmRules;

/// How the TPM is known. The caller guarantees the link to the quote: the quote was
/// verified with the AK this certificate certifies, or with an AK activated against this
/// EK (`plinth_tpm::PendingActivation::verify`).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum TpmIdentity<'a> {
    /// An EK certificate that chains to a configured vendor root.
    Ek(&'a VerifiedEk),
    /// An EK admitted by an allow-list.
    AllowListedEk(&'a AllowListedEk),
    /// An AK certificate that chains to a configured root (a cloud vTPM's AK certificate).
    AkCertificate(&'a VerifiedAkCertificate),
}

/// Verified TPM evidence.
#[derive(Debug, Clone, Copy)]
pub struct TpmEvidence<'a> {
    /// The verified quote.
    pub quote: &'a VerifiedQuote,
    /// The event log verified against that quote, when one was sent.
    pub event_log: Option<&'a VerifiedEventLog>,
    /// The TPM's identity.
    pub identity: TpmIdentity<'a>,
}

fn key_hash(key: &PublicKey) -> Option<Digest> {
    plinth_crypto::canonical_spki(key)
        .ok()
        .map(|spki| plinth_crypto::digest(HashAlg::Sha256, &spki))
}

fn pcr_component(index: u8) -> Component {
    match index {
        1 | 3 | 5 | 6 | 7 => Component::Configuration,
        _ => Component::Executables,
    }
}

pub(crate) fn appraise(rules: &TpmRules, evidence: &TpmEvidence<'_>, rec: &mut Recorder) {
    identity(rules, evidence.identity, rec);
    for (bank, index, allowed) in &rules.pcrs {
        let observed = evidence.quote.pcrs().get(*bank, *index);
        rec.check(
            format!("tpm.pcrs.{bank}.{index}"),
            pcr_component(*index),
            observed.is_some_and(|o| allowed.contains(o)),
            observed.map_or_else(|| "not quoted".to_owned(), Digest::to_hex),
            one_of(allowed.iter().map(Digest::to_hex)),
        );
    }
    if rules.has_boot_rules() {
        match evidence.event_log {
            Some(log) => boot(rules, evidence.quote, log, rec),
            None => rec.record(
                "tpm.boot",
                Component::Executables,
                Outcome::Fail,
                "no verified event log",
                "an event log that replays to the quote",
            ),
        }
    }
}

fn identity(rules: &TpmRules, identity: TpmIdentity<'_>, rec: &mut Recorder) {
    let (root, ek, ak) = match identity {
        TpmIdentity::Ek(ek) => (
            Some(ek.chain().anchor().fingerprint().clone()),
            key_hash(ek.public_key()),
            None,
        ),
        TpmIdentity::AllowListedEk(ek) => (None, Some(ek.spki_sha256().clone()), None),
        TpmIdentity::AkCertificate(ak) => (
            Some(ak.chain().anchor().fingerprint().clone()),
            None,
            key_hash(ak.public_key()),
        ),
    };
    // A TPM known by certificate or allow-list is genuine hardware to this policy.
    rec.vector
        .raise(Component::Hardware, crate::appraisal::tier::AFFIRMING);
    for (name, value) in [
        ("root_fingerprint", &root),
        ("ek_hash", &ek),
        ("ak_hash", &ak),
    ] {
        if let Some(value) = value {
            rec.claim(name, value.to_hex());
        }
    }
    for (rule, allowed, value) in [
        ("tpm.identity.roots", &rules.roots, &root),
        ("tpm.identity.ek_hashes", &rules.ek_hashes, &ek),
        ("tpm.identity.ak_hashes", &rules.ak_hashes, &ak),
    ] {
        if let Some(allowed) = allowed {
            rec.check(
                rule,
                Component::InstanceIdentity,
                value.as_ref().is_some_and(|v| allowed.contains(v)),
                value
                    .as_ref()
                    .map_or_else(|| "not known for this identity".to_owned(), Digest::to_hex),
                one_of(allowed.iter().map(Digest::to_hex)),
            );
        }
    }
}

fn boot(rules: &TpmRules, quote: &VerifiedQuote, log: &VerifiedEventLog, rec: &mut Recorder) {
    // The log must be the one verified against this quote.
    let mismatched: Vec<String> = log
        .verified_banks()
        .iter()
        .flat_map(|bank| log.verified_pcrs().iter().map(move |pcr| (*bank, *pcr)))
        .filter(|(bank, pcr)| {
            log.replayed()
                .get(*bank, *pcr)
                .is_some_and(|replayed| quote.pcrs().get(*bank, *pcr) != Some(replayed))
        })
        .map(|(bank, pcr)| format!("{bank}:{pcr}"))
        .collect();
    rec.check(
        "tpm.boot.event_log",
        Component::Executables,
        mismatched.is_empty(),
        if mismatched.is_empty() {
            "replays to the quote".to_owned()
        } else {
            format!("replays to other values in {}", mismatched.join(", "))
        },
        "an event log that replays to the quote",
    );
    let state = log.boot_state();
    if rules.require_secure_boot {
        let observed = state.secure_boot();
        rec.check(
            "tpm.boot.require_secure_boot",
            Component::Configuration,
            observed == Some(true),
            match observed {
                Some(true) => "enabled",
                Some(false) => "disabled",
                None => "not measured",
            },
            "enabled",
        );
    }
    if let Some(allowed) = &rules.boot_applications {
        boot_applications(allowed, &state, rec);
    }
    let cmdline = state.kernel_cmdline();
    let shown = cmdline.map_or_else(
        || "no measured command line".to_owned(),
        |c| format!("{c:?}"),
    );
    for needle in &rules.cmdline_contains {
        rec.check(
            "tpm.boot.cmdline_contains",
            Component::Configuration,
            cmdline.is_some_and(|c| c.contains(needle.as_str())),
            shown.clone(),
            format!("contains {needle:?}"),
        );
    }
    for needle in &rules.cmdline_excludes {
        rec.check(
            "tpm.boot.cmdline_excludes",
            Component::Configuration,
            cmdline.is_some_and(|c| !c.contains(needle.as_str())),
            shown.clone(),
            format!("does not contain {needle:?}"),
        );
    }
    if let Some(reference) = &rules.dbx_contains {
        let expected = format!("holds all {} reference entries", reference.len());
        match state.check_dbx(reference) {
            Ok(current) => rec.check(
                "tpm.boot.dbx_contains",
                Component::Configuration,
                true,
                format!("{} entries, reference included", current.entries()),
                expected,
            ),
            Err(e) => rec.check(
                "tpm.boot.dbx_contains",
                Component::Configuration,
                false,
                e.to_string(),
                expected,
            ),
        }
    }
}

fn boot_applications(allowed: &[Digest], state: &BootState, rec: &mut Recorder) {
    match state.boot_applications() {
        Some(apps) if !apps.is_empty() => {
            for (i, app) in apps.iter().enumerate() {
                let digests: Vec<String> = app
                    .digests
                    .iter()
                    .map(|d| format!("{}:{}", d.alg(), d.to_hex()))
                    .collect();
                rec.check(
                    format!("tpm.boot.boot_applications.{i}"),
                    Component::Executables,
                    app.digests.iter().any(|d| allowed.contains(d)),
                    format!(
                        "{} ({})",
                        digests.join(" "),
                        app.file.as_deref().unwrap_or("loaded from memory")
                    ),
                    one_of(allowed.iter().map(Digest::to_hex)),
                );
            }
        }
        _ => rec.record(
            "tpm.boot.boot_applications",
            Component::Executables,
            Outcome::Fail,
            "no verified boot application (PCR 4)",
            one_of(allowed.iter().map(Digest::to_hex)),
        ),
    }
}
