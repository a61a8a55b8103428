//! EAR tokens signed by plinth-ca's signing core verify offline with the bundle's JWKS;
//! a flipped byte anywhere does not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

mod common;

use plinth_ca::{Authority, CaDir, InitOptions};
use plinth_core::{BoundKey, TrustDomain, UnixTime};
use plinth_crypto::{Curve, EcdsaSigningKey, SystemRandom};
use plinth_policy::ear::{
    EAR_PROFILE, EarAlgorithm, EarSigner, VerifierId, bound_key_thumbprint, issue_ear, verify_ear,
};
use plinth_policy::{EarError, Evidence, Policy, appraise};

/// The CA's active authority's JWT key, as the server hands it to EAR issuance.
struct CaSigner<'a>(&'a Authority);

impl EarSigner for CaSigner<'_> {
    fn algorithm(&self) -> EarAlgorithm {
        match self.0.jwt_signer().algorithm().jws_name() {
            "ES256" => EarAlgorithm::Es256,
            _ => EarAlgorithm::Es384,
        }
    }
    fn key_id(&self) -> &str {
        self.0.jwt_key_id()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        self.0.jwt_signer().sign(message).map_err(|e| e.to_string())
    }
}

fn ca(dir: &tempfile::TempDir) -> CaDir {
    let options = InitOptions::new(TrustDomain::new("example.org").unwrap());
    // The CA's certificates must be valid at the time the test runs.
    let now = UnixTime::from_millis(
        u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap(),
    );
    CaDir::init(
        &dir.path().join("ca"),
        &options,
        None,
        None,
        now,
        &SystemRandom,
    )
    .unwrap()
}

struct Issued {
    token: String,
    jwks: String,
    jwt_jwks: String,
    policy_hash: String,
    bound: BoundKey,
}

fn issue() -> Issued {
    let dir = tempfile::tempdir().unwrap();
    let store = ca(&dir);
    let text = std::fs::read_to_string(format!("{}/snp-turin-oak.toml", common::POLICIES)).unwrap();
    let policy = Policy::parse("snp-turin-oak.toml", &text).unwrap();
    let report = common::snp_turin();
    let appraisal = appraise(
        &policy,
        &Evidence::Snp(&report),
        common::at("2025-08-01T00:00:00Z"),
    );
    let key = EcdsaSigningKey::generate(Curve::P256, &SystemRandom).unwrap();
    let bound = BoundKey::from_spki_der(key.public_key().spki_der().to_vec());
    let verifier = VerifierId {
        developer: "https://example.invalid/plinth".to_owned(),
        build: "plinth-policy test".to_owned(),
    };
    let authority = store.ca().active().unwrap();
    let token = issue_ear(
        &appraisal,
        Some(&bound),
        Some(b"nonce"),
        &verifier,
        &CaSigner(authority),
    )
    .unwrap();
    Issued {
        token,
        jwks: store.ca().bundle().to_spiffe_jwks(),
        jwt_jwks: store.ca().bundle().to_jwt_jwks(),
        policy_hash: format!("sha256:{}", policy.hash().to_hex()),
        bound,
    }
}

#[test]
fn ear_verifies_offline_with_the_bundle_jwks() {
    let issued = issue();
    let ear = verify_ear(&issued.token, &issued.jwks).unwrap();
    assert_eq!(ear.status(), Some("affirming"));
    assert_eq!(ear.policy_hash(), Some(issued.policy_hash.as_str()));
    assert_eq!(
        ear.bound_key_thumbprint(),
        Some(bound_key_thumbprint(&issued.bound).as_str())
    );
    assert_eq!(ear.claims()["eat_profile"], EAR_PROFILE);
    assert_eq!(ear.issued_at(), Some(1_754_006_400));
    let (name, submod) = ear.submod().unwrap();
    assert_eq!(name, "snp");
    assert_eq!(submod["ear.trustworthiness-vector"]["hardware"], 2);
    assert_eq!(
        submod["plinth.spiffe-id"],
        "spiffe://example.org/node/snp/Turin/3b42092f69c656d3"
    );
    assert!(
        submod["ear.appraisal-policy-id"]
            .as_str()
            .unwrap()
            .starts_with("snp-turin-oak@sha256:")
    );
    // The plain JWT JWKS (Workload API form) works too.
    let again = verify_ear(&issued.token, &issued.jwt_jwks).unwrap();
    assert_eq!(again, ear);
}

#[test]
fn rejects_any_flipped_byte_with_signature_invalid_or_malformed() {
    let issued = issue();
    let bytes = issued.token.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'.' {
            continue;
        }
        let mut flipped = bytes.to_vec();
        flipped[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let err = verify_ear(&flipped, &issued.jwks).unwrap_err();
        assert!(
            matches!(
                err,
                EarError::SignatureInvalid
                    | EarError::Malformed { .. }
                    | EarError::UnknownKey { .. }
                    | EarError::UnsupportedAlgorithm { .. }
            ),
            "byte {i}: {err:?}"
        );
    }
    // A flip inside the payload is caught by the signature.
    let payload_start = issued.token.find('.').unwrap() + 5;
    let mut flipped = issued.token.clone().into_bytes();
    flipped[payload_start] ^= if flipped[payload_start] == b'A' { 3 } else { 1 };
    let flipped = String::from_utf8(flipped).unwrap();
    assert!(matches!(
        verify_ear(&flipped, &issued.jwks),
        Err(EarError::SignatureInvalid | EarError::Malformed { .. })
    ));
}

#[test]
fn rejects_token_from_another_ca_with_unknown_key() {
    let issued = issue();
    let other = issue();
    assert!(matches!(
        verify_ear(&issued.token, &other.jwks),
        Err(EarError::UnknownKey { .. })
    ));
}

#[test]
fn rejects_truncated_token_with_malformed() {
    let issued = issue();
    let two_parts: String = issued.token.rsplit_once('.').unwrap().0.to_owned();
    assert!(matches!(
        verify_ear(&two_parts, &issued.jwks),
        Err(EarError::Malformed { .. })
    ));
}

#[test]
fn signing_keys_of_the_spiffe_bundle_are_its_jwt_authorities() {
    let dir = tempfile::tempdir().unwrap();
    let store = ca(&dir);
    let jwks = store.ca().bundle().to_spiffe_jwks();
    let keys = plinth_policy::ear::jwks_signing_keys(&jwks).unwrap();
    // The x509-svid entry (the CA certificate's key) is skipped; the JWT key comes out as
    // the exact SPKI the signing core signs audit checkpoints with.
    assert_eq!(keys.len(), 1);
    assert_eq!(
        keys[0].spki_der(),
        store
            .ca()
            .active()
            .unwrap()
            .jwt_signer()
            .public_key()
            .spki_der()
    );
}

#[test]
fn rejects_a_signing_key_list_that_is_not_a_jwks_with_malformed_jwks() {
    for text in ["[]", "{\"keys\": 1}", "not json"] {
        assert!(matches!(
            plinth_policy::ear::jwks_signing_keys(text),
            Err(EarError::MalformedJwks)
        ));
    }
    let off_curve = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}"#;
    assert!(matches!(
        plinth_policy::ear::jwks_signing_keys(off_curve),
        Err(EarError::MalformedJwks)
    ));
}
