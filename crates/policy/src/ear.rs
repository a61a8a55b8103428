//! Attestation results as EAR tokens (EAT Attestation Result, draft-ietf-rats-ear), in
//! their JWT form, signed by the CA's signing core and verifiable offline with the trust
//! bundle's JWKS.
//!
//! ```text
//!  header  {"alg":"ES256","kid":"<RFC 7638 thumbprint of the CA's JWT key>"}
//!  payload {
//!    "eat_profile": "tag:github.com,2023:veraison/ear",
//!    "iat": <appraisal time, seconds>,
//!    "eat_nonce": "<base64url>",                       (when the evidence had one)
//!    "ear.verifier-id": {"developer": "...", "build": "..."},
//!    "submods": { "<platform>": {
//!        "ear.status": "affirming" | "warning" | "contraindicated",
//!        "ear.trustworthiness-vector": {"instance-identity": 2, ...},
//!        "ear.appraisal-policy-id": "<policy name>@sha256:<hex>",
//!        "plinth.policy-hash": "sha256:<hex>",
//!        "plinth.bound-key-thumbprint": "<base64url SHA-256 of the bound key's SPKI DER>",
//!        "plinth.spiffe-id": "spiffe://...",           (when the verdict passes)
//!        "plinth.rules": [{"rule", "outcome", "observed", "expected"}, ...] } }
//!  }
//! ```
//!
//! plinth-policy does not depend on the CA crate: the signing core is reached through
//! [`EarSigner`], which the server implements over its active authority's JWT signer.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plinth_core::{BoundKey, HashAlg};
use plinth_crypto::{Curve, PublicKey, SignatureScheme};
use serde_json::{Map, Value, json};

use crate::Appraisal;
use crate::error::EarError;

/// The EAR profile this crate issues and accepts.
pub const EAR_PROFILE: &str = "tag:github.com,2023:veraison/ear";
/// The largest token accepted, in bytes.
pub const MAX_EAR_LEN: usize = 256 * 1024;
/// The largest JWKS accepted, in bytes.
pub const MAX_JWKS_LEN: usize = 1 << 20;

/// A JWS algorithm for EAR tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EarAlgorithm {
    /// ECDSA P-256 with SHA-256, signature `r ‖ s` (64 bytes).
    Es256,
    /// ECDSA P-384 with SHA-384, signature `r ‖ s` (96 bytes).
    Es384,
}

impl EarAlgorithm {
    /// The JWS `alg` name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            "ES384" => Some(Self::Es384),
            _ => None,
        }
    }

    const fn curve(self) -> (Curve, &'static str, HashAlg) {
        match self {
            Self::Es256 => (Curve::P256, "P-256", HashAlg::Sha256),
            Self::Es384 => (Curve::P384, "P-384", HashAlg::Sha384),
        }
    }
}

/// The signing core, as EAR issuance needs it.
pub trait EarSigner {
    /// The algorithm the key signs with.
    fn algorithm(&self) -> EarAlgorithm;
    /// The `kid` relying parties find the key under in the JWKS.
    fn key_id(&self) -> &str;
    /// Signs `message`, returning the fixed-length `r ‖ s` signature.
    ///
    /// # Errors
    /// The backend's reason, as text.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String>;
}

/// The verifier's identity in `ear.verifier-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierId {
    /// Who built the verifier (a URI or name).
    pub developer: String,
    /// Which build (for example `plinth 0.1.0`).
    pub build: String,
}

/// base64url (no padding) SHA-256 of the bound key's SubjectPublicKeyInfo DER: the
/// `plinth.bound-key-thumbprint` claim.
pub fn bound_key_thumbprint(key: &BoundKey) -> String {
    URL_SAFE_NO_PAD.encode(plinth_crypto::digest(HashAlg::Sha256, key.spki_der()).as_bytes())
}

