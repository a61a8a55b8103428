//! [`Crl`]: a parsed X.509 v2 certificate revocation list (RFC 5280 section 5) that keeps
//! the bytes its signature covers.

use std::fmt;

use plinth_core::UnixTime;
use plinth_crypto::{PublicKey, SignatureScheme};
use x509_parser::prelude::{CertificateRevocationList, FromDer, X509Extension};

use crate::Error;
use crate::cert::{self, Name};
use crate::der::{Reader, TAG_SEQUENCE};
use crate::signed::SignedData;

/// The largest CRL accepted, in bytes.
pub const MAX_CRL_LEN: usize = 256 * 1024;

/// The most revoked entries one CRL may list.
pub const MAX_CRL_ENTRIES: usize = 4096;

/// A certificate revocation list, parsed and kept with the bytes its signature covers.
///
/// Parsing confers no trust: check the signature with [`Crl::verify_signed_by`] against a
/// key the caller trusts, and the dates against `now` as the caller's policy requires.
/// A critical extension (of the list or of an entry) makes the CRL unusable, since no
/// CRL extension is interpreted here (an `issuingDistributionPoint` or
/// `deltaCRLIndicator` would change what the list means).
///
/// Nothing of the parser library appears in this type's API.
#[derive(Clone)]
pub struct Crl {
    signed: SignedData,
    issuer: Name,
    this_update: UnixTime,
    next_update: Option<UnixTime>,
    revoked: Vec<Vec<u8>>,
}

impl fmt::Debug for Crl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crl")
            .field("issuer", &self.issuer.to_string())
            .field("this_update", &self.this_update)
            .field("next_update", &self.next_update)
            .field("revoked", &self.revoked.len())
            .finish_non_exhaustive()
    }
}

/// Turns the DER reader's error into the CRL one.
fn crl_malformed(error: Error) -> Error {
    match error {
        Error::Malformed(what) => Error::CrlMalformed(what),
        other => other,
    }
}

