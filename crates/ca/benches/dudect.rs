//! A dudect-style statistical timing check of the signing core (Reparaz, Balasch and
//! Verbauwhede, "Dude, is my code constant time?", DATE 2017).
//!
//! Signing time is sampled for two classes of secret input, interleaved in random order so
//! that drift and noise fall on both alike, and Welch's t-test compares the two timing
//! distributions:
//! - **fixed vs random keys**: class A signs with a fixed key, class B with a key drawn
//!   at random from a pool of freshly generated keys; the message is the same. A signing
//!   time that depends on the private key shows up as a large |t|. Class A draws, the same
//!   way, from a pool of copies of its one key, so that both classes touch memory alike (a
//!   single hot key object against a pool of colder ones would measure the cache, not the
//!   secret).
//! - **short vs random keys**: class A's key is a scalar with 192 leading zero bits, the
//!   classic case of a bit-length-dependent scalar multiplication.
//! - **null (A/A)**: both classes draw from pools of the same fixed key. No secret
//!   differs, so its |t| shows what the machine's noise alone produces at this sample size;
//!   the comparisons above mean something only against it.
//! - **control** (to show the harness can see a difference): class B signs a message one
//!   SHA-256 block longer, a public difference of a fraction of a percent.
//!
//! Each comparison is also made on the samples below several percentiles of the pooled
//! distribution (dudect's cropping, which removes interrupts and other long outliers).
//! dudect's reading: |t| above 4.5 is evidence of a timing difference (above 10, strong
//! evidence); below it, none was found at this number of samples — which is not a proof of
//! constant time.
//!
//! Run: `cargo bench -p plinth-ca --bench dudect [-- <samples per comparison>]`
//! (default 200000, about ten seconds each on one core). Under `cargo test` (no `--bench`
//! argument) it takes 2000 samples, as a smoke test.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::as_conversions,
    reason = "a benchmark harness: failures abort, and counts become floats for statistics"
)]

use std::hint::black_box;
use std::time::Instant;

use plinth_ca::{ECDSA_P256_SHA256, Signer, SoftwareKey};
use plinth_core::SecureRandom;
use plinth_crypto::{Curve, EcdsaSigningKey, SystemRandom};

/// Running mean and variance (Welford), for one class.
#[derive(Default, Clone, Copy)]
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn push(&mut self, x: f64) {
        self.n += 1.0;
        let delta = x - self.mean;
        self.mean += delta / self.n;
        self.m2 += delta * (x - self.mean);
    }

    fn variance(&self) -> f64 {
        self.m2 / (self.n - 1.0)
    }
}

/// Welch's t statistic between two classes.
fn welch_t(a: &Moments, b: &Moments) -> f64 {
    (a.mean - b.mean) / (a.variance() / a.n + b.variance() / b.n).sqrt()
}

/// Interleaves `samples` measurements of `measure(class)` in random class order; returns
/// (class, nanoseconds) pairs.
fn sample(samples: usize, mut measure: impl FnMut(bool) -> u64) -> Vec<(bool, u64)> {
    let mut coins = vec![0_u8; samples];
    SystemRandom.fill(&mut coins).unwrap();
    // Warm up caches, frequency and branch predictors; discarded.
    for &coin in coins.iter().take(samples / 20) {
        let _warm = measure(coin & 1 == 1);
    }
    coins
        .iter()
        .map(|&coin| (coin & 1 == 1, measure(coin & 1 == 1)))
        .collect()
}

/// t for all samples and for those below each pooled percentile; returns the rows.
fn analyse(samples: &[(bool, u64)]) -> Vec<(String, f64, f64, f64)> {
    let mut sorted: Vec<u64> = samples.iter().map(|s| s.1).collect();
    sorted.sort_unstable();
    let mut rows = Vec::new();
    for (label, cut) in [
        ("all".to_owned(), u64::MAX),
        ("< p99".to_owned(), sorted[sorted.len() * 99 / 100]),
        ("< p90".to_owned(), sorted[sorted.len() * 90 / 100]),
        ("< p75".to_owned(), sorted[sorted.len() * 75 / 100]),
        ("< p50".to_owned(), sorted[sorted.len() / 2]),
    ] {
        let (mut a, mut b) = (Moments::default(), Moments::default());
        for &(class, ns) in samples.iter().filter(|s| s.1 < cut) {
            if class {
                b.push(ns as f64);
            } else {
                a.push(ns as f64);
            }
        }
        rows.push((label, a.mean, b.mean, welch_t(&a, &b)));
    }
    rows
}

fn report(title: &str, samples: &[(bool, u64)]) -> f64 {
    println!("{title} ({} samples)", samples.len());
    let mut max = 0.0_f64;
    for (label, mean_a, mean_b, t) in analyse(samples) {
        println!("  {label:<6} mean A {mean_a:>9.0} ns   mean B {mean_b:>9.0} ns   t = {t:>8.2}");
        max = max.max(t.abs());
    }
    let verdict = if max > 10.0 {
        "strong evidence of a timing difference"
    } else if max > 4.5 {
        "evidence of a timing difference"
    } else {
        "no timing difference found"
    };
    println!("  max |t| = {max:.2}: {verdict} (dudect thresholds 4.5 and 10)");
    max
}

/// Hands out the given bytes: generates a key with a chosen scalar.
struct Scalar([u8; 32]);

impl SecureRandom for Scalar {
    fn fill(&self, dest: &mut [u8]) -> Result<(), plinth_core::RandomError> {
        dest.copy_from_slice(&self.0[..dest.len()]);
        Ok(())
    }
}