/// The EAR claims set of `appraisal`.
pub fn ear_claims(
    appraisal: &Appraisal,
    bound_key: Option<&BoundKey>,
    nonce: Option<&[u8]>,
    verifier: &VerifierId,
) -> Value {
    let vector = appraisal.trust_vector().to_json();
    let rules: Vec<Value> = appraisal
        .rules()
        .iter()
        .map(|r| Value::Object(r.to_json()))
        .collect();
    let mut submod = Map::new();
    let mut put = |k: &str, v: Value| {
        let _previous = submod.insert(k.to_owned(), v);
    };
    put("ear.status", json!(appraisal.verdict().name()));
    put("ear.trustworthiness-vector", Value::Object(vector));
    put(
        "ear.appraisal-policy-id",
        json!(format!(
            "{}@sha256:{}",
            appraisal.policy_name(),
            appraisal.policy_hash().to_hex()
        )),
    );
    put(
        "plinth.policy-hash",
        json!(format!("sha256:{}", appraisal.policy_hash().to_hex())),
    );
    if let Some(key) = bound_key {
        put(
            "plinth.bound-key-thumbprint",
            json!(bound_key_thumbprint(key)),
        );
    }
    if let Some(identity) = appraisal.identity() {
        put("plinth.spiffe-id", json!(identity.spiffe_id().to_string()));
    }
    put("plinth.rules", Value::Array(rules));
    let mut claims = Map::new();
    let mut put = |k: &str, v: Value| {
        let _previous = claims.insert(k.to_owned(), v);
    };
    put("eat_profile", json!(EAR_PROFILE));
    put("iat", json!(appraisal.appraised_at().as_secs()));
    if let Some(nonce) = nonce {
        put("eat_nonce", json!(URL_SAFE_NO_PAD.encode(nonce)));
    }
    put(
        "ear.verifier-id",
        json!({ "developer": verifier.developer, "build": verifier.build }),
    );
    put(
        "submods",
        json!({ appraisal.platform().name(): Value::Object(submod) }),
    );
    Value::Object(claims)
}

/// Issues the EAR token of `appraisal`: JWS compact serialization signed by `signer`.
///
/// # Errors
/// [`EarError::Signing`] when the signer fails.
pub fn issue_ear(
    appraisal: &Appraisal,
    bound_key: Option<&BoundKey>,
    nonce: Option<&[u8]>,
    verifier: &VerifierId,
    signer: &dyn EarSigner,
) -> Result<String, EarError> {
    let header = json!({ "alg": signer.algorithm().name(), "kid": signer.key_id() });
    let claims = ear_claims(appraisal, bound_key, nonce, verifier);
    let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut token);
    let signature = signer
        .sign(token.as_bytes())
        .map_err(|reason| EarError::Signing { reason })?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

/// An EAR token whose signature verified with a key of the bundle. Made only by
/// [`verify_ear`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEar {
    key_id: String,
    claims: Map<String, Value>,
}

impl VerifiedEar {
    /// The `kid` of the key that signed it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
    /// Every claim.
    pub const fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
    /// `iat`, in seconds.
    pub fn issued_at(&self) -> Option<u64> {
        self.claims.get("iat").and_then(Value::as_u64)
    }
    /// The one submodule's name and claims (plinth issues exactly one).
    pub fn submod(&self) -> Option<(&str, &Map<String, Value>)> {
        let submods = self.claims.get("submods")?.as_object()?;
        let (name, claims) = submods.iter().next()?;
        Some((name.as_str(), claims.as_object()?))
    }
    fn submod_str(&self, key: &str) -> Option<&str> {
        self.submod()?.1.get(key)?.as_str()
    }
    /// `ear.status`.
    pub fn status(&self) -> Option<&str> {
        self.submod_str("ear.status")
    }
    /// `plinth.policy-hash` (`sha256:<hex>`).
    pub fn policy_hash(&self) -> Option<&str> {
        self.submod_str("plinth.policy-hash")
    }
    /// `plinth.bound-key-thumbprint`.
    pub fn bound_key_thumbprint(&self) -> Option<&str> {
        self.submod_str("plinth.bound-key-thumbprint")
    }
}

fn decode_object(part: &str, what: &'static str) -> Result<Map<String, Value>, EarError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| EarError::Malformed { part: what })?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(EarError::Malformed { part: what }),
    }
}

/// The `keys` of a JWKS, within the size budget.
fn jwks_keys(jwks: &str) -> Result<Vec<Value>, EarError> {
    if jwks.len() > MAX_JWKS_LEN {
        return Err(EarError::TooLarge {
            what: "JWKS",
            len: jwks.len(),
            max: MAX_JWKS_LEN,
        });
    }
    let root: Value = serde_json::from_str(jwks).map_err(|_| EarError::MalformedJwks)?;
    match root {
        Value::Object(mut map) => match map.remove("keys") {
            Some(Value::Array(keys)) => Ok(keys),
            _ => Err(EarError::MalformedJwks),
        },
        _ => Err(EarError::MalformedJwks),
    }
}

/// The EC public key of a JWK whose `crv` is `crv` (None when it names another curve or
/// its coordinates do not decode to a point on it).
fn ec_jwk(jwk: &Value, curve: Curve, crv: &str) -> Option<PublicKey> {
    if jwk.get("kty").and_then(Value::as_str) != Some("EC")
        || jwk.get("crv").and_then(Value::as_str) != Some(crv)
    {
        return None;
    }
    let coordinate = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
    };
    PublicKey::ec(curve, &coordinate("x")?, &coordinate("y")?).ok()
}

