//! [`Certificate`]: a parsed X.509 certificate that keeps the bytes it was parsed from.

use std::fmt;

use plinth_core::{Digest, HashAlg, UnixTime};
use plinth_crypto::{CryptoError, PublicKey, SignatureScheme};
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate, X509Name};

use crate::Error;
use crate::der::{self, Reader, TAG_SEQUENCE};
use crate::oid::{Oid, oids};
use crate::signed::SignedData;

/// The largest certificate accepted, in bytes. Real EK, Nitro and AMD certificates are
/// well under 4 KiB.
pub const MAX_CERTIFICATE_LEN: usize = 16 * 1024;

/// The largest input [`Certificate::from_der_trimmed`] looks at (certificate plus padding).
pub const MAX_PADDED_LEN: usize = 64 * 1024;

/// The most certificates [`certificates_from_pem`] reads from one bundle.
pub const MAX_PEM_CERTIFICATES: usize = 1024;

/// Parses every `CERTIFICATE` block of a PEM bundle (other blocks, and text around them,
/// are skipped), each with [`Certificate::from_der`].
///
/// # Errors
/// [`Error::InvalidPem`] for a broken block, [`Error::TooLarge`] past
/// [`MAX_PEM_CERTIFICATES`], or the first certificate's parse error.
pub fn certificates_from_pem(text: &[u8]) -> Result<Vec<Certificate>, Error> {
    let mut certificates = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(text) {
        let block = block.map_err(|e| Error::InvalidPem(e.to_string()))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        if certificates.len() == MAX_PEM_CERTIFICATES {
            return Err(Error::TooLarge {
                len: MAX_PEM_CERTIFICATES + 1,
                max: MAX_PEM_CERTIFICATES,
            });
        }
        certificates.push(Certificate::from_der(&block.contents)?);
    }
    Ok(certificates)
}

/// An X.509 certificate, parsed leniently and kept with its original bytes.
///
/// Parsing tolerates what real TPM EK certificates do (explicitly encoded DEFAULT values,
/// multi-valued RDN SETs out of DER order) because nothing here is ever re-encoded: the
/// signature is checked over the `TBSCertificate` bytes exactly as received, and names are
/// compared as received. Parsing confers no trust; only [`crate::verify_chain`] does.
///
/// Nothing of the parser library appears in this type's API.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    trimmed: usize,
    signed: SignedData,
    version: u32,
    serial: Vec<u8>,
    issuer: Name,
    subject: Name,
    validity: Validity,
    spki: Vec<u8>,
    public_key: Result<PublicKey, CryptoError>,
    fingerprint: Digest,
    extensions: Vec<Extension>,
    basic_constraints: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
    extended_key_usage: Option<Vec<Oid>>,
    san_directory_attributes: Vec<NameAttribute>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject.display)
            .field("issuer", &self.issuer.display)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

/// A distinguished name, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    der: Vec<u8>,
    display: String,
    attributes: Vec<NameAttribute>,
}

impl Name {
    /// The Name DER exactly as it appears in the certificate.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Every attribute, in order of appearance.
    pub fn attributes(&self) -> &[NameAttribute] {
        &self.attributes
    }

    /// The first `commonName`, if it is a string.
    pub fn common_name(&self) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.oid == oids::COMMON_NAME)
            .and_then(NameAttribute::value_str)
    }

    /// Whether the name has no attributes (as TPM EK certificates' subjects usually do).
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// One attribute of a name: its type and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAttribute {
    oid: Oid,
    value: Vec<u8>,
    text: Option<String>,
}

impl NameAttribute {
    /// The attribute type.
    pub const fn oid(&self) -> &Oid {
        &self.oid
    }

    /// The value's content bytes (without its tag and length).
    pub fn value_bytes(&self) -> &[u8] {
        &self.value
    }

