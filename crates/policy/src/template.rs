//! `{claim}` templates for SPIFFE IDs and selectors.

use std::collections::BTreeMap;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Claim(String),
}

/// A template over claim names: literal text with `{name}` placeholders (`{{` and `}}`
/// are literal braces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RenderError {
    /// The evidence did not provide this claim.
    Missing(String),
    /// The claim's value holds a character that may not appear in a SPIFFE path or
    /// selector (only ASCII letters, digits, `.`, `-` and `_` are substituted).
    Unsafe(String),
}

impl Template {
    /// Parses `text`, accepting only claims named in `known`.
    pub(crate) fn parse(text: &str, known: &[&str]) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    let _brace = chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    let _brace = chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' => {
                                name.push(c);
                            }
                            Some(c) => return Err(format!("character {c:?} in a claim name")),
                            None => return Err("unclosed '{'".to_owned()),
                        }
                    }
                    if !known.contains(&name.as_str()) {
                        return Err(format!(
                            "unknown claim {{{name}}}; this platform offers: {}",
                            known.join(", ")
                        ));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Claim(name));
                }
                '}' => return Err("unmatched '}'".to_owned()),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self {
            text: text.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The claim names the template uses.
    pub(crate) fn claims(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Claim(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Substitutes `claims`; every value must be non-empty and made of path-safe
    /// characters, so a claim can never add a path segment or a query.
    pub(crate) fn render(&self, claims: &BTreeMap<String, String>) -> Result<String, RenderError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Claim(name) => {
                    let value = claims
                        .get(name)
                        .ok_or_else(|| RenderError::Missing(name.clone()))?;
                    if value.is_empty()
                        || !value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
                    {
                        return Err(RenderError::Unsafe(name.clone()));
                    }
                    out.push_str(value);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_claims_and_escaped_braces() {
        let t = Template::parse(
            "spiffe://{trust_domain}/n/{{x}}/{ek_hash}",
            &["trust_domain", "ek_hash"],
        )
        .unwrap();
        let claims = BTreeMap::from([
            ("trust_domain".to_owned(), "example.org".to_owned()),
            ("ek_hash".to_owned(), "ab01".to_owned()),
        ]);
        assert_eq!(
            t.render(&claims).unwrap(),
            "spiffe://example.org/n/{x}/ab01"
        );
    }

    #[test]
    fn rejects_unknown_unclosed_and_unmatched() {
        assert!(Template::parse("{nope}", &["a"]).is_err());
        assert!(Template::parse("{a", &["a"]).is_err());
        assert!(Template::parse("a}", &["a"]).is_err());
    }

    #[test]
    fn rejects_values_that_would_add_path_segments() {
        let t = Template::parse("spiffe://td/{a}", &["a"]).unwrap();
        let claims = BTreeMap::from([("a".to_owned(), "x/../y".to_owned())]);
        assert_eq!(t.render(&claims), Err(RenderError::Unsafe("a".to_owned())));
    }
}