const POOL: usize = 256;
/// The pools are rebuilt this many times per comparison, so that where the allocator
/// happened to put either class's key objects averages out.
const BATCHES: usize = 8;

/// What class B's keys are.
#[derive(Clone, Copy)]
enum ClassB<'a> {
    /// A fresh random key per object.
    Random,
    /// Copies of this key (the null comparison).
    Same(&'a [u8]),
}

/// A pool of `POOL` key objects holding the key `a` and a pool of `POOL` class-B keys,
/// allocated in random order and loaded the same way (from PKCS#8), so that the two
/// classes differ in the secret value only.
fn pools(a: &[u8], b: ClassB<'_>) -> (Vec<SoftwareKey>, Vec<SoftwareKey>) {
    // Class B's PKCS#8 documents are all made first, so that making them leaves the
    // allocator in no particular state between the pool objects (which would put one class
    // in recycled memory and the other not).
    let b_pkcs8: Vec<Vec<u8>> = (0..POOL)
        .map(|_| match b {
            ClassB::Random => EcdsaSigningKey::generate(Curve::P256, &SystemRandom)
                .unwrap()
                .to_pkcs8()
                .unwrap()
                .to_vec(),
            ClassB::Same(pkcs8) => pkcs8.to_vec(),
        })
        .collect();
    let (mut pool_a, mut pool_b) = (Vec::with_capacity(POOL), Vec::with_capacity(POOL));
    let mut coins = vec![0_u8; 4 * POOL];
    SystemRandom.fill(&mut coins).unwrap();
    let mut coins = coins.into_iter().cycle();
    while pool_a.len() < POOL || pool_b.len() < POOL {
        let to_a = pool_b.len() == POOL || (pool_a.len() < POOL && coins.next().unwrap() & 1 == 0);
        if to_a {
            pool_a.push(SoftwareKey::from_pkcs8(&ECDSA_P256_SHA256, a).unwrap());
        } else {
            let pkcs8 = &b_pkcs8[pool_b.len()];
            pool_b.push(SoftwareKey::from_pkcs8(&ECDSA_P256_SHA256, pkcs8).unwrap());
        }
    }
    (pool_a, pool_b)
}

/// Samples signing with a key drawn at random from pool A or pool B, over `BATCHES`
/// freshly built pairs of pools.
fn keys_vs_keys(samples: usize, a: &[u8], b: ClassB<'_>, message: &[u8]) -> Vec<(bool, u64)> {
    let mut all = Vec::with_capacity(samples);
    for _ in 0..BATCHES {
        let (pool_a, pool_b) = pools(a, b);
        let mut picks = vec![0_u8; 2 * samples / BATCHES];
        SystemRandom.fill(&mut picks).unwrap();
        let mut next_pick = picks.iter().cycle();
        all.extend(sample(samples / BATCHES, |class_b| {
            // The key is chosen before the clock starts; only the signature is timed.
            let pool = if class_b { &pool_b } else { &pool_a };
            let key: &dyn Signer = &pool[usize::from(*next_pick.next().unwrap()) % POOL];
            let start = Instant::now();
            let signature = key.sign(black_box(message));
            let elapsed = start.elapsed();
            let _signature = black_box(signature).unwrap();
            u64::try_from(elapsed.as_nanos()).unwrap()
        }));
    }
    all
}

fn main() {
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let samples: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(if measuring { 200_000 } else { 2_000 });
    let message = [0x5a_u8; 400];
    let longer = [0x5a_u8; 464];
    println!("dudect-style timing check of Signer::sign (ECDSA P-256, SoftwareKey, aws-lc-rs)");

    let fixed = EcdsaSigningKey::generate(Curve::P256, &SystemRandom)
        .unwrap()
        .to_pkcs8()
        .unwrap();
    let t_fixed = report(
        "fixed key (A) vs random keys (B), same message",
        &keys_vs_keys(samples, &fixed, ClassB::Random, &message),
    );

    let mut short_scalar = [0_u8; 32];
    short_scalar[24..].copy_from_slice(&[0x9d, 0x3b, 0x41, 0x07, 0xc2, 0x5e, 0x88, 0x13]);
    let short = EcdsaSigningKey::generate(Curve::P256, &Scalar(short_scalar)).unwrap();
    let t_short = report(
        "64-bit scalar key (A) vs random keys (B), same message",
        &keys_vs_keys(
            samples,
            &short.to_pkcs8().unwrap(),
            ClassB::Random,
            &message,
        ),
    );

    let t_null = report(
        "null: fixed key (A) vs the same fixed key (B), same message",
        &keys_vs_keys(samples, &fixed, ClassB::Same(&fixed), &message),
    );

    let one = SoftwareKey::from_pkcs8(&ECDSA_P256_SHA256, &fixed).unwrap();
    let control = sample(samples, |longer_message| {
        let message: &[u8] = if longer_message { &longer } else { &message };
        let start = Instant::now();
        let signature = one.sign(black_box(message));
        let elapsed = start.elapsed();
        let _signature = black_box(signature).unwrap();
        u64::try_from(elapsed.as_nanos()).unwrap()
    });
    let t_control = report(
        "control: 400-byte (A) vs 464-byte (B) message, fixed key",
        &control,
    );
    println!(
        "summary: max |t| fixed-vs-random keys {t_fixed:.2}, short-vs-random keys {t_short:.2}, \
         null A/A {t_null:.2}; public control {t_control:.2}"
    );
}