    /// The value as text, when it is a `UTF8String`, `PrintableString`, `IA5String` or
    /// `NumericString`.
    pub fn value_str(&self) -> Option<&str> {
        self.text.as_deref()
    }
}

/// A certificate's validity period, in whole seconds (as the certificate states it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    not_before: UnixTime,
    not_after: UnixTime,
}

impl Validity {
    /// `notBefore`.
    pub const fn not_before(&self) -> UnixTime {
        self.not_before
    }

    /// `notAfter`.
    pub const fn not_after(&self) -> UnixTime {
        self.not_after
    }

    /// Checks that `now` lies within the period, both ends included (RFC 5280 4.1.2.5);
    /// compared at the certificate's whole-second precision.
    ///
    /// # Errors
    /// [`Error::NotYetValid`] or [`Error::Expired`].
    pub const fn check(&self, now: UnixTime) -> Result<(), Error> {
        if now.as_secs() < self.not_before.as_secs() {
            return Err(Error::NotYetValid {
                not_before: self.not_before,
                now,
            });
        }
        if now.as_secs() > self.not_after.as_secs() {
            return Err(Error::Expired {
                not_after: self.not_after,
                now,
            });
        }
        Ok(())
    }
}

/// One extension, undecoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    oid: Oid,
    critical: bool,
    value: Vec<u8>,
}

impl Extension {
    /// `extnID`.
    pub const fn oid(&self) -> &Oid {
        &self.oid
    }

    /// Whether the extension is marked critical.
    pub const fn critical(&self) -> bool {
        self.critical
    }

    /// `extnValue`: the contents of the OCTET STRING (the extension's own DER).
    pub fn value(&self) -> &[u8] {
        &self.value
    }
}

/// The `basicConstraints` extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasicConstraints {
    ca: bool,
    path_len: Option<u32>,
}

impl BasicConstraints {
    /// The cA flag.
    pub const fn ca(&self) -> bool {
        self.ca
    }

    /// `pathLenConstraint`, if present.
    pub const fn path_len(&self) -> Option<u32> {
        self.path_len
    }
}

/// The `keyUsage` extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsage {
    /// Bit i of the BIT STRING in bit i of this value (`digitalSignature` = bit 0).
    flags: u16,
}

impl KeyUsage {
    /// The raw flags: bit 0 `digitalSignature`, 1 `nonRepudiation`, 2 `keyEncipherment`,
    /// 3 `dataEncipherment`, 4 `keyAgreement`, 5 `keyCertSign`, 6 `cRLSign`, 7 `encipherOnly`,
    /// 8 `decipherOnly`.
    pub const fn flags(&self) -> u16 {
        self.flags
    }

    /// `digitalSignature`.
    pub const fn digital_signature(&self) -> bool {
        self.flags & 1 != 0
    }

    /// `keyEncipherment`.
    pub const fn key_encipherment(&self) -> bool {
        self.flags & (1 << 2) != 0
    }

    /// `keyCertSign`.
    pub const fn key_cert_sign(&self) -> bool {
        self.flags & (1 << 5) != 0
    }
}

impl Certificate {
    /// Parses exactly one DER certificate; any byte after its outer SEQUENCE is an error.
    ///
    /// # Errors
    /// [`Error::TooLarge`], [`Error::TrailingData`], [`Error::Malformed`],
    /// [`Error::SignatureAlgorithmMismatch`], [`Error::DuplicateExtension`],
    /// [`Error::InvalidExtension`].
    pub fn from_der(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_CERTIFICATE_LEN {
            return Err(Error::TooLarge {
                len: bytes.len(),
                max: MAX_CERTIFICATE_LEN,
            });
        }
        let len = der::outer_len(bytes)?;
        let extra = bytes.len().saturating_sub(len);
        if extra != 0 {
            return Err(Error::TrailingData { extra });
        }
        Self::parse(bytes, 0)
    }

