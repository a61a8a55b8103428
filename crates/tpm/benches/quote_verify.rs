//! Quote verification cost beside the raw signature check it contains, in the same run.
//!
//! For each AK type (RSA-2048 from the real GCE vTPM vector; ECC P-256 and RSA-2048 from
//! swtpm, in testdata/tpm/swtpm-quotes) it
//! measures, interleaved to share the machine's noise:
//! - `raw`: one signature verification through plinth-crypto (aws-lc-rs) over the same
//!   attest bytes with the same key — the floor;
//! - `quote`: the whole `verify_quote` (parse AK, attest and signature, key checks, the
//!   signature, magic, nonce, PCR digest over every selected PCR).
//!
//! Run: `cargo bench -p plinth-tpm --bench quote_verify`. Prints µs per operation, quotes
//! per second per core, and the ratio quote/raw (goal: ≤ 1.2).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark harness: any failure should abort loudly"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use plinth_core::{Digest, HashAlg};
use plinth_crypto::{PublicKey, SignatureScheme, ecdsa_der_from_scalars};
use plinth_tpm::{PcrValues, Public, verify_quote};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/tpm");

struct Case {
    label: &'static str,
    ak: Vec<u8>,
    attest: Vec<u8>,
    signature: Vec<u8>,
    nonce: Vec<u8>,
    pcrs: PcrValues,
    raw_key: PublicKey,
    raw_scheme: SignatureScheme,
    raw_signature: Vec<u8>,
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn pcrs(path: &str) -> PcrValues {
    let json: serde_json::Value = serde_json::from_slice(&read(path)).unwrap();
    let banks = json.get("pcrs").unwrap_or(&json);
    let mut pcrs = PcrValues::default();
    for (bank, values) in banks.as_object().unwrap() {
        let bank: HashAlg = bank.parse().unwrap();
        for (index, hex) in values.as_object().unwrap() {
            let digest = Digest::from_hex(bank, hex.as_str().unwrap()).unwrap();
            pcrs.insert(bank, index.parse().unwrap(), digest).unwrap();
        }
    }
    pcrs
}

/// The signature's scheme and provider-form bytes, decoded by hand from the TPMT_SIGNATURE
/// (RSASSA: alg, hash, size, sig; ECDSA: alg, hash, size r, r, size s, s).
fn raw_signature(sig: &[u8]) -> (SignatureScheme, Vec<u8>) {
    let u16_at = |i: usize| usize::from(u16::from_be_bytes([sig[i], sig[i + 1]]));
    let hash = match u16_at(2) {
        0x000b => HashAlg::Sha256,
        0x000c => HashAlg::Sha384,
        other => panic!("hash {other:#x}"),
    };
    match u16_at(0) {
        0x0014 => (SignatureScheme::RsaPkcs1(hash), sig[6..].to_vec()),
        0x0018 => {
            let r_len = u16_at(4);
            let r = &sig[6..6 + r_len];
            let s = &sig[8 + r_len..];
            (
                SignatureScheme::EcdsaDer(hash),
                ecdsa_der_from_scalars(r, s).unwrap(),
            )
        }
        other => panic!("scheme {other:#x}"),
    }
}

fn case(
    label: &'static str,
    dir: &str,
    ak: &str,
    attest: &str,
    sig: &str,
    nonce: Vec<u8>,
    pcr_file: &str,
) -> Case {
    let ak = read(&format!("{dir}/{ak}"));
    let signature = read(&format!("{dir}/{sig}"));
    let (raw_scheme, raw_signature) = raw_signature(&signature);
    let raw_key = Public::from_either(&ak).unwrap().public_key().unwrap();
    Case {
        label,
        attest: read(&format!("{dir}/{attest}")),
        ak,
        signature,
        nonce,
        pcrs: pcrs(&format!("{dir}/{pcr_file}")),
        raw_key,
        raw_scheme,
        raw_signature,
    }
}

/// Runs `f` repeatedly for about `budget` and returns the mean time per call.
fn time_per_call(budget: Duration, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut calls: u32 = 0;
    while start.elapsed() < budget {
        for _ in 0..16 {
            f();
        }
        calls += 16;
    }
    start.elapsed() / calls
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let nonce = |dir: &str| {
        let text = String::from_utf8(read(&format!("{dir}/nonce.hex"))).unwrap();
        hex::decode(text.trim()).unwrap()
    };
    let cases = [
        case(
            "RSA-2048 AK (GCE vTPM, 24 PCRs)",
            "quotes/gce-cos85",
            "ak_pub.tpmt_public.bin",
            "quote_sha256.tpms_attest.bin",
            "quote_sha256.tpmt_signature.bin",
            vec![0x90, 0x09],
            "pcrs.json",
        ),
        case(
            "ECC P-256 AK (swtpm, 9 PCRs)",
            "swtpm-quotes/ecc",
            "ak_pub.tpmt_public.bin",
            "quote_sha256.tpms_attest.bin",
            "quote_sha256.tpmt_signature.bin",
            nonce("swtpm-quotes/ecc"),
            "pcrs.json",
        ),
        case(
            "RSA-2048 AK (swtpm, 9 PCRs)",
            "swtpm-quotes/rsa",
            "ak_pub.tpmt_public.bin",
            "quote_sha256.tpms_attest.bin",
            "quote_sha256.tpmt_signature.bin",
            nonce("swtpm-quotes/rsa"),
            "pcrs.json",
        ),
    ];
    // `cargo test --all-targets` runs this without `--bench`: one short round, as a smoke test.
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let (rounds, slice) = if measuring {
        (15, Duration::from_millis(200))
    } else {
        (1, Duration::from_millis(1))
    };
    println!("quote verification vs raw signature check (median of {rounds} interleaved rounds)");
    for c in &cases {
        let ak = Public::from_either(&c.ak).unwrap();
        let _verified = verify_quote(&ak, &c.attest, &c.signature, &c.nonce, &c.pcrs)
            .expect("bench quote must verify");
        let (mut raw, mut full) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            raw.push(time_per_call(slice, || {
                c.raw_key
                    .verify(
                        c.raw_scheme,
                        black_box(&c.attest),
                        black_box(&c.raw_signature),
                    )
                    .unwrap();
            }));
            full.push(time_per_call(slice, || {
                let ak = Public::from_either(black_box(&c.ak)).unwrap();
                let verified = verify_quote(
                    &ak,
                    black_box(&c.attest),
                    black_box(&c.signature),
                    &c.nonce,
                    &c.pcrs,
                );
                let _verified = black_box(verified).unwrap();
            }));
        }
        let (raw, full) = (median(raw), median(full));
        println!(
            "{:<34} raw {:>8.1} µs   quote {:>8.1} µs   {:>7.0} quotes/s/core   ratio {:.2}",
            c.label,
            raw.as_secs_f64() * 1e6,
            full.as_secs_f64() * 1e6,
            1.0 / full.as_secs_f64(),
            full.as_secs_f64() / raw.as_secs_f64()
        );
    }
}
