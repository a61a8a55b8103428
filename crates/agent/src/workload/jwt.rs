//! ValidateJWTSVID: a JWT-SVID checked against the JWT bundle of its subject's trust
//! domain (SPIFFE JWT-SVID §3–4, §7), over the received bytes.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plinth_core::{HashAlg, SpiffeId, TrustDomain};
use plinth_crypto::SignatureScheme;
use serde_json::{Map, Value};

/// The longest token accepted, in bytes (JWT-SVIDs are a few hundred bytes).
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A JWT-SVID whose signature, audience and lifetime were checked.
#[derive(Debug)]
pub(crate) struct ValidatedJwtSvid {
    spiffe_id: SpiffeId,
    claims: Map<String, Value>,
}

impl ValidatedJwtSvid {
    /// The subject.
    pub(crate) const fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// Every claim of the payload.
    pub(crate) const fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

/// Why a token was rejected (the text goes to the caller).
pub(crate) type Rejection = &'static str;

fn decode_object(part: &str, what: Rejection) -> Result<Map<String, Value>, Rejection> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| what)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(what),
    }
}

/// Validates `token` for `audience` with `jwt_bundles` (JWKS by trust domain) at
/// `now_secs` (seconds since the epoch).
pub(crate) fn validate(
    token: &str,
    audience: &str,
    jwt_bundles: &BTreeMap<TrustDomain, String>,
    now_secs: u64,
) -> Result<ValidatedJwtSvid, Rejection> {
    if token.len() > MAX_TOKEN_LEN {
        return Err("token too long");
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWS compact serialization (three dot-separated parts)");
    };
    let header = decode_object(header_b64, "malformed header")?;
    if header
        .keys()
        .any(|k| !matches!(k.as_str(), "alg" | "kid" | "typ"))
    {
        return Err("header has a parameter other than alg, kid and typ");
    }
    let (crv, hash) = match header.get("alg").and_then(Value::as_str) {
        Some("ES256") => ("P-256", HashAlg::Sha256),
        Some("ES384") => ("P-384", HashAlg::Sha384),
        Some(_) => return Err("unsupported alg (ES256 and ES384 are accepted)"),
        None => return Err("header has no alg"),
    };
    match header.get("typ") {
        None => {}
        Some(Value::String(typ)) if typ == "JWT" || typ == "JOSE" => {}
        Some(_) => return Err("typ is neither JWT nor JOSE"),
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or("header has no kid")?;
    let claims = decode_object(payload_b64, "malformed payload")?;
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or("no sub claim")?;
    let spiffe_id = SpiffeId::parse(subject).map_err(|_| "sub is not a SPIFFE ID")?;
    let jwks = jwt_bundles
        .get(spiffe_id.trust_domain())
        .ok_or("no JWT bundle for the subject's trust domain")?;
    let key = find_key(jwks, kid, crv)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| "malformed signature")?;
    let signed_len = header_b64
        .len()
        .saturating_add(1)
        .saturating_add(payload_b64.len());
    let signed = token.get(..signed_len).ok_or("malformed token")?;
    key.verify(
        SignatureScheme::EcdsaFixed(hash),
        signed.as_bytes(),
        &signature,
    )
    .map_err(|_| "signature does not verify")?;
    check_audience(&claims, audience)?;
    let exp = claims
        .get("exp")
        .ok_or("no exp claim")?
        .as_u64()
        .ok_or("exp is not a non-negative integer")?;
    if now_secs >= exp {
        return Err("token has expired");
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_u64().ok_or("nbf is not a non-negative integer")?;
        if now_secs < nbf {
            return Err("token is not yet valid");
        }
    }
    Ok(ValidatedJwtSvid { spiffe_id, claims })
}

