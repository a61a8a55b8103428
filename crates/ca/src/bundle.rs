//! Trust bundles: the X.509 authorities (DER certificates) and the JWT authorities
//! (JWKs), in the forms SPIFFE defines (SPIFFE Trust Domain and Bundle §4).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use der::asn1::{AnyRef, UintRef};
use der::{Decode as _, Reader as _, SliceReader};
use plinth_core::{HashAlg, TrustDomain};
use plinth_crypto::{Curve, KeyKind, PublicKey};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::pem;
use crate::x509::public_key_bits;

/// `kty`, `crv`, `x` and `y` of an EC public key.
fn ec_members(key: &PublicKey) -> Option<(&'static str, String, String)> {
    let KeyKind::Ec(curve) = key.kind() else {
        return None;
    };
    let crv = match curve {
        Curve::P256 => "P-256",
        Curve::P384 => "P-384",
        _ => return None,
    };
    let len = curve.coordinate_len();
    let (tag, xy) = public_key_bits(key.spki_der())?.split_first()?;
    if *tag != 0x04 || xy.len() != 2 * len {
        return None;
    }
    let (x, y) = xy.split_at(len);
    Some((crv, URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y)))
}

/// The RFC 7638 JWK thumbprint (SHA-256, base64url) of an EC public key: its `kid`.
pub(crate) fn thumbprint(key: &PublicKey) -> Option<String> {
    let (crv, x, y) = ec_members(key)?;
    // RFC 7638 section 3.2: the required members, in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#);
    Some(
        URL_SAFE_NO_PAD
            .encode(plinth_crypto::digest(HashAlg::Sha256, canonical.as_bytes()).as_bytes()),
    )
}

/// `n` and `e` of an RSA public key (RFC 7518 section 6.3.1), unsigned big-endian.
fn rsa_members(key: &PublicKey) -> Option<(String, String)> {
    let bits = public_key_bits(key.spki_der())?;
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    let sequence = AnyRef::from_der(bits).ok()?;
    let mut reader = SliceReader::new(sequence.value()).ok()?;
    let modulus: UintRef<'_> = reader.decode().ok()?;
    let exponent: UintRef<'_> = reader.decode().ok()?;
    Some((
        URL_SAFE_NO_PAD.encode(modulus.as_bytes()),
        URL_SAFE_NO_PAD.encode(exponent.as_bytes()),
    ))
}

/// The public members of a JWK for `key` (EC or RSA).
fn public_jwk(key: &PublicKey) -> Option<Map<String, Value>> {
    let mut jwk = Map::new();
    if let Some((crv, x, y)) = ec_members(key) {
        let _none = jwk.insert("kty".to_owned(), json!("EC"));
        let _none = jwk.insert("crv".to_owned(), json!(crv));
        let _none = jwk.insert("x".to_owned(), json!(x));
        let _none = jwk.insert("y".to_owned(), json!(y));
    } else {
        let (n, e) = rsa_members(key)?;
        let _none = jwk.insert("kty".to_owned(), json!("RSA"));
        let _none = jwk.insert("n".to_owned(), json!(n));
        let _none = jwk.insert("e".to_owned(), json!(e));
    }
    Some(jwk)
}

/// One JWT signing key of the trust domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthority {
    key_id: String,
    public_key: PublicKey,
}

impl JwtAuthority {
    /// The `kid`.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key.
    pub const fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
}

/// A trust domain's bundle: what a peer needs to verify the SVIDs of this CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    trust_domain: TrustDomain,
    sequence: u64,
    refresh_hint: Duration,
    x509_authorities: Vec<Vec<u8>>,
    jwt_authorities: Vec<JwtAuthority>,
}

#[derive(Serialize)]
struct Jwks {
    keys: Vec<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spiffe_sequence: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spiffe_refresh_hint: Option<u64>,
}

impl Bundle {
    pub(crate) fn new(
        trust_domain: TrustDomain,
        sequence: u64,
        refresh_hint: Duration,
        x509_authorities: Vec<Vec<u8>>,
        jwt_authorities: impl IntoIterator<Item = (String, PublicKey)>,
    ) -> Self {
        let jwt_authorities = jwt_authorities
            .into_iter()
            .map(|(key_id, public_key)| JwtAuthority { key_id, public_key })
            .collect();
        Self {
            trust_domain,
            sequence,
            refresh_hint,
            x509_authorities,
            jwt_authorities,
        }
    }

