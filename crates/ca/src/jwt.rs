//! JWT-SVIDs (SPIFFE JWT-SVID §2–3): JWS compact serialization, header `alg`, `kid` and
//! `typ` only, claims `sub`, `aud`, `exp` and `iat`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plinth_core::{SpiffeId, UnixTime};
use serde::Serialize;

use crate::signer::Signer;
use crate::{Error, bundle};

/// The most audience values a JWT-SVID may carry.
pub const MAX_AUDIENCES: usize = 16;
/// The longest audience value, in bytes.
pub const MAX_AUDIENCE_LEN: usize = 1024;

/// An authority's JWT signing key, with its `kid` and its encoded JOSE header.
pub(crate) struct JwtKey {
    signer: Box<dyn Signer>,
    kid: String,
    encoded_header: String,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a [String],
    exp: u64,
    iat: u64,
    sub: String,
}

impl JwtKey {
    pub(crate) fn new(signer: Box<dyn Signer>) -> Result<Self, Error> {
        let kid = bundle::thumbprint(signer.public_key()).ok_or(Error::UnsupportedSubjectKey)?;
        let header = Header {
            alg: signer.algorithm().jws_name(),
            kid: &kid,
            typ: "JWT",
        };
        let json = serde_json::to_vec(&header).map_err(|e| Error::Encoding(e.to_string()))?;
        let encoded_header = URL_SAFE_NO_PAD.encode(json);
        Ok(Self {
            signer,
            kid,
            encoded_header,
        })
    }

    pub(crate) fn signer(&self) -> &dyn Signer {
        self.signer.as_ref()
    }

    pub(crate) fn into_signer(self) -> Box<dyn Signer> {
        self.signer
    }

    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs a token for `id` and `audience`, issued at `iat` and expiring at `exp`.
    pub(crate) fn mint(
        &self,
        id: &SpiffeId,
        audience: &[String],
        iat: UnixTime,
        exp: UnixTime,
    ) -> Result<JwtSvid, Error> {
        let claims = Claims {
            aud: audience,
            exp: exp.as_secs(),
            iat: iat.as_secs(),
            sub: id.to_string(),
        };
        let claims = serde_json::to_vec(&claims).map_err(|e| Error::Encoding(e.to_string()))?;
        let mut token = String::with_capacity(
            self.encoded_header.len() + 2 + claims.len() * 4 / 3 + 4 + 2 * 132,
        );
        token.push_str(&self.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = self.signer.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(JwtSvid {
            token,
            spiffe_id: id.clone(),
            audience: audience.to_vec(),
            expiry: UnixTime::from_secs(exp.as_secs()),
            key_id: self.kid.clone(),
        })
    }
}

/// Checks the audience list of a JWT-SVID request.
pub(crate) fn check_audience(audience: &[String]) -> Result<(), Error> {
    if audience.is_empty() {
        return Err(Error::EmptyAudience);
    }
    if audience.len() > MAX_AUDIENCES {
        return Err(Error::TooManyAudiences {
            count: audience.len(),
            max: MAX_AUDIENCES,
        });
    }
    match audience
        .iter()
        .position(|a| a.is_empty() || a.len() > MAX_AUDIENCE_LEN)
    {
        Some(index) => Err(Error::InvalidAudience {
            index,
            max: MAX_AUDIENCE_LEN,
        }),
        None => Ok(()),
    }
}

/// A signed JWT-SVID.
///
/// The token is a bearer credential: `Debug` shows who it is for, not the token.
#[derive(Clone)]
pub struct JwtSvid {
    token: String,
    spiffe_id: SpiffeId,
    audience: Vec<String>,
    expiry: UnixTime,
    key_id: String,
}

impl fmt::Debug for JwtSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSvid")
            .field("spiffe_id", &self.spiffe_id.to_string())
            .field("audience", &self.audience)
            .field("expiry", &self.expiry)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl JwtSvid {
    /// The token (JWS compact serialization).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The SPIFFE ID (`sub`).
    pub const fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The audience (`aud`).
    pub fn audience(&self) -> &[String] {
        &self.audience
    }

    /// The expiry (`exp`), in whole seconds.
    pub const fn expiry(&self) -> UnixTime {
        self.expiry
    }

    /// The `kid` of the key that signed it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}