    /// Parses a certificate read from TPM NV storage or a similar fixed-size buffer: the
    /// input is cut at the end of the outer SEQUENCE, and what follows must be padding
    /// (all 0xFF, or all 0x00). [`Certificate::trimmed_len`] tells how much was cut.
    ///
    /// # Errors
    /// As [`Certificate::from_der`]; [`Error::TrailingData`] when the bytes after the
    /// certificate are not uniform 0xFF or 0x00 padding.
    pub fn from_der_trimmed(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_PADDED_LEN {
            return Err(Error::TooLarge {
                len: bytes.len(),
                max: MAX_PADDED_LEN,
            });
        }
        let len = der::outer_len(bytes)?;
        let (cert, padding) = bytes
            .split_at_checked(len)
            .ok_or_else(|| Error::Malformed("certificate".to_owned()))?;
        let is_padding = padding.iter().all(|&b| b == 0xff) || padding.iter().all(|&b| b == 0);
        if !is_padding {
            return Err(Error::TrailingData {
                extra: padding.len(),
            });
        }
        if cert.len() > MAX_CERTIFICATE_LEN {
            return Err(Error::TooLarge {
                len: cert.len(),
                max: MAX_CERTIFICATE_LEN,
            });
        }
        Self::parse(cert, padding.len())
    }

    fn parse(der: &[u8], trimmed: usize) -> Result<Self, Error> {
        let signed = SignedData::split(der, "Certificate", "TBSCertificate")?;

        // Everything else through x509-parser.
        let (rest, x509) =
            X509Certificate::from_der(der).map_err(|e| Error::Malformed(format!("x509: {e}")))?;
        if !rest.is_empty() || x509.tbs_certificate.as_ref() != signed.tbs() {
            return Err(Error::Malformed(
                "TBSCertificate boundaries disagree".to_owned(),
            ));
        }
        if x509.tbs_certificate.signature != x509.signature_algorithm {
            return Err(Error::SignatureAlgorithmMismatch);
        }

        let spki = x509.public_key().raw.to_vec();
        let public_key = PublicKey::from_spki_der(&spki);
        let extensions = Extensions::read(&x509)?;
        let validity = x509.validity();
        Ok(Self {
            fingerprint: plinth_crypto::digest(HashAlg::Sha256, der),
            der: der.to_vec(),
            trimmed,
            signed,
            version: x509.version().0.saturating_add(1),
            serial: x509.raw_serial().to_vec(),
            issuer: name(x509.issuer()),
            subject: name(x509.subject()),
            validity: Validity {
                not_before: unix_time(validity.not_before.timestamp()),
                not_after: unix_time(validity.not_after.timestamp()),
            },
            spki,
            public_key,
            extensions: extensions.all,
            basic_constraints: extensions.basic_constraints,
            key_usage: extensions.key_usage,
            subject_key_id: extensions.subject_key_id,
            authority_key_id: extensions.authority_key_id,
            extended_key_usage: extensions.extended_key_usage,
            san_directory_attributes: extensions.san_directory_attributes,
        })
    }

    /// The certificate's DER (after trimming, if [`Certificate::from_der_trimmed`] cut
    /// padding off).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// How many padding bytes [`Certificate::from_der_trimmed`] removed (0 if none).
    pub const fn trimmed_len(&self) -> usize {
        self.trimmed
    }

    /// The `TBSCertificate` exactly as received: the bytes the signature covers.
    pub fn tbs_der(&self) -> &[u8] {
        self.signed.tbs()
    }

    /// The outer `signatureAlgorithm` `AlgorithmIdentifier` DER.
    pub fn signature_algorithm_der(&self) -> &[u8] {
        self.signed.signature_algorithm()
    }

    /// The scheme the issuer's key must verify this certificate's signature with.
    ///
    /// # Errors
    /// [`Error::UnsupportedSignatureAlgorithm`] or [`Error::UnsupportedPssParameters`].
    pub fn signature_scheme(&self) -> Result<SignatureScheme, Error> {
        self.signed.scheme()
    }

