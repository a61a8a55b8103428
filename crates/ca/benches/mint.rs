//! SVID minting cost beside the raw signature it contains, in the same run.
//!
//! For a P-256 and a P-384 CA it measures, interleaved to share the machine's noise:
//! - `raw`: one ECDSA signature through plinth-crypto (aws-lc-rs) over a message the size
//!   of an X.509-SVID's TBSCertificate — the floor;
//! - `x509`: `Ca::mint_x509_svid` (ID and TTL checks, bound-key parse, serial, rcgen
//!   layout, the signature, the chain copied out);
//! - `jwt`: `Ca::mint_jwt_svid`.
//!
//! Run: `cargo bench -p plinth-ca --bench mint`. Prints µs per operation, SVIDs per second
//! per core, and the ratios to the raw signature (goal for X.509-SVIDs: ≤ 1.5). Under
//! `cargo test` (no `--bench` argument) it makes one short round, as a smoke test.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a benchmark harness: any failure should abort loudly"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use plinth_ca::{CaDir, ECDSA_P256_SHA256, ECDSA_P384_SHA384, InitOptions};
use plinth_core::{BoundKey, SpiffeId, TrustDomain, UnixTime};
use plinth_crypto::{Curve, EcdsaSigningKey, SystemRandom};

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
    let now = UnixTime::from_millis(
        u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap(),
    );
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let (rounds, slice) = if measuring {
        (15, Duration::from_millis(200))
    } else {
        (1, Duration::from_millis(5))
    };
    println!("SVID minting vs one raw signature (median of {rounds} interleaved rounds, 1 thread)");
    for (label, algorithm, curve) in [
        ("P-256 CA", &ECDSA_P256_SHA256, Curve::P256),
        ("P-384 CA", &ECDSA_P384_SHA384, Curve::P384),
    ] {
        let dir = tempfile::TempDir::new().unwrap();
        let mut options = InitOptions::new(TrustDomain::new("bench.example").unwrap());
        options.algorithm = algorithm;
        let store = CaDir::init(
            &dir.path().join("ca"),
            &options,
            None,
            None,
            now,
            &SystemRandom,
        )
        .unwrap();
        let ca = store.ca();
        let workload = EcdsaSigningKey::generate(Curve::P256, &SystemRandom).unwrap();
        let bound = BoundKey::from_spki_der(workload.public_key().spki_der().to_vec());
        let id = SpiffeId::parse("spiffe://bench.example/ns/default/sa/worker").unwrap();
        let audience = ["https://api.bench.example".to_owned()];
        let svid = ca
            .mint_x509_svid(&id, &bound, None, now, &SystemRandom)
            .unwrap();
        let tbs = plinth_x509::Certificate::from_der(svid.leaf_der())
            .unwrap()
            .tbs_der()
            .to_vec();
        let raw_key = EcdsaSigningKey::generate(curve, &SystemRandom).unwrap();

        let (mut raw, mut x509, mut jwt) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            raw.push(time_per_call(slice, || {
                let _signature = black_box(raw_key.sign(black_box(&tbs)).unwrap());
            }));
            x509.push(time_per_call(slice, || {
                let svid = ca.mint_x509_svid(&id, black_box(&bound), None, now, &SystemRandom);
                let _svid = black_box(svid).unwrap();
            }));
            jwt.push(time_per_call(slice, || {
                let svid = ca.mint_jwt_svid(&id, black_box(&audience), None, now);
                let _svid = black_box(svid).unwrap();
            }));
        }
        let (raw, x509, jwt) = (median(raw), median(x509), median(jwt));
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{label}: raw signature {:>7.1} µs | X.509-SVID {:>7.1} µs ({:>6.0}/s/core, {:.2}× raw) \
             | JWT-SVID {:>7.1} µs ({:>6.0}/s/core, {:.2}× raw) | TBS {} bytes",
            us(raw),
            us(x509),
            1.0 / x509.as_secs_f64(),
            x509.as_secs_f64() / raw.as_secs_f64(),
            us(jwt),
            1.0 / jwt.as_secs_f64(),
            jwt.as_secs_f64() / raw.as_secs_f64(),
            tbs.len()
        );
    }
}
