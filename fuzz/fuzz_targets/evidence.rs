//! plinth-evidence: a hello and the evidence answering it, as an agent sends them, through
//! the challenge and the whole verification path (TPM, Nitro and SEV-SNP) with the
//! shipped policies loaded.
//!
//! Input: one length byte, then that many bytes of Hello (prost), then the Evidence
//! (prost). The pending challenge is built so that the nonce and platform checks pass
//! and the fuzzer reaches the platform verifiers.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use plinth_api::attestation::{Evidence, Hello, evidence};
use plinth_core::{Platform, UnixTime};
use plinth_evidence::{PendingChallenge, Trust, Verifier};
use plinth_policy::Policy;
use prost::Message;

static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
    let texts = [
        include_str!("../../firmware-policies/gce-cos85.toml"),
        include_str!("../../firmware-policies/nitro-anjuna-sample.toml"),
        include_str!("../../firmware-policies/snp-milan-oak.toml"),
    ];
    let policies = texts
        .iter()
        .filter_map(|t| Policy::parse("fuzz", t).ok())
        .collect();
    let trust = Trust::builtin().unwrap_or_else(|_| std::process::abort());
    Verifier::new(trust, policies)
});

fuzz_target!(|data: &[u8]| {
    let Some((&hello_len, rest)) = data.split_first() else {
        return;
    };
    let (hello_bytes, evidence_bytes) = rest.split_at(usize::from(hello_len).min(rest.len()));
    let now = UnixTime::from_millis(1_700_000_000_000);
    if let Ok(hello) = Hello::decode(hello_bytes) {
        let _ = VERIFIER.challenge(&hello, &plinth_crypto::SystemRandom, now, Duration::from_secs(60));
    }
    let Ok(evidence) = Evidence::decode(evidence_bytes) else {
        return;
    };
    let platform = match evidence.platform {
        Some(evidence::Platform::Tpm(_)) => Platform::Tpm,
        Some(evidence::Platform::Nitro(_)) => Platform::Nitro,
        Some(evidence::Platform::Snp(_)) => Platform::SevSnp,
        None => return,
    };
    let pending = PendingChallenge {
        nonce: evidence.nonce.clone(),
        platform,
        hello: hello_bytes.to_vec(),
        activation_commitment: Some([0; 32]),
        expires_at: UnixTime::from_millis(u64::MAX),
    };
    let _ = VERIFIER.verify(&pending, &evidence, now);
});