fn check_audience(claims: &Map<String, Value>, audience: &str) -> Result<(), Rejection> {
    let matches = match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(values)) => {
            if values.is_empty() || !values.iter().all(Value::is_string) {
                return Err("aud is not a list of strings");
            }
            values.iter().any(|v| v.as_str() == Some(audience))
        }
        Some(_) => return Err("aud is not a string or a list of strings"),
        None => return Err("no aud claim"),
    };
    if matches {
        Ok(())
    } else {
        Err("audience does not match")
    }
}

/// The JWK `kid` of `jwks`, as a public key on curve `crv`; its JSON goes through
/// plinth-policy's JWKS parser.
fn find_key(jwks: &str, kid: &str, crv: &str) -> Result<plinth_crypto::PublicKey, Rejection> {
    let root: Value = serde_json::from_str(jwks).map_err(|_| "malformed JWT bundle")?;
    let jwk = root
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("malformed JWT bundle")?
        .iter()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        .ok_or("kid names no key of the bundle")?;
    if jwk.get("kty").and_then(Value::as_str) != Some("EC")
        || jwk.get("crv").and_then(Value::as_str) != Some(crv)
    {
        return Err("the key kid names does not fit alg");
    }
    let single = serde_json::json!({ "keys": [jwk] }).to_string();
    let mut keys =
        plinth_policy::ear::jwks_signing_keys(&single).map_err(|_| "malformed key in bundle")?;
    match (keys.pop(), keys.is_empty()) {
        (Some(key), true) => Ok(key),
        _ => Err("the key kid names is not a JWT signing key"),
    }
}

/// The claims as a `google.protobuf.Struct`.
pub(crate) fn to_struct(claims: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: claims
            .iter()
            .map(|(k, v)| (k.clone(), to_value(v)))
            .collect(),
    }
}

fn to_value(value: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(values) => Kind::ListValue(prost_types::ListValue {
            values: values.iter().map(to_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.AAAA",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    fn check(token: &str) -> Rejection {
        let bundles = BTreeMap::from([(
            TrustDomain::new("example.org").unwrap(),
            r#"{"keys":[]}"#.to_owned(),
        )]);
        validate(token, "aud", &bundles, 1_000).unwrap_err()
    }

    const PAYLOAD: &str = r#"{"sub":"spiffe://example.org/w","aud":"aud","exp":2000}"#;

    #[test]
    fn rejects_headers_outside_alg_kid_typ() {
        let t = token(r#"{"alg":"ES256","kid":"k","jku":"https://x"}"#, PAYLOAD);
        assert_eq!(
            check(&t),
            "header has a parameter other than alg, kid and typ"
        );
    }

    #[test]
    fn rejects_alg_none_and_hmac() {
        for alg in ["none", "HS256"] {
            let t = token(&format!(r#"{{"alg":"{alg}","kid":"k"}}"#), PAYLOAD);
            assert_eq!(check(&t), "unsupported alg (ES256 and ES384 are accepted)");
        }
    }

    #[test]
    fn rejects_a_bad_typ_and_a_missing_kid() {
        let t = token(r#"{"alg":"ES256","kid":"k","typ":"JWS"}"#, PAYLOAD);
        assert_eq!(check(&t), "typ is neither JWT nor JOSE");
        let t = token(r#"{"alg":"ES256"}"#, PAYLOAD);
        assert_eq!(check(&t), "header has no kid");
    }

    #[test]
    fn rejects_an_unknown_kid_and_a_foreign_subject() {
        let t = token(r#"{"alg":"ES256","kid":"k"}"#, PAYLOAD);
        assert_eq!(check(&t), "kid names no key of the bundle");
        let other = PAYLOAD.replace("example.org", "other.org");
        let t = token(r#"{"alg":"ES256","kid":"k"}"#, &other);
        assert_eq!(check(&t), "no JWT bundle for the subject's trust domain");
    }

    #[test]
    fn rejects_a_non_compact_token() {
        assert_eq!(
            check("a.b"),
            "not a JWS compact serialization (three dot-separated parts)"
        );
        assert_eq!(check(&"a".repeat(MAX_TOKEN_LEN + 1)), "token too long");
    }
}
