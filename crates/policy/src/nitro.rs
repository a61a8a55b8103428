//! Nitro rules: PCRs 0–4 and 8, debug mode, document age.

use plinth_core::{Digest, UnixTime};
use plinth_nitro::VerifiedDocument;

use crate::appraisal::{Component, Outcome, Recorder, one_of, tier};
use crate::policy::NitroRules;

/// Clock skew allowed between the NSM's timestamp and `now`, in milliseconds.
pub const NITRO_MAX_SKEW_MS: u64 = 60_000;

fn pcr_component(index: u8) -> Component {
    match index {
        3 => Component::Configuration,
        4 => Component::InstanceIdentity,
        _ => Component::Executables,
    }
}

pub(crate) fn appraise(
    rules: &NitroRules,
    doc: &VerifiedDocument,
    now: UnixTime,
    rec: &mut Recorder,
) {
    let document = doc.document();
    // The document chains to the pinned AWS root: genuine Nitro hardware.
    rec.vector.raise(Component::Hardware, tier::AFFIRMING);
    rec.claim("module_id", document.module_id());
    if let Some(id) = document.instance_id() {
        rec.claim("instance_id", id);
    }
    if let Some(id) = document.enclave_id() {
        rec.claim("enclave_id", id);
    }
    for index in [0_u8, 1, 2, 3, 4, 8] {
        if let Some(value) = document.pcr(index) {
            rec.claim(&format!("pcr{index}"), value.to_hex());
        }
    }
    for (index, allowed) in &rules.pcrs {
        let observed = document.pcr(*index);
        rec.check(
            format!("nitro.pcrs.{index}"),
            pcr_component(*index),
            observed.is_some_and(|o| allowed.contains(o)),
            observed.map_or_else(|| "absent".to_owned(), Digest::to_hex),
            one_of(allowed.iter().map(Digest::to_hex)),
        );
    }
    let debug = doc.is_debug();
    let outcome = match (debug, rules.allow_debug) {
        (false, _) => Outcome::Pass,
        (true, true) => Outcome::Warn,
        (true, false) => Outcome::Fail,
    };
    rec.record(
        "nitro.allow_debug",
        Component::Configuration,
        outcome,
        if debug {
            "debug enclave"
        } else {
            "production enclave"
        },
        if rules.allow_debug {
            "debug allowed"
        } else {
            "production enclave"
        },
    );
    if let Some(max_age) = rules.max_age_seconds {
        let max_age_ms = max_age.saturating_mul(1000);
        let timestamp = document.timestamp();
        let result = doc.verify_age(now, max_age_ms, NITRO_MAX_SKEW_MS);
        rec.check(
            "nitro.max_age_seconds",
            Component::Configuration,
            result.is_ok(),
            match result {
                Ok(()) => format!("produced {timestamp}, now {now}"),
                Err(e) => e.to_string(),
            },
            format!("at most {max_age} s old"),
        );
    }
}
