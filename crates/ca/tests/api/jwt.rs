//! JWT-SVIDs and bundles, checked by the `spiffe` crate and against SPIFFE's rules.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use plinth_ca::{Bundle, ECDSA_P256_SHA256, ECDSA_P384_SHA384, Error, JwtSvid};
use plinth_core::SpiffeId;
use serde_json::Value;

use crate::support::{now, software_ca};

/// A `spiffe` JWT bundle set built from the SPIFFE bundle JWKS, as a consumer of that
/// format does: the keys whose `use` is `jwt-svid`.
pub(crate) fn spiffe_jwt_bundles(bundle: &Bundle) -> spiffe::JwtBundleSet {
    let jwks: Value = serde_json::from_str(&bundle.to_spiffe_jwks()).unwrap();
    let trust_domain = spiffe::TrustDomain::new(bundle.trust_domain().as_str()).unwrap();
    let mut jwt_bundle = spiffe::JwtBundle::new(trust_domain);
    for key in jwks["keys"].as_array().unwrap() {
        if key["use"] == "jwt-svid" {
            jwt_bundle
                .add_jwk_authority_json(&serde_json::to_vec(key).unwrap())
                .unwrap();
        }
    }
    let mut set = spiffe::JwtBundleSet::new();
    set.add_bundle(jwt_bundle);
    set
}

fn part(token: &str, index: usize) -> Value {
    let segment = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

fn assert_spiffe_validates(svid: &JwtSvid, bundle: &Bundle, audience: &str) {
    let from_spiffe_bundle = spiffe_jwt_bundles(bundle);
    let parsed =
        spiffe::JwtSvid::parse_and_validate(svid.token(), &from_spiffe_bundle, &[audience])
            .unwrap_or_else(|e| panic!("spiffe rejected the JWT-SVID: {e}"));
    assert_eq!(parsed.spiffe_id().to_string(), svid.spiffe_id().to_string());
    assert_eq!(parsed.key_id(), svid.key_id());
    // The Workload API form of the JWT bundle works too.
    let trust_domain = spiffe::TrustDomain::new(bundle.trust_domain().as_str()).unwrap();
    let workload_api =
        spiffe::JwtBundle::from_jwt_authorities(trust_domain, bundle.to_jwt_jwks().as_bytes())
            .unwrap();
    let mut set = spiffe::JwtBundleSet::new();
    set.add_bundle(workload_api);
    let _parsed = spiffe::JwtSvid::parse_and_validate(svid.token(), &set, &[audience]).unwrap();
}

#[test]
fn jwt_svids_validate_with_spiffe_against_the_jwks_bundle() {
    for (algorithm, alg) in [(&ECDSA_P256_SHA256, "ES256"), (&ECDSA_P384_SHA384, "ES384")] {
        let ca = software_ca("example.org", |o| o.algorithm = algorithm);
        let id = SpiffeId::parse("spiffe://example.org/api/frontend").unwrap();
        let audience = vec![
            "https://backend.example.org".to_owned(),
            "billing".to_owned(),
        ];
        let t = now();
        let svid = ca
            .store
            .ca()
            .mint_jwt_svid(&id, &audience, None, t)
            .unwrap();
        let bundle = ca.store.ca().bundle();
        assert_spiffe_validates(&svid, &bundle, "billing");
        // Another audience is refused by the validator.
        let bundles = spiffe_jwt_bundles(&bundle);
        assert!(spiffe::JwtSvid::parse_and_validate(svid.token(), &bundles, &["other"]).is_err());

        // J1–J6: compact form; only alg, kid and typ in the header; sub, aud, exp, iat.
        assert_eq!(svid.token().split('.').count(), 3);
        let header = part(svid.token(), 0);
        let header = header.as_object().unwrap();
        let mut names: Vec<&str> = header.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["alg", "kid", "typ"]);
        assert_eq!(header["alg"], alg);
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], svid.key_id());
        let claims = part(svid.token(), 1);
        let mut names: Vec<&str> = claims
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["aud", "exp", "iat", "sub"]);
        assert_eq!(claims["sub"], "spiffe://example.org/api/frontend");
        assert_eq!(claims["aud"], serde_json::json!(audience));
        assert_eq!(claims["iat"], t.as_secs());
        assert_eq!(
            claims["exp"],
            t.as_secs() + 300,
            "default JWT-SVID lifetime: 5 minutes"
        );
    }
}

#[test]
fn spiffe_bundle_follows_the_jwks_rules() {
    let ca = software_ca("example.org", |o| o.intermediate = true);
    let bundle = ca.store.ca().bundle();
    let jwks: Value = serde_json::from_str(&bundle.to_spiffe_jwks()).unwrap();
    assert_eq!(jwks["spiffe_sequence"], 1);
    assert_eq!(jwks["spiffe_refresh_hint"], 300);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert_eq!(key["kty"], "EC", "B2: kty");
        assert_eq!(key["crv"], "P-256");
        match key["use"].as_str().unwrap() {
            "x509-svid" => {
                // B3: exactly one x5c entry, the (self-signed) root; no kid.
                assert!(key.get("kid").is_none());
                let x5c = key["x5c"].as_array().unwrap();
                assert_eq!(x5c.len(), 1);
                let der = STANDARD.decode(x5c[0].as_str().unwrap()).unwrap();
                assert_eq!(bundle.x509_authorities(), [der]);
            }
            "jwt-svid" => assert!(
                key["kid"].as_str().is_some_and(|k| !k.is_empty()),
                "B4: kid"
            ),
            other => panic!("unexpected use {other}"),
        }
    }
    // The Workload API JWT bundle is a standard JWKS of the JWT keys only.
    let jwt: Value = serde_json::from_str(&bundle.to_jwt_jwks()).unwrap();
    assert_eq!(jwt.as_object().unwrap().len(), 1);
    assert_eq!(jwt["keys"].as_array().unwrap().len(), 1);
    assert!(jwt["keys"][0].get("use").is_none());
}

#[test]
fn rejects_missing_or_bad_audiences() {
    let ca = software_ca("example.org", |_| {});
    let id = SpiffeId::parse("spiffe://example.org/x").unwrap();
    let ca = ca.store.ca();
    assert!(matches!(
        ca.mint_jwt_svid(&id, &[], None, now()),
        Err(Error::EmptyAudience)
    ));
    assert!(matches!(
        ca.mint_jwt_svid(&id, &["a".to_owned(), String::new()], None, now()),
        Err(Error::InvalidAudience { index: 1, .. })
    ));
    let many: Vec<String> = (0..17).map(|i| i.to_string()).collect();
    assert!(matches!(
        ca.mint_jwt_svid(&id, &many, None, now()),
        Err(Error::TooManyAudiences { count: 17, max: 16 })
    ));
}
