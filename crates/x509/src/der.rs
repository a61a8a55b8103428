//! A minimal, bounds-checked DER reader: just enough to split a certificate or a CRL into
//! its three signed parts, to find a certificate's outer length, and to read RSASSA-PSS
//! parameters.
//!
//! Everything else about a certificate or CRL is parsed by x509-parser; this reader exists so the
//! bytes a signature covers are located by code this crate owns, and so trailing data is
//! detected exactly.

use crate::Error;

/// Universal tag of a SEQUENCE (constructed).
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
/// Universal tag of an OBJECT IDENTIFIER.
pub(crate) const TAG_OID: u8 = 0x06;
/// Universal tag of a NULL.
pub(crate) const TAG_NULL: u8 = 0x05;
/// Universal tag of an INTEGER.
pub(crate) const TAG_INTEGER: u8 = 0x02;
/// Universal tag of a BIT STRING.
pub(crate) const TAG_BIT_STRING: u8 = 0x03;

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    /// The (single-byte) tag.
    pub(crate) tag: u8,
    /// The contents.
    pub(crate) value: &'a [u8],
    /// The whole element: header and contents.
    pub(crate) whole: &'a [u8],
}

/// A cursor over DER bytes.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads one element. Only single-byte tags and definite lengths (up to 4 length
    /// bytes, minimally encoded) are accepted.
    pub(crate) fn read(&mut self, what: &'static str) -> Result<Tlv<'a>, Error> {
        let malformed = || Error::Malformed(what.to_owned());
        let (&tag, after_tag) = self.rest.split_first().ok_or_else(malformed)?;
        if tag & 0x1f == 0x1f {
            return Err(malformed());
        }
        let (&first, mut after_len) = after_tag.split_first().ok_or_else(malformed)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return Err(malformed());
            }
            let (len_bytes, rest) = after_len.split_at_checked(count).ok_or_else(malformed)?;
            after_len = rest;
            if len_bytes.first() == Some(&0) {
                return Err(malformed());
            }
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 {
                return Err(malformed());
            }
            len
        };
        let header_len = self.rest.len() - after_len.len();
        let (value, rest) = after_len.split_at_checked(len).ok_or_else(malformed)?;
        let whole = self.rest.get(..header_len + len).ok_or_else(malformed)?;
        self.rest = rest;
        Ok(Tlv { tag, value, whole })
    }

    /// Reads one element that must carry `tag`.
    pub(crate) fn read_tag(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, Error> {
        let tlv = self.read(what)?;
        if tlv.tag == tag {
            Ok(tlv)
        } else {
            Err(Error::Malformed(what.to_owned()))
        }
    }

    /// Reads the next element only if it carries `tag`.
    pub(crate) fn read_optional(
        &mut self,
        tag: u8,
        what: &'static str,
    ) -> Result<Option<Tlv<'a>>, Error> {
        if self.peek_tag() == Some(tag) {
            self.read(what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::Malformed(what.to_owned()))
        }
    }
}

/// The length of the first DER element of `bytes` (header and contents).
pub(crate) fn outer_len(bytes: &[u8]) -> Result<usize, Error> {
    Reader::new(bytes)
        .read_tag(TAG_SEQUENCE, "certificate")
        .map(|tlv| tlv.whole.len())
}

/// Formats the contents of an OBJECT IDENTIFIER in dotted-decimal notation.
pub(crate) fn oid_to_dotted(content: &[u8]) -> String {
    let mut arcs: Vec<u128> = Vec::new();
    let mut acc: u128 = 0;
    for &byte in content {
        acc = (acc << 7) | u128::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
        }
        if acc > u128::from(u64::MAX) {
            return format!("<invalid OID {}>", hex_string(content));
        }
    }
    let Some((&first, rest)) = arcs.split_first() else {
        return "<empty OID>".to_owned();
    };
    let (a, b) = match first {
        0..40 => (0, first),
        40..80 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut out = format!("{a}.{b}");
    for arc in rest {
        out.push('.');
        out.push_str(&arc.to_string());
    }
    out
}

fn hex_string(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ignored = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut r = Reader::new(&[0x30, 0x01, 0xaa, 0x04, 0x81, 0x80]);
        let tlv = r.read("a").unwrap();
        assert_eq!(
            (tlv.tag, tlv.value, tlv.whole.len()),
            (0x30, &[0xaa][..], 3)
        );
        // Long form claims 128 bytes that are not there.
        assert!(r.read("b").is_err());
    }

    #[test]
    fn rejects_non_minimal_lengths_and_high_tags() {
        assert!(Reader::new(&[0x30, 0x81, 0x01, 0x00]).read("x").is_err());
        assert!(Reader::new(&[0x30, 0x82, 0x00, 0x81]).read("x").is_err());
        assert!(Reader::new(&[0x30, 0x80, 0x00, 0x00]).read("x").is_err());
        assert!(Reader::new(&[0x1f, 0x01, 0x00]).read("x").is_err());
    }

    #[test]
    fn formats_oids() {
        assert_eq!(oid_to_dotted(&[0x55, 0x1d, 0x11]), "2.5.29.17");
        assert_eq!(
            oid_to_dotted(&[0x67, 0x81, 0x05, 0x02, 0x01]),
            "2.23.133.2.1"
        );
        assert_eq!(
            oid_to_dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a]),
            "1.2.840.113549.1.1.10"
        );
    }
}
