use std::borrow::Cow;
use std::fmt;

/// An object identifier in dotted-decimal form (`2.5.29.17`).
///
/// Used to name extensions and attributes, and for the caller's allow-list of critical
/// extensions. Compared as text: the dotted form of a DER OID is unique.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(Cow<'static, str>);

impl Oid {
    /// An OID from a dotted-decimal constant. The text is not checked: use this for
    /// constants written in source, [`Oid::parse`] for anything else.
    pub const fn from_static(dotted: &'static str) -> Self {
        Self(Cow::Borrowed(dotted))
    }

    /// Parses dotted-decimal text: at least two arcs, each a decimal number, the first
    /// 0, 1 or 2.
    ///
    /// # Errors
    /// [`crate::Error::Malformed`] when the text is not an OID.
    pub fn parse(text: &str) -> Result<Self, crate::Error> {
        let bad = || crate::Error::Malformed(format!("not an OID: {text:?}"));
        let arcs: Vec<&str> = text.split('.').collect();
        let well_formed = arcs.len() >= 2
            && arcs.iter().all(|arc| {
                !arc.is_empty()
                    && arc.bytes().all(|b| b.is_ascii_digit())
                    && (arc.len() == 1 || !arc.starts_with('0'))
            })
            && matches!(arcs.first(), Some(&("0" | "1" | "2")));
        if well_formed {
            Ok(Self(Cow::Owned(text.to_owned())))
        } else {
            Err(bad())
        }
    }

    pub(crate) const fn from_string(dotted: String) -> Self {
        Self(Cow::Owned(dotted))
    }

    /// The dotted-decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({})", self.0)
    }
}

/// Well-known OIDs.
pub mod oids {
    use super::Oid;

    /// id-ce-`basicConstraints`.
    pub const BASIC_CONSTRAINTS: Oid = Oid::from_static("2.5.29.19");
    /// id-ce-`keyUsage`.
    pub const KEY_USAGE: Oid = Oid::from_static("2.5.29.15");
    /// id-ce-`subjectAltName`.
    pub const SUBJECT_ALT_NAME: Oid = Oid::from_static("2.5.29.17");
    /// id-ce-`subjectKeyIdentifier`.
    pub const SUBJECT_KEY_IDENTIFIER: Oid = Oid::from_static("2.5.29.14");
    /// id-ce-`authorityKeyIdentifier`.
    pub const AUTHORITY_KEY_IDENTIFIER: Oid = Oid::from_static("2.5.29.35");
    /// id-ce-extKeyUsage.
    pub const EXTENDED_KEY_USAGE: Oid = Oid::from_static("2.5.29.37");
    /// `anyExtendedKeyUsage`.
    pub const ANY_EXTENDED_KEY_USAGE: Oid = Oid::from_static("2.5.29.37.0");
    /// tcg-kp-EKCertificate: the `extendedKeyUsage` purpose of TPM EK certificates.
    pub const TCG_KP_EK_CERTIFICATE: Oid = Oid::from_static("2.23.133.8.1");
    /// tcg-kp-AIKCertificate: the `extendedKeyUsage` purpose of TPM AIK certificates.
    pub const TCG_KP_AIK_CERTIFICATE: Oid = Oid::from_static("2.23.133.8.3");
    /// id-ce-subjectDirectoryAttributes.
    pub const SUBJECT_DIRECTORY_ATTRIBUTES: Oid = Oid::from_static("2.5.29.9");
    /// id-ce-`certificatePolicies`.
    pub const CERTIFICATE_POLICIES: Oid = Oid::from_static("2.5.29.32");
    /// id-at-`commonName`.
    pub const COMMON_NAME: Oid = Oid::from_static("2.5.4.3");
    /// tcg-at-tpmManufacturer (TCG EK Credential Profile).
    pub const TCG_TPM_MANUFACTURER: Oid = Oid::from_static("2.23.133.2.1");
    /// tcg-at-tpmModel.
    pub const TCG_TPM_MODEL: Oid = Oid::from_static("2.23.133.2.2");
    /// tcg-at-tpmVersion.
    pub const TCG_TPM_VERSION: Oid = Oid::from_static("2.23.133.2.3");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dotted_text() {
        assert_eq!(Oid::parse("2.5.29.17").unwrap(), oids::SUBJECT_ALT_NAME);
        for bad in ["", "2", "2.", "3.1", "2.05", "2.a", "1..2"] {
            assert!(Oid::parse(bad).is_err(), "{bad}");
        }
    }
}