/// Finds the key `kid` for `alg` in a JWKS (a SPIFFE bundle or a plain JWKS).
fn find_key(jwks: &str, kid: &str, alg: EarAlgorithm) -> Result<PublicKey, EarError> {
    let keys = jwks_keys(jwks)?;
    let (curve, crv, _) = alg.curve();
    let unknown = || EarError::UnknownKey {
        kid: kid.to_owned(),
    };
    let jwk = keys
        .iter()
        .find(|k| {
            k.get("kid").and_then(Value::as_str) == Some(kid)
                && k.get("kty").and_then(Value::as_str) == Some("EC")
                && k.get("crv").and_then(Value::as_str) == Some(crv)
        })
        .ok_or_else(unknown)?;
    ec_jwk(jwk, curve, crv).ok_or_else(unknown)
}

/// The keys of a JWKS (a SPIFFE bundle as `plinth bundle show --jwks` prints it, or a
/// plain JWKS) that sign JWTs, EAR tokens and audit checkpoints: every EC P-256 or P-384
/// key whose `use` is absent or `jwt-svid`. A SPIFFE bundle's `x509-svid` entries (the CA
/// certificates' keys, which sign only certificates) and keys of other types are skipped.
///
/// # Errors
/// [`EarError::TooLarge`]; [`EarError::MalformedJwks`] when the text is not a JWKS, or an
/// EC P-256/P-384 signing key's coordinates do not decode to a point on its curve.
pub fn jwks_signing_keys(jwks: &str) -> Result<Vec<PublicKey>, EarError> {
    let mut found = Vec::new();
    for jwk in jwks_keys(jwks)? {
        let usage = jwk.get("use").and_then(Value::as_str);
        if !matches!(usage, None | Some("jwt-svid"))
            || jwk.get("kty").and_then(Value::as_str) != Some("EC")
        {
            continue;
        }
        let curve = match jwk.get("crv").and_then(Value::as_str) {
            Some("P-256") => (Curve::P256, "P-256"),
            Some("P-384") => (Curve::P384, "P-384"),
            _ => continue,
        };
        found.push(ec_jwk(&jwk, curve.0, curve.1).ok_or(EarError::MalformedJwks)?);
    }
    Ok(found)
}

/// Verifies an EAR token offline: its ES256/ES384 signature over the received
/// `header.payload` bytes with the key its `kid` names in `jwks` (the trust bundle), then
/// that the payload is an EAR.
///
/// # Errors
/// [`EarError::TooLarge`], [`EarError::Malformed`], [`EarError::MalformedJwks`],
/// [`EarError::UnsupportedAlgorithm`], [`EarError::UnknownKey`],
/// [`EarError::SignatureInvalid`] or [`EarError::WrongProfile`].
pub fn verify_ear(token: &str, jwks: &str) -> Result<VerifiedEar, EarError> {
    if token.len() > MAX_EAR_LEN {
        return Err(EarError::TooLarge {
            what: "token",
            len: token.len(),
            max: MAX_EAR_LEN,
        });
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(EarError::Malformed {
            part: "not three dot-separated parts",
        });
    };
    let header = decode_object(header_b64, "header")?;
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(EarError::Malformed { part: "header alg" })?;
    let alg = EarAlgorithm::from_name(alg_name).ok_or_else(|| EarError::UnsupportedAlgorithm {
        alg: alg_name.to_owned(),
    })?;
    if header.contains_key("crit") {
        return Err(EarError::Malformed {
            part: "header crit is not supported",
        });
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(EarError::Malformed { part: "header kid" })?;
    let key = find_key(jwks, kid, alg)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| EarError::Malformed { part: "signature" })?;
    let signed_len = header_b64
        .len()
        .saturating_add(1)
        .saturating_add(payload_b64.len());
    let signed = token.get(..signed_len).ok_or(EarError::Malformed {
        part: "signed bytes",
    })?;
    let (_, _, hash) = alg.curve();
    key.verify(
        SignatureScheme::EcdsaFixed(hash),
        signed.as_bytes(),
        &signature,
    )
    .map_err(|_| EarError::SignatureInvalid)?;
    let claims = decode_object(payload_b64, "payload")?;
    if claims.get("eat_profile").and_then(Value::as_str) != Some(EAR_PROFILE) {
        return Err(EarError::WrongProfile {
            expected: EAR_PROFILE,
        });
    }
    Ok(VerifiedEar {
        key_id: kid.to_owned(),
        claims,
    })
}
