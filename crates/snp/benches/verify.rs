//! SEV-SNP verification cost, beside the raw ECDSA P-384 verification it is built on.
//!
//! `cargo bench -p plinth-snp --bench verify` measures, on the real Milan report of
//! confidential-containers/trustee (`testdata/sev-snp/trustee/test-report.bin`):
//! - `p384_verify`: one ECDSA P-384/SHA-384 verification through `plinth-crypto` over the
//!   report's signed bytes (the floor);
//! - `report_cached_chain`: [`verify_report`] with a pre-verified (cached) VCEK;
//! - `full_chain`: [`verify`] from DER: parse the VCEK, check ASK←ARK and VCEK←ASK
//!   (RSA-4096 PSS) and the report;
//! - `full_chain_preparsed`: the same with the certificates already parsed.
//!
//! After the run it prints each estimate as a multiple of `p384_verify` (read back from
//! criterion's own estimates).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark code: a failure should abort loudly"
)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::Criterion;
use plinth_core::{HashAlg, UnixTime};
use plinth_crypto::SignatureScheme;
use plinth_snp::{
    AmdRoots, AttestationReport, Collateral, Product, SigningKey, verify, verify_endorsement,
    verify_report,
};

const GROUP: &str = "snp";

fn testdata(rel: &str) -> Vec<u8> {
    let path = format!("{}/../../testdata/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn benches(c: &mut Criterion) {
    let report = testdata("sev-snp/trustee/test-report.bin");
    let vcek = testdata("sev-snp/trustee/test-vcek.der");
    let now = UnixTime::parse("2024-06-01T00:00:00Z").unwrap();
    let roots = AmdRoots::builtin().unwrap();
    let intermediates: Vec<Vec<u8>> = plinth_snp::builtin_intermediates()
        .unwrap()
        .iter()
        .map(|c| c.der().to_vec())
        .collect();

    let collateral_from_der = || {
        let mut c = Collateral::new();
        c.add_vcek(&vcek).unwrap();
        for der in &intermediates {
            c.add_intermediate(der).unwrap();
        }
        c
    };
    let collateral = collateral_from_der();
    let key = collateral.endorsement(SigningKey::Vcek).unwrap();
    let endorsement = verify_endorsement(key, &collateral, &roots, Product::Milan, now).unwrap();

    // The raw primitive, over the same bytes, with the same key and signature.
    let parsed = AttestationReport::parse(&report).unwrap();
    let signed = parsed.signed_bytes().to_vec();
    let le = |offset: usize| {
        let mut be: Vec<u8> = report[offset..offset + 48].to_vec();
        be.reverse();
        be
    };
    let signature = plinth_crypto::ecdsa_der_from_scalars(&le(0x2A0), &le(0x2E8)).unwrap();
    let public_key = key.public_key().clone();
    public_key
        .verify(
            SignatureScheme::EcdsaDer(HashAlg::Sha384),
            &signed,
            &signature,
        )
        .unwrap();

    let mut group = c.benchmark_group(GROUP);
    let _ = group.bench_function("p384_verify", |b| {
        b.iter(|| {
            public_key
                .verify(
                    SignatureScheme::EcdsaDer(HashAlg::Sha384),
                    black_box(&signed),
                    &signature,
                )
                .unwrap();
        });
    });
    let _ = group.bench_function("report_cached_chain", |b| {
        b.iter(|| verify_report(black_box(&report), &endorsement, now).unwrap());
    });
    let _ = group.bench_function("full_chain_preparsed", |b| {
        b.iter(|| verify(black_box(&report), &collateral, &roots, None, now).unwrap());
    });
    let _ = group.bench_function("full_chain", |b| {
        b.iter(|| {
            let mut c = Collateral::new();
            c.add_vcek(black_box(&vcek)).unwrap();
            for der in &intermediates {
                c.add_intermediate(der).unwrap();
            }
            verify(black_box(&report), &c, &roots, None, now).unwrap()
        });
    });
    group.finish();
}

/// Where criterion writes its estimates (the same search it does).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
            PathBuf::from,
        )
        .join("criterion")
}

fn mean_ns(id: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(GROUP)
        .join(id)
        .join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    // The slope when criterion fitted one (what it prints as "time"), else the mean.
    json["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| json["mean"]["point_estimate"].as_f64())
}

fn print_ratios() {
    let Some(base) = mean_ns("p384_verify") else {
        println!(
            "(no estimates found under {}; ratios not printed)",
            criterion_dir().display()
        );
        return;
    };
    println!(
        "\ntime relative to one ECDSA P-384 verify ({:.1} µs):",
        base / 1000.0
    );
    for id in [
        "p384_verify",
        "report_cached_chain",
        "full_chain_preparsed",
        "full_chain",
    ] {
        if let Some(ns) = mean_ns(id) {
            println!("  {id:<22} {:>9.1} µs  {:>5.2}×", ns / 1000.0, ns / base);
        }
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    print_ratios();
}