    /// The signature bytes (BIT STRING contents without the unused-bits octet).
    pub fn signature(&self) -> &[u8] {
        self.signed.signature()
    }

    /// The X.509 version: 1, 2 or 3.
    pub const fn version(&self) -> u32 {
        self.version
    }

    /// The serial number's INTEGER content bytes as encoded (big-endian, two's complement).
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// The issuer name.
    pub const fn issuer(&self) -> &Name {
        &self.issuer
    }

    /// The subject name.
    pub const fn subject(&self) -> &Name {
        &self.subject
    }

    /// The validity period.
    pub const fn validity(&self) -> Validity {
        self.validity
    }

    /// The `SubjectPublicKeyInfo` DER as received.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The subject public key.
    ///
    /// # Errors
    /// [`Error::UnsupportedPublicKey`] when the crypto provider does not accept it (for
    /// example P-521 or RSA-1024).
    pub fn public_key(&self) -> Result<PublicKey, Error> {
        self.public_key
            .clone()
            .map_err(|_| Error::UnsupportedPublicKey {
                subject: self.subject.display.clone(),
            })
    }

    /// SHA-256 of [`Certificate::der`].
    pub const fn fingerprint(&self) -> &Digest {
        &self.fingerprint
    }

    /// Every extension, in order.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// The extension with this OID, if present (extensions are unique).
    pub fn extension(&self, oid: &Oid) -> Option<&Extension> {
        self.extensions.iter().find(|e| &e.oid == oid)
    }

    /// `basicConstraints`, if present.
    pub const fn basic_constraints(&self) -> Option<BasicConstraints> {
        self.basic_constraints
    }

    /// `keyUsage`, if present.
    pub const fn key_usage(&self) -> Option<KeyUsage> {
        self.key_usage
    }

    /// `subjectKeyIdentifier`, if present.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.subject_key_id.as_deref()
    }

    /// The `keyIdentifier` of `authorityKeyIdentifier`, if present.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.authority_key_id.as_deref()
    }

    /// The purposes listed in `extendedKeyUsage`, if the extension is present.
    pub fn extended_key_usage(&self) -> Option<&[Oid]> {
        self.extended_key_usage.as_deref()
    }

    /// The `subjectAltName` extension's value DER, if present.
    pub fn subject_alt_name_der(&self) -> Option<&[u8]> {
        self.extension(&oids::SUBJECT_ALT_NAME)
            .map(Extension::value)
    }

    /// The attributes of every `directoryName` in `subjectAltName`, in order (where TPM EK
    /// certificates carry the TCG manufacturer, model and version).
    pub fn san_directory_attributes(&self) -> &[NameAttribute] {
        &self.san_directory_attributes
    }

    /// Whether issuer and subject are the same name (byte for byte).
    pub fn is_self_issued(&self) -> bool {
        self.issuer.der == self.subject.der
    }

    /// Checks that this certificate's signature verifies with `issuer_key` over the
    /// `TBSCertificate` as received. This says nothing about whether the key is trusted.
    ///
    /// # Errors
    /// [`Error::SignatureInvalid`]; [`Error::UnsupportedSignatureAlgorithm`] /
    /// [`Error::UnsupportedPssParameters`] for an unsupported algorithm;
    /// [`Error::KeyAlgorithmMismatch`] when the key cannot make this kind of signature.
    pub fn verify_signed_by(&self, issuer_key: &PublicKey) -> Result<(), Error> {
        let subject = || self.subject.display.clone();
        self.signed.verify(
            issuer_key,
            || Error::SignatureInvalid { subject: subject() },
            || Error::KeyAlgorithmMismatch { subject: subject() },
        )
    }
}

/// The extensions this crate interprets, pulled out of the parsed certificate.
struct Extensions {
    all: Vec<Extension>,
    basic_constraints: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
    extended_key_usage: Option<Vec<Oid>>,
    san_directory_attributes: Vec<NameAttribute>,
}

