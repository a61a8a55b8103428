//! SPIFFE IDs and trust domains, validated by the rules of the SPIFFE ID specification
//! (SPIFFE-ID.md §2): `spiffe://<trust domain>/<path>`.

use std::fmt;
use std::str::FromStr;

use crate::Error;

const SCHEME: &str = "spiffe://";
const MAX_TRUST_DOMAIN_LEN: usize = 255;
const MAX_ID_LEN: usize = 2048;

/// A SPIFFE trust domain name: lower-case letters, digits, `.`, `-` and `_`, at most 255 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Validates a bare trust domain name (`example.org`).
    ///
    /// # Errors
    /// [`Error::SpiffeId`] naming the rule that failed.
    pub fn new(name: &str) -> Result<Self, Error> {
        if name.is_empty() {
            return Err(Error::SpiffeId("trust domain is empty"));
        }
        if name.len() > MAX_TRUST_DOMAIN_LEN {
            return Err(Error::SpiffeId("trust domain is longer than 255 bytes"));
        }
        if !name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_'))
        {
            return Err(Error::SpiffeId(
                "trust domain may hold only lower-case letters, digits, '.', '-' and '_'",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The trust domain's own SPIFFE ID (`spiffe://example.org`), used by signing certificates.
    pub fn id(&self) -> SpiffeId {
        SpiffeId {
            trust_domain: self.clone(),
            path: String::new(),
        }
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TrustDomain {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

/// A validated SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpiffeId {
    trust_domain: TrustDomain,
    /// Empty, or `/seg/seg...` with valid segments.
    path: String,
}

impl SpiffeId {
    /// Parses and validates a `spiffe://` URI.
    ///
    /// # Errors
    /// [`Error::SpiffeId`] naming the rule that failed.
    pub fn parse(uri: &str) -> Result<Self, Error> {
        if uri.len() > MAX_ID_LEN {
            return Err(Error::SpiffeId("SPIFFE ID is longer than 2048 bytes"));
        }
        let rest = uri
            .get(..SCHEME.len())
            .filter(|scheme| scheme.eq_ignore_ascii_case(SCHEME))
            .and_then(|_| uri.get(SCHEME.len()..))
            .ok_or(Error::SpiffeId("scheme must be spiffe://"))?;
        if !uri.starts_with(SCHEME) {
            return Err(Error::SpiffeId("scheme must be lower-case spiffe"));
        }
        if rest.contains(['?', '#']) {
            return Err(Error::SpiffeId("query and fragment are not allowed"));
        }
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        if authority.contains('@') {
            return Err(Error::SpiffeId("userinfo is not allowed"));
        }
        if authority.contains(':') {
            return Err(Error::SpiffeId("a port is not allowed"));
        }
        let trust_domain = TrustDomain::new(authority)?;
        Self::from_parts(trust_domain, path)
    }

    /// Builds an ID from a trust domain and a path (`""` or `/a/b`), validating the path.
    ///
    /// # Errors
    /// [`Error::SpiffeId`] naming the rule that failed.
    pub fn from_parts(trust_domain: TrustDomain, path: &str) -> Result<Self, Error> {
        validate_path(path)?;
        let id = Self {
            trust_domain,
            path: path.to_owned(),
        };
        if id.to_string().len() > MAX_ID_LEN {
            return Err(Error::SpiffeId("SPIFFE ID is longer than 2048 bytes"));
        }
        Ok(id)
    }

    /// The trust domain.
    pub const fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The path: empty for a trust domain's own ID, otherwise starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

fn validate_path(path: &str) -> Result<(), Error> {
    if path.is_empty() {
        return Ok(());
    }
    let Some(segments) = path.strip_prefix('/') else {
        return Err(Error::SpiffeId("path must start with '/'"));
    };
    for segment in segments.split('/') {
        match segment {
            "" => {
                return Err(Error::SpiffeId(
                    "path has an empty segment or a trailing '/'",
                ));
            }
            "." | ".." => {
                return Err(Error::SpiffeId(
                    "path segments '.' and '..' are not allowed",
                ));
            }
            _ if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) =>
            {
                return Err(Error::SpiffeId(
                    "path segments may hold only letters, digits, '.', '-' and '_'",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}{}", self.trust_domain, self.path)
    }
}

impl FromStr for SpiffeId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_ids() {
        for ok in [
            "spiffe://example.org",
            "spiffe://example.org/workload",
            "spiffe://a-b_c.d/x/Y.z-1_2",
            "spiffe://td/node/tpm/0123abcd",
        ] {
            let id = SpiffeId::parse(ok).unwrap();
            assert_eq!(id.to_string(), ok);
        }
    }

    #[test]
    fn rejects_each_rule() {
        for (bad, why) in [
            ("http://example.org/x", "scheme must be spiffe://"),
            ("SPIFFE://example.org/x", "scheme must be lower-case spiffe"),
            ("spiffe:///x", "trust domain is empty"),
            ("spiffe://Example.org/x", "trust domain may hold only"),
            ("spiffe://exa%41mple.org/x", "trust domain may hold only"),
            ("spiffe://example.org:443/x", "a port is not allowed"),
            ("spiffe://u@example.org/x", "userinfo is not allowed"),
            ("spiffe://example.org/x?q=1", "query and fragment"),
            ("spiffe://example.org/x#f", "query and fragment"),
            ("spiffe://example.org/", "path has an empty segment"),
            ("spiffe://example.org/a//b", "path has an empty segment"),
            ("spiffe://example.org/a/", "path has an empty segment"),
            ("spiffe://example.org/a/./b", "'.' and '..'"),
            ("spiffe://example.org/a/../b", "'.' and '..'"),
            ("spiffe://example.org/a%20b", "path segments may hold only"),
            // The scheme needs its "//" authority marker.
            ("spiffe:example.org/x", "scheme must be spiffe://"),
            ("spiffe:/example.org/x", "scheme must be spiffe://"),
            // Only ASCII letters, digits, '.', '-' and '_' (no whitespace, no non-ASCII).
            ("spiffe://ex ample.org/x", "trust domain may hold only"),
            ("spiffe://exämple.org/x", "trust domain may hold only"),
            (
                "spiffe://example.org/caf\u{e9}",
                "path segments may hold only",
            ),
            ("spiffe://example.org/a b", "path segments may hold only"),
            ("spiffe://example.org/a+b", "path segments may hold only"),
            // Uppercase is allowed in the path, never in the trust domain.
            ("spiffe://EXAMPLE.org/x", "trust domain may hold only"),
            ("spiffe://", "trust domain is empty"),
        ] {
            match SpiffeId::parse(bad) {
                Err(Error::SpiffeId(msg)) => assert!(msg.contains(why), "{bad}: {msg}"),
                other => panic!("{bad} gave {other:?}"),
            }
        }
    }

    #[test]
    fn length_limits() {
        let td = "a".repeat(255);
        assert!(TrustDomain::new(&td).is_ok());
        assert!(TrustDomain::new(&"a".repeat(256)).is_err());
        let long_path = format!("/{}", "p".repeat(2048 - "spiffe://td/".len()));
        assert!(SpiffeId::parse(&format!("spiffe://td{long_path}")).is_ok());
        assert!(SpiffeId::parse(&format!("spiffe://td{long_path}p")).is_err());
    }
}