    /// The trust domain.
    pub const fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// `spiffe_sequence`: increases whenever the bundle's keys change.
    pub const fn sequence(&self) -> u64 {
        self.sequence
    }

    /// `spiffe_refresh_hint`: how often consumers should fetch the bundle again.
    pub const fn refresh_hint(&self) -> Duration {
        self.refresh_hint
    }

    /// The X.509 authorities (root certificates, DER).
    pub fn x509_authorities(&self) -> &[Vec<u8>] {
        &self.x509_authorities
    }

    /// The JWT authorities.
    pub fn jwt_authorities(&self) -> &[JwtAuthority] {
        &self.jwt_authorities
    }

    /// The X.509 bundle as the Workload API carries it: the DER certificates, concatenated.
    pub fn x509_der(&self) -> Vec<u8> {
        self.x509_authorities.concat()
    }

    /// The X.509 authorities as PEM.
    pub fn x509_pem(&self) -> String {
        self.x509_authorities
            .iter()
            .map(|der| pem::encode("CERTIFICATE", der))
            .collect()
    }

    /// The SPIFFE bundle (a JWKS): each X.509 authority as a JWK with `use` `x509-svid`
    /// and its certificate as the one `x5c` entry (no `kid`); each JWT authority with
    /// `use` `jwt-svid` and its `kid`; `spiffe_sequence` and `spiffe_refresh_hint`.
    pub fn to_spiffe_jwks(&self) -> String {
        let x509 = self.x509_authorities.iter().filter_map(|der| {
            let certificate = plinth_x509::Certificate::from_der(der).ok()?;
            let mut jwk = public_jwk(&certificate.public_key().ok()?)?;
            let _none = jwk.insert("use".to_owned(), json!("x509-svid"));
            let _none = jwk.insert("x5c".to_owned(), json!([STANDARD.encode(der)]));
            Some(jwk)
        });
        let jwt = self.jwt_authorities.iter().filter_map(|authority| {
            let mut jwk = public_jwk(&authority.public_key)?;
            let _none = jwk.insert("use".to_owned(), json!("jwt-svid"));
            let _none = jwk.insert("kid".to_owned(), json!(authority.key_id));
            Some(jwk)
        });
        let jwks = Jwks {
            keys: x509.chain(jwt).collect(),
            spiffe_sequence: Some(self.sequence),
            spiffe_refresh_hint: Some(self.refresh_hint.as_secs()),
        };
        serde_json::to_string_pretty(&jwks).unwrap_or_default()
    }

    /// The JWT bundle as the Workload API carries it (`JWTBundlesResponse`): a standard
    /// JWKS of the JWT authorities only, each with its `kid`.
    pub fn to_jwt_jwks(&self) -> String {
        let keys = self
            .jwt_authorities
            .iter()
            .filter_map(|authority| {
                let mut jwk = public_jwk(&authority.public_key)?;
                let _none = jwk.insert("kid".to_owned(), json!(authority.key_id));
                Some(jwk)
            })
            .collect();
        let jwks = Jwks {
            keys,
            spiffe_sequence: None,
            spiffe_refresh_hint: None,
        };
        serde_json::to_string(&jwks).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 section 3.1 uses an RSA key; this pins the EC thumbprint of the P-256 key
    /// of RFC 7515 appendix A.3, computed independently (Python hashlib over the canonical
    /// members `{"crv","kty","x","y"}`).
    #[test]
    fn thumbprint_is_the_rfc7638_sha256() {
        let x = URL_SAFE_NO_PAD
            .decode("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU")
            .unwrap();
        let y = URL_SAFE_NO_PAD
            .decode("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0")
            .unwrap();
        let key = PublicKey::ec(Curve::P256, &x, &y).unwrap();
        assert_eq!(
            thumbprint(&key).unwrap(),
            "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U"
        );
    }
}
