//! plinth-policy: the Authenticode parser of PE/COFF images, the policy TOML parser and
//! the EAR token verifier.
//!
//! The first input byte picks the mode:
//! - 0: the rest is a PE/COFF image, hashed with SHA-256;
//! - 1: the rest is a policy file (UTF-8), parsed and validated;
//! - 2: the rest is an OVMF image, its SEV-SNP launch measurement computed (1 vCPU);
//! - otherwise: the rest is an EAR token, verified against a fixed JWKS.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_core::HashAlg;

const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => {
            let _ = plinth_policy::authenticode::authenticode_digest(rest, HashAlg::Sha256);
        }
        1 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = plinth_policy::Policy::parse("fuzz.toml", text);
            }
        }
        2 => {
            let launch = plinth_policy::snp_measure::SnpLaunch {
                ovmf: rest,
                kernel: Some(b"kernel"),
                initrd: None,
                cmdline: Some("console=ttyS0"),
                vcpus: 1,
                vcpu_signature: 0x00a0_0f11,
                guest_features: 1,
            };
            let _ = plinth_policy::snp_measure::snp_launch_measurement(&launch);
        }
        _ => {
            if let Ok(token) = std::str::from_utf8(rest) {
                let _ = plinth_policy::ear::verify_ear(token, JWKS);
            }
        }
    }
});