impl Extensions {
    fn read(x509: &X509Certificate<'_>) -> Result<Self, Error> {
        let mut out = Self {
            all: Vec::new(),
            basic_constraints: None,
            key_usage: None,
            subject_key_id: None,
            authority_key_id: None,
            extended_key_usage: None,
            san_directory_attributes: Vec::new(),
        };
        for ext in x509.extensions() {
            let oid = Oid::from_string(ext.oid.to_id_string());
            if out.all.iter().any(|e| e.oid == oid) {
                return Err(Error::DuplicateExtension {
                    oid: oid.to_string(),
                });
            }
            let invalid = || Error::InvalidExtension {
                oid: oid.to_string(),
            };
            if oid == oids::EXTENDED_KEY_USAGE {
                out.extended_key_usage = Some(key_purposes(ext.value).ok_or_else(invalid)?);
            }
            match ext.parsed_extension() {
                ParsedExtension::BasicConstraints(bc) => {
                    out.basic_constraints = Some(BasicConstraints {
                        ca: bc.ca,
                        path_len: bc.path_len_constraint,
                    });
                }
                ParsedExtension::KeyUsage(ku) => out.key_usage = Some(KeyUsage { flags: ku.flags }),
                ParsedExtension::SubjectKeyIdentifier(id) => {
                    out.subject_key_id = Some(id.0.to_vec());
                }
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    out.authority_key_id = aki.key_identifier.as_ref().map(|id| id.0.to_vec());
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    for general_name in &san.general_names {
                        if let GeneralName::DirectoryName(dn) = general_name {
                            out.san_directory_attributes.extend(attributes(dn));
                        }
                    }
                }
                ParsedExtension::ParseError { .. }
                    if [
                        oids::BASIC_CONSTRAINTS,
                        oids::KEY_USAGE,
                        oids::SUBJECT_KEY_IDENTIFIER,
                        oids::AUTHORITY_KEY_IDENTIFIER,
                        oids::SUBJECT_ALT_NAME,
                    ]
                    .contains(&oid) =>
                {
                    return Err(invalid());
                }
                _ => {}
            }
            out.all.push(Extension {
                oid,
                critical: ext.critical,
                value: ext.value.to_vec(),
            });
        }
        Ok(out)
    }
}

/// Decodes `ExtKeyUsageSyntax`: SEQUENCE SIZE (1..MAX) OF `KeyPurposeId`.
fn key_purposes(value: &[u8]) -> Option<Vec<Oid>> {
    let mut outer = Reader::new(value);
    let seq = outer.read_tag(TAG_SEQUENCE, "extKeyUsage").ok()?;
    outer.finish("extKeyUsage").ok()?;
    let mut reader = Reader::new(seq.value);
    let mut purposes = Vec::new();
    while !reader.is_empty() {
        let oid = reader.read_tag(der::TAG_OID, "KeyPurposeId").ok()?;
        purposes.push(Oid::from_string(der::oid_to_dotted(oid.value)));
    }
    (!purposes.is_empty()).then_some(purposes)
}

pub(crate) fn name(x509: &X509Name<'_>) -> Name {
    Name {
        der: x509.as_raw().to_vec(),
        display: x509.to_string(),
        attributes: attributes(x509),
    }
}

fn attributes(x509: &X509Name<'_>) -> Vec<NameAttribute> {
    x509.iter_attributes()
        .map(|attr| NameAttribute {
            oid: Oid::from_string(attr.attr_type().to_id_string()),
            value: attr.as_slice().to_vec(),
            text: attr.as_str().ok().map(str::to_owned),
        })
        .collect()
}

/// Seconds since the epoch as a [`UnixTime`]; times before 1970 become the epoch.
pub(crate) fn unix_time(secs: i64) -> UnixTime {
    UnixTime::from_secs(u64::try_from(secs).unwrap_or(0))
}
