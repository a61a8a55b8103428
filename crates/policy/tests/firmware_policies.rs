//! Every policy in firmware-policies/ against its real vectors: each affirms, and each with
//! one rule tightened is contraindicated, naming that rule. Then the lint errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

mod common;

use std::path::PathBuf;

use plinth_core::UnixTime;
use plinth_policy::{
    Appraisal, Component, Error, Evidence, Outcome, Policy, PolicyPlatform, TpmEvidence,
    TpmIdentity, Verdict, appraise, tier,
};

fn policy_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(common::POLICIES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// Appraises `text` (a policy) against the vectors its name belongs to.
fn appraise_text(path: &str, text: &str) -> Appraisal {
    let policy = Policy::parse(path, text).unwrap_or_else(|e| panic!("{e}"));
    match policy.name() {
        "gce-cos85" => {
            let gce = common::gce();
            let evidence = Evidence::Tpm(TpmEvidence {
                quote: &gce.quote,
                event_log: Some(&gce.log),
                identity: TpmIdentity::AkCertificate(&gce.ak_cert),
            });
            appraise(&policy, &evidence, common::at("2026-11-23T00:00:00Z"))
        }
        "nitro-anjuna-sample" => {
            let doc = common::nitro();
            // Ten seconds after the NSM produced it.
            let now = UnixTime::from_millis(common::NITRO_TIMESTAMP_MS + 10_000);
            appraise(&policy, &Evidence::Nitro(&doc), now)
        }
        "snp-milan-oak" => appraise(
            &policy,
            &Evidence::Snp(&common::snp_milan()),
            common::at("2025-08-01T00:00:00Z"),
        ),
        "snp-turin-oak" => appraise(
            &policy,
            &Evidence::Snp(&common::snp_turin()),
            common::at("2025-08-01T00:00:00Z"),
        ),
        other => panic!("{path}: no vectors known for policy {other:?}"),
    }
}

fn read_policy(path: &PathBuf) -> String {
    String::from_utf8(std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn every_firmware_policy_affirms_its_vectors() {
    let files = policy_files();
    assert_eq!(files.len(), 4, "{files:?}");
    for path in files {
        let name = path.display().to_string();
        let appraisal = appraise_text(&name, &read_policy(&path));
        let failed: Vec<_> = appraisal
            .rules()
            .iter()
            .filter(|r| r.outcome() != Outcome::Pass)
            .collect();
        assert!(failed.is_empty(), "{name}: {failed:#?}");
        assert_eq!(appraisal.verdict(), Verdict::Affirming, "{name}");
        let identity = appraisal.identity().unwrap();
        assert_eq!(identity.spiffe_id().trust_domain().as_str(), "example.org");
        assert!(!identity.selectors().is_empty(), "{name}");
        assert_eq!(
            appraisal.trust_vector().get(Component::Hardware),
            tier::AFFIRMING,
            "{name}"
        );
        // The file name is the policy name, and the hash is of the exact text.
        assert_eq!(
            Some(appraisal.policy_name()),
            path.file_stem().and_then(|s| s.to_str())
        );
        assert_eq!(
            appraisal.policy_hash(),
            &plinth_crypto::digest(plinth_core::HashAlg::Sha256, &std::fs::read(&path).unwrap())
        );
    }
}

#[test]
fn identities_come_from_the_evidence() {
    let gce = appraise_text(
        "gce",
        &read_policy(&PathBuf::from(format!(
            "{}/gce-cos85.toml",
            common::POLICIES
        ))),
    );
    assert_eq!(
        gce.identity().unwrap().spiffe_id().to_string(),
        "spiffe://example.org/node/tpm/ak/6a114d75ad6e7b75f7da33dead50f2e29bf509108646ced2e588bebc35f0d5b6"
    );
    let turin = appraise_text(
        "turin",
        &read_policy(&PathBuf::from(format!(
            "{}/snp-turin-oak.toml",
            common::POLICIES
        ))),
    );
    assert_eq!(
        turin.identity().unwrap().spiffe_id().to_string(),
        "spiffe://example.org/node/snp/Turin/3b42092f69c656d3"
    );
    assert_eq!(turin.platform(), PolicyPlatform::Snp);
}

/// One tightening per policy: the text to replace, its replacement, and the rule that must
/// then fail (and be the only one).
const TIGHTENINGS: [(&str, &str, &str, &str); 6] = [
    (
        "gce-cos85.toml",
        "0 = [\"0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf\"]",
        "0 = [\"1f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf\"]",
        "tpm.pcrs.sha256.0",
    ),
    (
        "gce-cos85.toml",
        "cmdline_excludes = [\"cros_debug\", \"init=/bin/sh\"]",
        "cmdline_excludes = [\"cros_debug\", \"module.sig_enforce=1\"]",
        "tpm.boot.cmdline_excludes",
    ),
    (
        "nitro-anjuna-sample.toml",
        "0 = [\"2d151586",
        "0 = [\"3d151586",
        "nitro.pcrs.0",
    ),
    (
        "snp-milan-oak.toml",
        "measurements = [\"195b01b7",
        "measurements = [\"295b01b7",
        "snp.measurements",
    ),
    (
        "snp-turin-oak.toml",
        "microcode = 71",
        "microcode = 72",
        "snp.min_tcb.microcode",
    ),
    (
        "snp-turin-oak.toml",
        "fmc = 0",
        "fmc = 1",
        "snp.min_tcb.fmc",
    ),
];

#[test]
fn every_firmware_policy_with_one_rule_tightened_is_contraindicated_naming_it() {
    for file in policy_files() {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            TIGHTENINGS.iter().any(|t| t.0 == name),
            "{name} has no tightening test"
        );
    }
    for (file, from, to, rule) in TIGHTENINGS {
        let text = read_policy(&PathBuf::from(format!("{}/{file}", common::POLICIES)));
        assert!(text.contains(from), "{file}: {from}");
        let appraisal = appraise_text(file, &text.replacen(from, to, 1));
        assert_eq!(appraisal.verdict(), Verdict::Contraindicated, "{file}");
        let failed: Vec<&str> = appraisal
            .failures()
            .map(plinth_policy::RuleResult::rule)
            .collect();
        assert_eq!(failed, [rule], "{file}");
        assert!(appraisal.identity().is_none(), "{file}");
        let result = appraisal.failures().next().unwrap();
        assert_ne!(result.observed(), result.expected());
        assert_eq!(
            appraisal.trust_vector().get(result.component()),
            tier::CONTRAINDICATED
        );
    }
}

#[test]
fn nitro_document_older_than_max_age_is_contraindicated() {
    let text = read_policy(&PathBuf::from(format!(
        "{}/nitro-anjuna-sample.toml",
        common::POLICIES
    )));
    let policy = Policy::parse("nitro", &text).unwrap();
    let doc = common::nitro();
    let late = UnixTime::from_millis(common::NITRO_TIMESTAMP_MS + 301_000);
    let appraisal = appraise(&policy, &Evidence::Nitro(&doc), late);
    let failed: Vec<&str> = appraisal
        .failures()
        .map(plinth_policy::RuleResult::rule)
        .collect();
    assert_eq!(failed, ["nitro.max_age_seconds"]);
}

#[test]
fn evidence_of_another_platform_is_contraindicated() {
    let text = read_policy(&PathBuf::from(format!(
        "{}/snp-milan-oak.toml",
        common::POLICIES
    )));
    let policy = Policy::parse("milan", &text).unwrap();
    let doc = common::nitro();
    let appraisal = appraise(
        &policy,
        &Evidence::Nitro(&doc),
        UnixTime::from_millis(common::NITRO_TIMESTAMP_MS),
    );
    assert_eq!(appraisal.verdict(), Verdict::Contraindicated);
    assert!(appraisal.failures().any(|r| r.rule() == "platform"));
}

#[test]
fn tpm_boot_rules_without_an_event_log_fail() {
    let text = read_policy(&PathBuf::from(format!(
        "{}/gce-cos85.toml",
        common::POLICIES
    )));
    let policy = Policy::parse("gce", &text).unwrap();
    let gce = common::gce();
    let evidence = Evidence::Tpm(TpmEvidence {
        quote: &gce.quote,
        event_log: None,
        identity: TpmIdentity::AkCertificate(&gce.ak_cert),
    });
    let appraisal = appraise(&policy, &evidence, common::at("2026-11-23T00:00:00Z"));
    let failed: Vec<&str> = appraisal
        .failures()
        .map(plinth_policy::RuleResult::rule)
        .collect();
    assert_eq!(failed, ["tpm.boot"]);
}

// ---- lint ---------------------------------------------------------------------------------

const MINIMAL: &str = r#"version = 1
name = "t"
platform = "snp"

[identity]
trust_domain = "example.org"
spiffe_id = "spiffe://{trust_domain}/snp/{chip_id}"
svid_ttl_seconds = 60

[snp]
measurements = ["195b01b74976a1faba13bd85eaf787958f0a46e6dddd45c5bdbf8673522777842b8057ae5d866b75416efb62012deaa3"]
"#;

fn lint(text: &str) -> Error {
    Policy::parse("bad.toml", text).unwrap_err()
}

#[test]
fn minimal_policy_parses() {
    let policy = Policy::parse("ok.toml", MINIMAL).unwrap();
    assert_eq!(policy.platform(), PolicyPlatform::Snp);
    assert_eq!(policy.identity().svid_ttl_seconds(), 60);
}

#[test]
fn rejects_unknown_key_with_syntax_at_its_line_and_column() {
    let text = MINIMAL.replace("[snp]\n", "[snp]\nallow_debugging = true\n");
    let Error::Syntax { location, message } = lint(&text) else {
        panic!("not a syntax error")
    };
    assert_eq!(
        (location.source.as_str(), location.line, location.column),
        ("bad.toml", 11, 1)
    );
    assert!(message.contains("allow_debugging"), "{message}");
    assert!(lint(&text).to_string().starts_with("bad.toml:11:1: "));
}

#[test]
fn rejects_wrong_type_with_syntax_at_its_line_and_column() {
    let text = MINIMAL.replace("svid_ttl_seconds = 60", "svid_ttl_seconds = \"60\"");
    let Error::Syntax { location, .. } = lint(&text) else {
        panic!("not a syntax error")
    };
    assert_eq!((location.line, location.column), (8, 20));
}

#[test]
fn rejects_bad_hex_with_bad_hex_at_the_value() {
    let text = MINIMAL.replace("[\"195b01b7", "[\"x95b01b7");
    let Error::BadHex {
        location, field, ..
    } = lint(&text)
    else {
        panic!("not a hex error")
    };
    assert_eq!(field, "snp.measurements");
    assert_eq!((location.line, location.column), (11, 17));
    // Right hex, wrong length.
    let short = MINIMAL.replace("deaa3\"]", "dea\"]");
    assert!(matches!(lint(&short), Error::BadHex { .. }));
}

#[test]
fn rejects_bad_template_with_bad_template_at_the_value() {
    for (from, to) in [
        ("/snp/{chip_id}", "/snp/{chip}"),
        ("/snp/{chip_id}", "/snp/{chip_id"),
        ("/snp/{chip_id}", "/snp/x"),
        ("spiffe://{trust_domain}", "https://{trust_domain}"),
    ] {
        let text = MINIMAL.replace(from, to);
        let Error::BadTemplate { location, .. } = lint(&text) else {
            panic!("{to}: not a template error")
        };
        assert_eq!((location.line, location.column), (7, 13), "{to}");
    }
}

#[test]
fn rejects_out_of_range_values_with_invalid_value() {
    for (from, to, field) in [
        (
            "svid_ttl_seconds = 60",
            "svid_ttl_seconds = 0",
            "svid_ttl_seconds",
        ),
        ("version = 1", "version = 2", "version"),
        (
            "trust_domain = \"example.org\"",
            "trust_domain = \"Example..org\"",
            "trust_domain",
        ),
        ("platform = \"snp\"", "platform = \"sgx\"", "platform"),
        ("platform = \"snp\"", "platform = \"tpm\"", "platform"),
        (
            "measurements = [\"195b",
            "measurements = []\nx = [\"195b",
            "snp.measurements",
        ),
    ] {
        let text = MINIMAL.replace(from, to);
        match Policy::parse("bad.toml", &text) {
            Err(Error::InvalidValue { field: f, .. }) => assert_eq!(f, field, "{to}"),
            Err(Error::Syntax { .. }) if to.contains("x = ") => {}
            other => panic!("{to}: {other:?}"),
        }
    }
}

#[test]
fn rejects_oversized_policy_with_too_large() {
    let text = format!("{MINIMAL}#{}", "x".repeat(plinth_policy::MAX_POLICY_LEN));
    assert!(matches!(lint(&text), Error::TooLarge { .. }));
}

#[test]
fn rejects_a_policy_checking_no_measurement_with_invalid_value() {
    let text = MINIMAL.replace("measurements = [", "host_data = [\"00\"]\nx = [");
    let text = text.replace("host_data = [\"00\"]", "allow_smt = false");
    let text = text.replace("x = [\"195b01b74976a1faba13bd85eaf787958f0a46e6dddd45c5bdbf8673522777842b8057ae5d866b75416efb62012deaa3\"]\n", "");
    match Policy::parse("bad.toml", &text) {
        Err(Error::InvalidValue {
            field, location, ..
        }) => {
            assert_eq!(field, "platform");
            assert_eq!((location.line, location.column), (3, 12));
        }
        other => panic!("{other:?}"),
    }
}
