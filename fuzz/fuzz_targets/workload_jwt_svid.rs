//! The agent's ValidateJWTSVID check on arbitrary tokens and JWT bundles: the token is
//! what any local process sends to the Workload API. Whatever the bytes, it must not
//! panic; the first byte splits the input into the token and the bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_agent::workload::fuzzing::validate_jwt_svid;
use plinth_core::TrustDomain;

/// A JWKS with one P-256 JWT key (RFC 7515 appendix A.3's key), `kid` "k".
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let trust_domain = TrustDomain::new("example.org").unwrap();
    let (token, jwks) = match text.split_once('\n') {
        Some((token, jwks)) => (token, jwks),
        None => (text, JWKS),
    };
    let _ = validate_jwt_svid(token, "aud", &trust_domain, jwks, 1_767_225_600);
});
