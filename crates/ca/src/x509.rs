//! Building certificates with rcgen, signed through the signing core.
//!
//! rcgen is used without a crypto backend: it lays out the DER, and calls back into
//! [`IssuerKey`] for the one signature, so the private key stays in its [`Signer`].

use std::cell::RefCell;

use der::Decode as _;
use plinth_core::{SpiffeId, UnixTime};
use plinth_crypto::{Curve, HashAlg, KeyKind, PublicKey, ecdsa_der_from_scalars};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SigningKey,
};
use spki::SubjectPublicKeyInfoRef;
use time::OffsetDateTime;

use crate::Error;
use crate::signer::Signer;

/// Length of a certificate serial number in bytes (128 random bits).
pub(crate) const SERIAL_LEN: usize = 16;

/// How far before "now" a certificate's notBefore is set, for peers whose clocks lag.
pub(crate) const NOT_BEFORE_SKEW_SECS: u64 = 10;

/// The BIT STRING contents of a SubjectPublicKeyInfo (the key without its algorithm).
pub(crate) fn public_key_bits(spki_der: &[u8]) -> Option<&[u8]> {
    SubjectPublicKeyInfoRef::from_der(spki_der)
        .ok()?
        .subject_public_key
        .as_bytes()
}

/// A key identifier: the leftmost 160 bits of the SHA-256 of the subjectPublicKey BIT
/// STRING value (RFC 7093 section 2, method 1).
pub(crate) fn key_identifier(public_key_bits: &[u8]) -> Vec<u8> {
    let digest = plinth_crypto::digest(HashAlg::Sha256, public_key_bits);
    digest.as_bytes().iter().take(20).copied().collect()
}

/// The signing side as rcgen sees it: the issuer's public key and a callback to its
/// signer. A signer failure is kept here, because rcgen's error type cannot carry it.
pub(crate) struct IssuerKey<'a> {
    signer: &'a dyn Signer,
    public_bits: &'a [u8],
    failure: RefCell<Option<Error>>,
}

impl<'a> IssuerKey<'a> {
    pub(crate) const fn new(signer: &'a dyn Signer, public_bits: &'a [u8]) -> Self {
        Self {
            signer,
            public_bits,
            failure: RefCell::new(None),
        }
    }

    /// Turns an rcgen error into the crate's, preferring the signer's own failure.
    pub(crate) fn error(&self, error: &rcgen::Error) -> Error {
        self.failure
            .borrow_mut()
            .take()
            .unwrap_or_else(|| Error::Encoding(error.to_string()))
    }
}

impl PublicKeyData for IssuerKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.public_bits
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.signer.algorithm().rcgen()
    }
}

impl SigningKey for IssuerKey<'_> {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let signed = self.signer.sign(message).and_then(|fixed| {
            let (r, s) = fixed.split_at(fixed.len() / 2);
            ecdsa_der_from_scalars(r, s).map_err(Error::from)
        });
        signed.map_err(|e| {
            *self.failure.borrow_mut() = Some(e);
            rcgen::Error::RemoteKeyError
        })
    }
}

/// A subject public key as rcgen writes it: its BIT STRING and algorithm.
pub(crate) struct SubjectKey<'a> {
    bits: &'a [u8],
    algorithm: &'static rcgen::SignatureAlgorithm,
}

/// The AlgorithmIdentifier DER of the subject keys plinth certifies, exactly as rcgen
/// writes them: id-ecPublicKey with the named curve, rsaEncryption with NULL parameters.
const EC_P256_ALGORITHM: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];
const EC_P384_ALGORITHM: &[u8] = &[
    0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04,
    0x00, 0x22,
];
const RSA_ALGORITHM: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

impl<'a> SubjectKey<'a> {
    /// Accepts `spki_der` only if it is a key plinth supports (the provider checks it:
    /// RSA size, EC point on the curve), in strict DER, with the algorithm identifier
    /// encoded as rcgen writes it: so the certificate carries exactly these bytes.
    pub(crate) fn new(spki_der: &'a [u8]) -> Result<Self, Error> {
        let key = PublicKey::from_spki_der(spki_der).map_err(|_| Error::UnsupportedSubjectKey)?;
        let (algorithm, identifier) = match key.kind() {
            KeyKind::Rsa { .. } => (&rcgen::PKCS_RSA_SHA256, RSA_ALGORITHM),
            KeyKind::Ec(Curve::P256) => (&rcgen::PKCS_ECDSA_P256_SHA256, EC_P256_ALGORITHM),
            KeyKind::Ec(Curve::P384) => (&rcgen::PKCS_ECDSA_P384_SHA384, EC_P384_ALGORITHM),
            _ => return Err(Error::UnsupportedSubjectKey),
        };
        // Strict DER (the parse above accepted it): the AlgorithmIdentifier follows the
        // outer SEQUENCE's tag and length octets.
        let header_len = match spki_der.get(1) {
            Some(&len) if len < 0x80 => 2,
            Some(&len) => 2 + usize::from(len & 0x7f),
            None => return Err(Error::UnsupportedSubjectKey),
        };
        let end = header_len.saturating_add(identifier.len());
        if spki_der.get(header_len..end) != Some(identifier) {
            return Err(Error::UnsupportedSubjectKey);
        }
        let bits = public_key_bits(spki_der).ok_or(Error::UnsupportedSubjectKey)?;
        Ok(Self { bits, algorithm })
    }

