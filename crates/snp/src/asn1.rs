//! A minimal bounds-checked DER reader for the two things `plinth-x509` does not parse:
//! AMD's VCEK/VLEK extension values and AMD certificate revocation lists.

use der::Decode;
use plinth_core::UnixTime;

/// Universal tags used here.
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// Why DER could not be read. Callers turn this into their own error, naming the structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) value: &'a [u8],
    pub(crate) whole: &'a [u8],
}

/// A cursor over DER elements.
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

    /// Reads one element: single-byte tags, definite minimal lengths of up to 4 bytes.
    pub(crate) fn read(&mut self) -> Result<Tlv<'a>, Malformed> {
        let (&tag, after_tag) = self.rest.split_first().ok_or(Malformed)?;
        if tag & 0x1f == 0x1f {
            return Err(Malformed);
        }
        let (&first, after_len) = after_tag.split_first().ok_or(Malformed)?;
        let (len, body) = if first < 0x80 {
            (usize::from(first), after_len)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return Err(Malformed);
            }
            let (len_bytes, body) = after_len.split_at_checked(count).ok_or(Malformed)?;
            if len_bytes.first() == Some(&0) {
                return Err(Malformed);
            }
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 {
                return Err(Malformed);
            }
            (len, body)
        };
        let (value, rest) = body.split_at_checked(len).ok_or(Malformed)?;
        let header_len = self.rest.len() - body.len();
        let whole = self.rest.get(..header_len + len).ok_or(Malformed)?;
        self.rest = rest;
        Ok(Tlv { tag, value, whole })
    }

    /// Reads one element that must have `tag`.
    pub(crate) fn read_tag(&mut self, tag: u8) -> Result<Tlv<'a>, Malformed> {
        let tlv = self.read()?;
        if tlv.tag == tag {
            Ok(tlv)
        } else {
            Err(Malformed)
        }
    }

    /// Reads an element with `tag` only if the next one has it.
    pub(crate) fn read_optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, Malformed> {
        if self.peek_tag() == Some(tag) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Ends the reading: nothing may be left.
    pub(crate) const fn finish(&self) -> Result<(), Malformed> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Malformed)
        }
    }
}

/// Decodes `bytes` as exactly one element with `tag`, returning its contents.
pub(crate) fn single(bytes: &[u8], tag: u8) -> Result<&[u8], Malformed> {
    let mut r = Reader::new(bytes);
    let tlv = r.read_tag(tag)?;
    r.finish()?;
    Ok(tlv.value)
}

/// Decodes a DER INTEGER that must fit in a `u8` (leading zero allowed for 128..=255).
pub(crate) fn small_uint(bytes: &[u8]) -> Result<u8, Malformed> {
    u8::from_der(bytes).map_err(|_| Malformed)
}

/// Decodes a DER IA5String.
pub(crate) fn ia5_string(bytes: &[u8]) -> Result<&str, Malformed> {
    der::asn1::Ia5StringRef::from_der(bytes)
        .map(|s| s.as_str())
        .map_err(|_| Malformed)
}

/// Decodes a UTCTime or GeneralizedTime element.
pub(crate) fn time(tlv: Tlv<'_>) -> Result<UnixTime, Malformed> {
    let since_epoch = match tlv.tag {
        TAG_UTC_TIME => der::asn1::UtcTime::from_der(tlv.whole).map(|t| t.to_unix_duration()),
        TAG_GENERALIZED_TIME => {
            der::asn1::GeneralizedTime::from_der(tlv.whole).map(|t| t.to_unix_duration())
        }
        _ => return Err(Malformed),
    }
    .map_err(|_| Malformed)?;
    Ok(UnixTime::from_secs(since_epoch.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([7; 0x80]);
        let mut r = Reader::new(&long);
        let tlv = r.read().unwrap();
        assert_eq!((tlv.tag, tlv.value.len(), tlv.whole.len()), (4, 0x80, 0x83));
        assert!(r.is_empty());
        // Non-minimal long form, truncated, indefinite.
        for bad in [
            &[0x04, 0x81, 0x05, 1, 2, 3, 4, 5][..],
            &[0x04, 0x03, 1],
            &[0x30, 0x80, 0, 0],
        ] {
            assert_eq!(Reader::new(bad).read().err(), Some(Malformed));
        }
    }

    #[test]
    fn values() {
        assert_eq!(small_uint(&[0x02, 0x01, 0x73]), Ok(115));
        assert_eq!(small_uint(&[0x02, 0x02, 0x00, 0xd9]), Ok(217));
        assert_eq!(small_uint(&[0x02, 0x02, 0x01, 0x00]), Err(Malformed));
        assert_eq!(ia5_string(b"\x16\x08Milan-B0"), Ok("Milan-B0"));
        assert_eq!(single(&[0x04, 0x01, 9], TAG_OCTET_STRING), Ok(&[9][..]));
        assert_eq!(
            single(&[0x04, 0x01, 9, 0], TAG_OCTET_STRING),
            Err(Malformed)
        );
    }
}
