//! Issuer names: a certificate's subject Name, as rcgen must write it into what it signs.
//!
//! Path validation compares a child's issuer with its parent's subject byte for byte
//! (webpki) or after normalisation (OpenSSL), so the issuer must be reproduced exactly.
//! This converts the Name DER into rcgen's model, refusing what that model cannot
//! reproduce (multi-valued RDNs, a repeated attribute type, string types other than
//! UTF8String, PrintableString and IA5String); the CA also checks the result byte for byte
//! when it loads ([`crate::authority`]).

use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode as _, Reader as _, SliceReader, Tag, Tagged as _};
use rcgen::{DistinguishedName, DnType, DnValue};

use crate::Error;

/// Converts a Name (DER) into an rcgen distinguished name that encodes to the same bytes.
pub(crate) fn from_der(name_der: &[u8], display: &str) -> Result<DistinguishedName, Error> {
    let unsupported = |reason: &'static str| Error::UnsupportedIssuerName {
        name: display.to_owned(),
        reason,
    };
    let malformed = |_| unsupported("malformed Name");
    let name = AnyRef::from_der(name_der).map_err(malformed)?;
    if name.tag() != Tag::Sequence {
        return Err(unsupported("a Name is a SEQUENCE"));
    }
    let mut rdns = SliceReader::new(name.value()).map_err(malformed)?;
    let mut dn = DistinguishedName::new();
    while !rdns.is_finished() {
        let rdn: AnyRef<'_> = rdns.decode().map_err(malformed)?;
        if rdn.tag() != Tag::Set {
            return Err(unsupported("an RDN is a SET"));
        }
        let mut attributes = SliceReader::new(rdn.value()).map_err(malformed)?;
        let attribute: AnyRef<'_> = attributes.decode().map_err(malformed)?;
        if !attributes.is_finished() {
            return Err(unsupported("multi-valued RDN"));
        }
        if attribute.tag() != Tag::Sequence {
            return Err(unsupported("an attribute is a SEQUENCE"));
        }
        let mut parts = SliceReader::new(attribute.value()).map_err(malformed)?;
        let oid: ObjectIdentifier = parts.decode().map_err(malformed)?;
        let value: AnyRef<'_> = parts.decode().map_err(malformed)?;
        if !parts.is_finished() {
            return Err(unsupported("trailing data in an attribute"));
        }
        let arcs: Vec<u64> = oid.arcs().map(u64::from).collect();
        let ty = DnType::from_oid(&arcs);
        if dn.get(&ty).is_some() {
            return Err(unsupported("an attribute type appears twice"));
        }
        let text = std::str::from_utf8(value.value()).map_err(|_| unsupported("not text"))?;
        let value = match value.tag() {
            Tag::Utf8String => DnValue::Utf8String(text.to_owned()),
            Tag::PrintableString => DnValue::PrintableString(
                text.try_into()
                    .map_err(|_| unsupported("invalid PrintableString"))?,
            ),
            Tag::Ia5String => DnValue::Ia5String(
                text.try_into()
                    .map_err(|_| unsupported("invalid IA5String"))?,
            ),
            _ => return Err(unsupported("unsupported string type")),
        };
        dn.push(ty, value);
    }
    Ok(dn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_printable_and_utf8_attributes() {
        // SEQUENCE { SET { SEQUENCE { 2.5.4.6, PrintableString "US" } },
        //            SET { SEQUENCE { 2.5.4.3, UTF8String "Root" } } }
        let der = [
            0x30, 0x1c, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'U',
            b'S', 0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x04, b'R', b'o',
            b'o', b't',
        ];
        let dn = from_der(&der, "C=US, CN=Root").unwrap();
        let entries: Vec<_> = dn.iter().collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            dn.get(&DnType::CountryName),
            Some(&DnValue::PrintableString("US".try_into().unwrap()))
        );
        assert_eq!(
            dn.get(&DnType::CommonName),
            Some(&DnValue::Utf8String("Root".to_owned()))
        );
    }

    #[test]
    fn rejects_multi_valued_rdn_with_unsupported_issuer_name() {
        // SET with two attributes.
        let der = [
            0x30, 0x1a, 0x31, 0x18, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'U',
            b'S', 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x04, b'R', b'o', b'o', b't',
        ];
        assert!(matches!(
            from_der(&der, "x"),
            Err(Error::UnsupportedIssuerName {
                reason: "multi-valued RDN",
                ..
            })
        ));
    }
}
