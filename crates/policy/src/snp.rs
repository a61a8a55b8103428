//! SEV-SNP rules: measurement, minimum TCB per component, guest policy flags, host data,
//! ID and author keys, product and report version.

use plinth_snp::VerifiedReport;

use crate::appraisal::{Component, Outcome, Recorder, one_of, tier};
use crate::policy::SnpRules;

fn allowed(
    rec: &mut Recorder,
    rule: &str,
    component: Component,
    list: Option<&Vec<Vec<u8>>>,
    observed: &[u8],
) {
    if let Some(list) = list {
        rec.check(
            rule,
            component,
            list.iter().any(|v| v.as_slice() == observed),
            hex::encode(observed),
            one_of(list.iter().map(hex::encode)),
        );
    }
}

/// A guest policy permission: absent passes; present fails unless the policy allows it,
/// and then passes with a warning (a reviewer should see it).
fn flag(rec: &mut Recorder, rule: &str, set: bool, allowed: bool, what: &str) {
    let outcome = match (set, allowed) {
        (false, _) => Outcome::Pass,
        (true, true) => Outcome::Warn,
        (true, false) => Outcome::Fail,
    };
    rec.record(
        rule,
        Component::Configuration,
        outcome,
        if set {
            format!("{what} allowed")
        } else {
            format!("{what} not allowed")
        },
        if allowed {
            format!("{what} may be allowed")
        } else {
            format!("{what} not allowed")
        },
    );
}

pub(crate) fn appraise(rules: &SnpRules, report: &VerifiedReport, rec: &mut Recorder) {
    // The report chains to the pinned ARK of its product: genuine AMD hardware, with
    // encrypted guest memory.
    rec.vector.raise(Component::Hardware, tier::AFFIRMING);
    rec.vector.raise(Component::RuntimeOpaque, tier::AFFIRMING);
    let product = report.product();
    rec.claim("product", product.name());
    if let Some(chip) = report.chip_id() {
        rec.claim("chip_id", hex::encode(chip));
    }
    rec.claim("measurement", hex::encode(report.measurement()));
    rec.claim("host_data", hex::encode(report.host_data()));
    rec.claim("id_key_digest", hex::encode(report.id_key_digest()));
    rec.claim("author_key_digest", hex::encode(report.author_key_digest()));
    rec.claim("report_id", hex::encode(report.report().report_id()));

    if let Some(products) = &rules.products {
        rec.check(
            "snp.products",
            Component::Hardware,
            products.contains(&product),
            product.name(),
            one_of(products.iter().map(|p| p.name())),
        );
    }
    if let Some(min) = rules.min_report_version {
        let version = report.report().version();
        rec.check(
            "snp.min_report_version",
            Component::Configuration,
            version >= min,
            version.to_string(),
            format!(">= {min}"),
        );
    }
    allowed(
        rec,
        "snp.measurements",
        Component::Executables,
        rules.measurements.as_ref(),
        report.measurement(),
    );
    let tcb = report.reported_tcb();
    for (component, min) in &rules.min_tcb {
        let level = tcb.component(*component);
        rec.check(
            format!("snp.min_tcb.{}", component.name()),
            Component::Hardware,
            level.is_some_and(|l| l >= *min),
            level.map_or_else(
                || format!("no {component} in {} TCB", product.name()),
                |l| l.to_string(),
            ),
            format!(">= {min}"),
        );
    }
    let policy = report.policy();
    flag(
        rec,
        "snp.allow_debug",
        policy.debug_allowed(),
        rules.allow_debug,
        "debug",
    );
    flag(
        rec,
        "snp.allow_migration_agent",
        policy.migration_agent_allowed(),
        rules.allow_migration_agent,
        "migration agent",
    );
    if !rules.allow_smt {
        let smt = report.platform_info().smt_enabled();
        rec.check(
            "snp.allow_smt",
            Component::Configuration,
            !smt,
            if smt { "SMT enabled" } else { "SMT disabled" },
            "SMT disabled",
        );
    }
    allowed(
        rec,
        "snp.host_data",
        Component::Configuration,
        rules.host_data.as_ref(),
        report.host_data(),
    );
    allowed(
        rec,
        "snp.id_key_digests",
        Component::Executables,
        rules.id_key_digests.as_ref(),
        report.id_key_digest(),
    );
    allowed(
        rec,
        "snp.author_key_digests",
        Component::Executables,
        rules.author_key_digests.as_ref(),
        report.author_key_digest(),
    );
}