    /// The public key of one of the CA's own signers.
    pub(crate) fn of_signer(signer: &dyn Signer, bits: &'a [u8]) -> Self {
        Self {
            bits,
            algorithm: signer.algorithm().rcgen(),
        }
    }

    pub(crate) const fn bits(&self) -> &'a [u8] {
        self.bits
    }
}

impl PublicKeyData for SubjectKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.bits
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm
    }
}

pub(crate) fn offset_date_time(t: UnixTime) -> Result<OffsetDateTime, Error> {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .ok_or_else(|| Error::Encoding(format!("time {t} out of range")))
}

/// What a certificate says about its issuer: the issuer's name and, for
/// authorityKeyIdentifier, its subjectKeyIdentifier. Built once per issuer.
pub(crate) struct IssuerName {
    params: CertificateParams,
    has_key_id: bool,
}

impl IssuerName {
    /// `key_id`: the issuer's subjectKeyIdentifier (None if it has none).
    pub(crate) fn new(name: DistinguishedName, key_id: Option<&[u8]>) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name = name;
        params.key_identifier_method =
            KeyIdMethod::PreSpecified(key_id.unwrap_or_default().to_vec());
        Self {
            params,
            has_key_id: key_id.is_some(),
        }
    }
}

/// Encodes and signs one certificate.
fn sign(
    params: &CertificateParams,
    subject: &impl PublicKeyData,
    issuer_name: &IssuerName,
    issuer_key: &IssuerKey<'_>,
) -> Result<Vec<u8>, Error> {
    let issuer = Issuer::from_params(&issuer_name.params, issuer_key);
    params
        .signed_by(subject, &issuer)
        .map(|certificate| certificate.der().to_vec())
        .map_err(|e| issuer_key.error(&e))
}

/// The validity period and serial of a certificate about to be issued.
pub(crate) struct Issuance {
    pub(crate) not_before: UnixTime,
    pub(crate) not_after: UnixTime,
    pub(crate) serial: [u8; SERIAL_LEN],
}

/// An X.509-SVID leaf (SPIFFE X.509-SVID §4): one URI SAN, empty subject (so the SAN is
/// critical), cA false, keyUsage digitalSignature (critical), extendedKeyUsage serverAuth
/// and clientAuth, subject and authority key identifiers.
pub(crate) fn leaf(
    id: &SpiffeId,
    subject: &SubjectKey<'_>,
    issuance: &Issuance,
    issuer_name: &IssuerName,
    issuer_key: &IssuerKey<'_>,
) -> Result<Vec<u8>, Error> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.not_before = offset_date_time(issuance.not_before)?;
    params.not_after = offset_date_time(issuance.not_after)?;
    params.serial_number = Some(SerialNumber::from_slice(&issuance.serial));
    let uri = id
        .to_string()
        .try_into()
        .map_err(|e: rcgen::Error| Error::Encoding(e.to_string()))?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = issuer_name.has_key_id;
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(subject.bits()));
    sign(&params, subject, issuer_name, issuer_key)
}

/// The subject name of a plinth CA certificate: `O=plinth, CN=<common name>`.
pub(crate) fn ca_name(common_name: String) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "plinth");
    name.push(DnType::CommonName, common_name);
    name
}

/// Who signs a CA certificate.
pub(crate) enum CaIssuer<'a> {
    /// The subject's own key: a self-signed root.
    SelfSigned(&'a IssuerKey<'a>),
    /// Another CA.
    By(&'a IssuerName, &'a IssuerKey<'a>),
}

/// A CA certificate (SPIFFE X.509-SVID §5): cA true with `path_len`, keyUsage keyCertSign
/// and cRLSign (critical), the trust domain's own SPIFFE ID as its one URI SAN, key
/// identifiers.
pub(crate) fn ca(
    subject_name: &DistinguishedName,
    subject_key: &SubjectKey<'_>,
    trust_domain_id: &SpiffeId,
    path_len: u8,
    issuance: &Issuance,
    issuer: &CaIssuer<'_>,
) -> Result<Vec<u8>, Error> {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject_name.clone();
    params.not_before = offset_date_time(issuance.not_before)?;
    params.not_after = offset_date_time(issuance.not_after)?;
    params.serial_number = Some(SerialNumber::from_slice(&issuance.serial));
    let uri = trust_domain_id
        .to_string()
        .try_into()
        .map_err(|e: rcgen::Error| Error::Encoding(e.to_string()))?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let subject_key_id = key_identifier(subject_key.bits());
    params.key_identifier_method = KeyIdMethod::PreSpecified(subject_key_id.clone());
    let self_name = IssuerName::new(subject_name.clone(), Some(&subject_key_id));
    let (issuer_name, issuer_key) = match issuer {
        CaIssuer::SelfSigned(key) => (&self_name, *key),
        CaIssuer::By(name, key) => (*name, *key),
    };
    params.use_authority_key_identifier_extension = issuer_name.has_key_id;
    sign(&params, subject_key, issuer_name, issuer_key)
}
