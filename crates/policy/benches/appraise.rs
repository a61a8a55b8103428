//! Appraisal cost beside verification cost, per evidence, in the same run.
//!
//! For each firmware policy and its real vectors (read into memory first) it measures,
//! interleaved:
//! - `verify`: the platform verifier on the raw evidence bytes (TPM: quote + event log + AK
//!   certificate chain; Nitro: document and its chain, uncached; SEV-SNP: report with its
//!   VCEK chain);
//! - `appraise`: `plinth_policy::appraise` of the verified evidence against the policy.
//!
//! Run: `cargo bench -p plinth-policy --bench appraise`. Goal: appraisal under 10 % of
//! verification.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark harness: any failure should abort loudly"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use plinth_core::UnixTime;
use plinth_nitro::NitroTrust;
use plinth_policy::{Evidence, Policy, TpmEvidence, TpmIdentity, Verdict, appraise};
use plinth_snp::{AmdRoots, Collateral};
use plinth_tpm::{EkRoots, Public, verify_ak_certificate, verify_event_log, verify_quote};

/// Mean time per call of `f`, run for about `budget`.
fn time_per_call(budget: Duration, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut calls: u32 = 0;
    while start.elapsed() < budget {
        f();
        calls += 1;
    }
    start.elapsed() / calls
}

fn policy(name: &str) -> Policy {
    let path = format!("{}/{name}.toml", common::POLICIES);
    Policy::parse(&path, &std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Prints the median of `rounds` interleaved measurements of both closures and their ratio.
fn compare(label: &str, mut verify: impl FnMut(), mut appraise_once: impl FnMut()) {
    // `cargo test --all-targets` runs this without `--bench`: one short round, as a smoke test.
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let (rounds, slice) = if measuring {
        (11, Duration::from_millis(150))
    } else {
        (1, Duration::from_millis(1))
    };
    let (mut v, mut a) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        v.push(time_per_call(slice, &mut verify));
        a.push(time_per_call(slice, &mut appraise_once));
    }
    v.sort();
    a.sort();
    let (v, a) = (v[rounds / 2], a[rounds / 2]);
    println!(
        "{label:<24} verify {:>9.1} µs   appraise {:>7.1} µs   appraise/verify {:>5.1} %",
        v.as_secs_f64() * 1e6,
        a.as_secs_f64() * 1e6,
        100.0 * a.as_secs_f64() / v.as_secs_f64()
    );
}

fn main() {
    println!("appraisal vs verification (median of interleaved rounds; 11 with --bench)");

    let gce_policy = policy("gce-cos85");
    let gce = common::gce();
    let gce_at = common::at("2026-11-23T00:00:00Z");
    let gce_evidence = Evidence::Tpm(TpmEvidence {
        quote: &gce.quote,
        event_log: Some(&gce.log),
        identity: TpmIdentity::AkCertificate(&gce.ak_cert),
    });
    assert_eq!(
        appraise(&gce_policy, &gce_evidence, gce_at).verdict(),
        Verdict::Affirming
    );
    let file = |name: &str| common::read(&format!("tpm/quotes/gce-cos85/{name}"));
    let (ak, attest, signature, log, ak_cert) = (
        file("ak_pub.tpmt_public.bin"),
        file("quote_sha256.tpms_attest.bin"),
        file("quote_sha256.tpmt_signature.bin"),
        file("eventlog.bin"),
        file("ak_cert.der"),
    );
    let pcrs = gce.quote.pcrs().clone();
    let roots = EkRoots::from_der(
        [common::read("tpm/ca-roots/google-vtpm/tpm_ek_root_1.cer")],
        [common::read(
            "tpm/ca-roots/google-vtpm/tpm_ek_intermediate_2.crt",
        )],
    )
    .unwrap();
    compare(
        "TPM (GCE quote + log)",
        || {
            let ak = Public::from_tpmt(&ak).unwrap();
            let quote = verify_quote(&ak, &attest, &signature, &[0x90, 0x09], &pcrs).unwrap();
            drop(black_box(verify_event_log(&log, &quote).unwrap()));
            let cert = verify_ak_certificate(&ak_cert, &[], &roots, gce_at).unwrap();
            cert.check_public_matches(&ak).unwrap();
        },
        || drop(black_box(appraise(&gce_policy, &gce_evidence, gce_at))),
    );

    let nitro_policy = policy("nitro-anjuna-sample");
    let doc = common::nitro();
    let nitro_at = UnixTime::from_millis(common::NITRO_TIMESTAMP_MS + 10_000);
    let nitro_bytes = common::read(common::NITRO_DOC);
    let trust = NitroTrust::aws_root_g1();
    let produced = UnixTime::from_millis(common::NITRO_TIMESTAMP_MS);
    compare(
        "Nitro (cold chain)",
        || {
            drop(black_box(
                plinth_nitro::verify(&nitro_bytes, &trust, produced).unwrap(),
            ));
        },
        || {
            drop(black_box(appraise(
                &nitro_policy,
                &Evidence::Nitro(&doc),
                nitro_at,
            )));
        },
    );

    let snp_policy = policy("snp-turin-oak");
    let report = common::snp_turin();
    let snp_at = common::at("2025-08-01T00:00:00Z");
    let report_bytes = common::read("sev-snp/oak/turin_oc_report.bin");
    let mut collateral = Collateral::new().with_builtin_intermediates().unwrap();
    collateral
        .add_endorsement(&common::read("sev-snp/oak/turin_oc_vcek.der"))
        .unwrap();
    let amd_roots = AmdRoots::builtin().unwrap();
    compare(
        "SEV-SNP (Turin, chain)",
        || {
            let verified = plinth_snp::verify(&report_bytes, &collateral, &amd_roots, None, snp_at);
            drop(black_box(verified.unwrap()));
        },
        || {
            drop(black_box(appraise(
                &snp_policy,
                &Evidence::Snp(&report),
                snp_at,
            )));
        },
    );
}