/// Fails on a repeated extension (RFC 5280 section 4.2) and on any critical one: none is
/// understood here.
fn check_extensions(extensions: &[X509Extension<'_>]) -> Result<(), Error> {
    for (i, ext) in extensions.iter().enumerate() {
        if extensions.iter().take(i).any(|seen| seen.oid == ext.oid) {
            return Err(Error::DuplicateExtension {
                oid: ext.oid.to_id_string(),
            });
        }
        if ext.critical {
            return Err(Error::CrlUnknownCriticalExtension {
                oid: ext.oid.to_id_string(),
            });
        }
    }
    Ok(())
}

impl Crl {
    /// Parses exactly one DER `CertificateList`; any byte after its outer SEQUENCE is an
    /// error.
    ///
    /// # Errors
    /// [`Error::CrlTooLarge`] past [`MAX_CRL_LEN`], [`Error::CrlTrailingData`],
    /// [`Error::CrlMalformed`] (including a truncated list and a version other than v2),
    /// [`Error::SignatureAlgorithmMismatch`], [`Error::CrlTooManyEntries`] past
    /// [`MAX_CRL_ENTRIES`], [`Error::CrlUnknownCriticalExtension`],
    /// [`Error::DuplicateExtension`].
    pub fn from_der(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_CRL_LEN {
            return Err(Error::CrlTooLarge {
                len: bytes.len(),
                max: MAX_CRL_LEN,
            });
        }
        let mut outer = Reader::new(bytes);
        let list = outer
            .read_tag(TAG_SEQUENCE, "CertificateList")
            .map_err(crl_malformed)?;
        let extra = bytes.len().saturating_sub(list.whole.len());
        if extra != 0 {
            return Err(Error::CrlTrailingData { extra });
        }
        let signed =
            SignedData::split(bytes, "CertificateList", "TBSCertList").map_err(crl_malformed)?;

        // Everything else through x509-parser.
        let (rest, x509) = CertificateRevocationList::from_der(bytes)
            .map_err(|e| Error::CrlMalformed(format!("x509: {e}")))?;
        let list = &x509.tbs_cert_list;
        if !rest.is_empty() || list.as_ref() != signed.tbs() {
            return Err(Error::CrlMalformed(
                "TBSCertList boundaries disagree".to_owned(),
            ));
        }
        // RFC 5280 5.1.2.1: when present, the version is v2.
        if list.version.is_some_and(|v| v.0 != 1) {
            return Err(Error::CrlMalformed("version is not v2".to_owned()));
        }
        if list.signature != x509.signature_algorithm {
            return Err(Error::SignatureAlgorithmMismatch);
        }
        if list.revoked_certificates.len() > MAX_CRL_ENTRIES {
            return Err(Error::CrlTooManyEntries {
                max: MAX_CRL_ENTRIES,
            });
        }
        check_extensions(list.extensions())?;
        for entry in &list.revoked_certificates {
            check_extensions(entry.extensions())?;
        }

        Ok(Self {
            signed,
            issuer: cert::name(&list.issuer),
            this_update: cert::unix_time(list.this_update.timestamp()),
            next_update: list.next_update.map(|t| cert::unix_time(t.timestamp())),
            revoked: list
                .revoked_certificates
                .iter()
                .map(|entry| entry.raw_serial().to_vec())
                .collect(),
        })
    }

    /// The `TBSCertList` exactly as received: the bytes the signature covers.
    pub fn tbs_der(&self) -> &[u8] {
        self.signed.tbs()
    }

    /// The scheme the issuer's key must verify this CRL's signature with (the same
    /// algorithms and RSASSA-PSS parameters as for certificates).
    ///
    /// # Errors
    /// [`Error::UnsupportedSignatureAlgorithm`] or [`Error::UnsupportedPssParameters`].
    pub fn signature_scheme(&self) -> Result<SignatureScheme, Error> {
        self.signed.scheme()
    }

    /// The issuer name, as received.
    pub const fn issuer(&self) -> &Name {
        &self.issuer
    }

    /// `thisUpdate`, in whole seconds.
    pub const fn this_update(&self) -> UnixTime {
        self.this_update
    }

    /// `nextUpdate`, when present, in whole seconds.
    pub const fn next_update(&self) -> Option<UnixTime> {
        self.next_update
    }

    /// The serial number of every revoked certificate, in order: INTEGER content bytes as
    /// encoded, comparable with [`crate::Certificate::serial`].
    pub fn revoked_serials(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.revoked.iter().map(Vec::as_slice)
    }

    /// Checks that this CRL's signature verifies with `issuer_key` over the `TBSCertList`
    /// as received. This says nothing about whether the key is trusted, nor about the
    /// dates.
    ///
    /// # Errors
    /// [`Error::CrlSignatureInvalid`]; [`Error::UnsupportedSignatureAlgorithm`] /
    /// [`Error::UnsupportedPssParameters`] for an unsupported algorithm;
    /// [`Error::KeyAlgorithmMismatch`] when the key cannot make this kind of signature.
    pub fn verify_signed_by(&self, issuer_key: &PublicKey) -> Result<(), Error> {
        let issuer = || self.issuer.to_string();
        self.signed.verify(
            issuer_key,
            || Error::CrlSignatureInvalid { issuer: issuer() },
            || Error::KeyAlgorithmMismatch {
                subject: format!("CRL of {}", issuer()),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_sequence_with_crl_malformed() {
        assert_eq!(
            Crl::from_der(&[0x04, 0x00]).err(),
            Some(Error::CrlMalformed("CertificateList".to_owned()))
        );
    }

    #[test]
    fn rejects_an_oversized_input_with_crl_too_large() {
        let big = vec![0; MAX_CRL_LEN + 1];
        assert_eq!(
            Crl::from_der(&big).err(),
            Some(Error::CrlTooLarge {
                len: MAX_CRL_LEN + 1,
                max: MAX_CRL_LEN
            })
        );
    }
}
