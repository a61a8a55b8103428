//! Cost of Nitro document verification: the whole chain validated each time ("cold"),
//! the chain served by a warm [`ChainCache`] ("cached"), and, as the floor, one raw ES384
//! verification through plinth-crypto (the document's own signature).
//!
//! `cargo bench -p plinth-nitro --bench verify` prints criterion's figures, then the ratios
//! of the three medians from this same run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark harness: any failure should abort loudly"
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::Criterion;
use plinth_core::{HashAlg, UnixTime};
use plinth_crypto::{PublicKey, SignatureScheme};
use plinth_nitro::{
    ChainCache, ChainSource, NitroTrust, ParsedDocument, verify, verify_with_cache,
};

const DOC: &str = "anjuna/attestdoc/sample_prod_doc.bin";
const TIMESTAMP_MS: u64 = 1_616_018_515_685;
const GROUP: &str = "nitro";
const COLD: &str = "verify_cold_chain";
const CACHED: &str = "verify_cached_chain";
const RAW: &str = "es384_raw_verify";

fn document() -> Vec<u8> {
    let path = format!("{}/../../testdata/nitro/{DOC}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Sig_structure, signature and leaf key of the document, for the raw ES384 floor.
fn raw_es384_inputs(bytes: &[u8]) -> (PublicKey, Vec<u8>, Vec<u8>) {
    let sign1 = <coset::CoseSign1 as coset::CborSerializable>::from_slice(bytes).unwrap();
    let tbs = sign1.tbs_data(b"");
    let parsed = ParsedDocument::parse(bytes).unwrap();
    let leaf =
        plinth_x509::Certificate::from_der(parsed.unverified_document().certificate()).unwrap();
    (leaf.public_key().unwrap(), tbs, sign1.signature)
}

fn benches(c: &mut Criterion) {
    let bytes = document();
    let trust = NitroTrust::aws_root_g1();
    let now = UnixTime::from_millis(TIMESTAMP_MS);
    let mut group = c.benchmark_group(GROUP);

    let _ = group.bench_function(COLD, |b| {
        b.iter(|| verify(black_box(&bytes), &trust, now).unwrap());
    });

    let mut cache = ChainCache::default();
    let warm = verify_with_cache(&bytes, &trust, now, &mut cache).unwrap();
    assert_eq!(warm.chain_source(), ChainSource::Verified);
    let _ = group.bench_function(CACHED, |b| {
        b.iter(|| {
            let verified = verify_with_cache(black_box(&bytes), &trust, now, &mut cache).unwrap();
            debug_assert_eq!(verified.chain_source(), ChainSource::Cached);
            verified
        });
    });

    let (key, tbs, signature) = raw_es384_inputs(&bytes);
    let scheme = SignatureScheme::EcdsaFixed(HashAlg::Sha384);
    let _ = group.bench_function(RAW, |b| {
        b.iter(|| {
            key.verify(scheme, black_box(&tbs), black_box(&signature))
                .unwrap();
        });
    });
    group.finish();
}

/// Criterion's median estimate for one benchmark of this run, in nanoseconds.
fn median_ns(dir: &Path, id: &str) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(GROUP).join(id).join("new/estimates.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("median")?.get("point_estimate")?.as_f64()
}

fn print_ratios(dir: &Path) {
    let (Some(cold), Some(cached), Some(raw)) = (
        median_ns(dir, COLD),
        median_ns(dir, CACHED),
        median_ns(dir, RAW),
    ) else {
        println!(
            "(no estimates under {}: ratios need a full `cargo bench` run)",
            dir.display()
        );
        return;
    };
    println!();
    println!("Nitro verification, medians of this run:");
    println!("  {COLD:<22} {:>9.1} µs", cold / 1e3);
    println!("  {CACHED:<22} {:>9.1} µs", cached / 1e3);
    println!("  {RAW:<22} {:>9.1} µs", raw / 1e3);
    println!("  cold / cached          {:>9.2}x", cold / cached);
    println!("  cold / raw ES384       {:>9.2}x", cold / raw);
    println!("  cached / raw ES384     {:>9.2}x", cached / raw);
}

fn main() {
    // Criterion's own default location, made explicit so the ratios can be read back.
    let dir = std::env::var_os("CRITERION_HOME").map_or_else(
        || {
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion"),
                |target| PathBuf::from(target).join("criterion"),
            )
        },
        PathBuf::from,
    );
    let mut criterion = Criterion::default()
        .output_directory(&dir)
        .configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    // Without `--bench` (as under `cargo test`) criterion runs each benchmark once and
    // records nothing, so there is nothing to compare.
    if std::env::args().any(|arg| arg == "--bench") {
        print_ratios(&dir);
    }
}
