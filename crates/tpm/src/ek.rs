//! EK and AK certificates: who made this TPM.
//!
//! A TPM's endorsement key (EK) is certified by its manufacturer (or, for a cloud vTPM, by
//! the cloud's CA). [`verify_ek_certificate`] validates that certificate against the
//! vendor roots the operator configured ([`EkRoots`]) and returns the certified EK public
//! key; [`VerifiedEk::check_public_matches`] then ties it to the EK public area the TPM
//! presented, which credential activation binds to the AK. TPMs shipped without an EK
//! certificate can instead be admitted by an [`EkAllowList`] of EK key hashes. Cloud vTPMs
//! that certify the AK directly (GCE) are checked by [`verify_ak_certificate`].
//!
//! The certificate profile (TCG EK Credential Profile, as vendors issue it):
//! - NV padding after the certificate (`STMicro` pads with 0xFF) is trimmed, and the
//!   certificate is parsed leniently (Intel PTT encodes DEFAULT values, Nuvoton orders
//!   RDN SETs wrongly); signatures are checked over the bytes as received;
//! - the `subjectAltName` with the TCG TPM manufacturer, model and version attributes may be
//!   critical (it is, whenever the subject is empty);
//! - `certificatePolicies` may be critical (Intel, `STMicro` and Infineon CAs mark it so).
//!   Paths are validated under `anyPolicy` with no explicit-policy requirement, where policy
//!   OIDs cannot change the outcome; `policyConstraints` and `inhibitAnyPolicy` stay
//!   disallowed, so a CA that demands an explicit policy is rejected;
//! - every certificate on the path that has an `extendedKeyUsage` must list
//!   `tcg-kp-EKCertificate` (2.23.133.8.1) — for AK certificates, that or
//!   `tcg-kp-AIKCertificate` (2.23.133.8.3) — or `anyExtendedKeyUsage`.
//!
//! Key usage of the EK itself is not checked here: an EK that cannot decrypt fails
//! credential activation anyway.

use plinth_core::{Digest, HashAlg, UnixTime};
use plinth_crypto::{PublicKey, canonical_spki};
use plinth_x509::{Certificate, ChainOptions, TrustAnchors, VerifiedChain, oids, verify_chain};

use crate::{Error, Public};

/// The certificate authorities TPM certificates must chain to: the roots (trusted because
/// the operator configured them) and intermediates that may complete a path (trusted only
/// through a root).
#[derive(Debug, Clone, Default)]
pub struct EkRoots {
    anchors: TrustAnchors,
    intermediates: Vec<Certificate>,
}

impl EkRoots {
    /// An empty set: no certificate validates against it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Roots and intermediates from DER certificates.
    ///
    /// # Errors
    /// [`Error::TpmCaCertificate`] for a certificate that does not parse.
    pub fn from_der<R, I>(roots: R, intermediates: I) -> Result<Self, Error>
    where
        R: IntoIterator,
        R::Item: AsRef<[u8]>,
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut set = Self::new();
        for der in roots {
            set.add_root_der(der.as_ref())?;
        }
        for der in intermediates {
            set.add_intermediate_der(der.as_ref())?;
        }
        Ok(set)
    }

    /// Adds a trusted root certificate (DER).
    ///
    /// # Errors
    /// [`Error::TpmCaCertificate`] when it does not parse.
    pub fn add_root_der(&mut self, der: &[u8]) -> Result<(), Error> {
        self.add_root(Certificate::from_der(der).map_err(Error::TpmCaCertificate)?);
        Ok(())
    }

    /// Adds an intermediate CA certificate (DER).
    ///
    /// # Errors
    /// [`Error::TpmCaCertificate`] when it does not parse.
    pub fn add_intermediate_der(&mut self, der: &[u8]) -> Result<(), Error> {
        self.add_intermediate(Certificate::from_der(der).map_err(Error::TpmCaCertificate)?);
        Ok(())
    }

    /// Adds a parsed trusted root.
    pub fn add_root(&mut self, root: Certificate) {
        self.anchors.add(root);
    }

    /// Adds a parsed intermediate.
    pub fn add_intermediate(&mut self, intermediate: Certificate) {
        if !self.intermediates.contains(&intermediate) {
            self.intermediates.push(intermediate);
        }
    }

    /// The trusted roots.
    pub const fn roots(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// The intermediates.
    pub fn intermediates(&self) -> &[Certificate] {
        &self.intermediates
    }
}

/// The chain options of the EK certificate profile (see the module documentation).
fn ek_profile() -> ChainOptions {
    ChainOptions::new()
        .allow_critical_extension(oids::SUBJECT_ALT_NAME)
        .allow_critical_extension(oids::CERTIFICATE_POLICIES)
        .require_extended_key_usage(oids::TCG_KP_EK_CERTIFICATE)
}

/// An EK certificate that chains to a configured TPM vendor root at the given time.
/// Made only by [`verify_ek_certificate`].
#[derive(Debug, Clone)]
pub struct VerifiedEk {
    chain: VerifiedChain,
    public_key: PublicKey,
    canonical_spki: Vec<u8>,
    manufacturer: Option<String>,
    model: Option<String>,
    version: Option<String>,
}

/// An EK or AK certificate certifies a TPM key, so it is never a CA certificate; a root
/// from the trust store offered as an "EK certificate" would otherwise chain to itself.
fn reject_ca_certificate(certificate: &Certificate) -> Result<(), Error> {
    if certificate
        .basic_constraints()
        .is_some_and(|constraints| constraints.ca())
    {
        Err(Error::NotAnEndEntityCertificate)
    } else {
        Ok(())
    }
}

/// Validates a TPM EK certificate (DER, possibly followed by NV padding) against `roots`
/// at `now`, under the EK profile described in the module documentation.
///
/// # Errors
/// [`Error::EkUntrustedRoot`] when no path leads to a configured root;
/// [`Error::EkCertificate`] for any other failure (parse, signature, validity period,
/// CA constraints, extensions, unsupported key); [`Error::Crypto`] when the certified key
/// cannot be decoded.
pub fn verify_ek_certificate(
    cert_der: &[u8],
    roots: &EkRoots,
    now: UnixTime,
) -> Result<VerifiedEk, Error> {
    let leaf = Certificate::from_der_trimmed(cert_der).map_err(Error::EkCertificate)?;
    reject_ca_certificate(&leaf)?;
    let chain = verify_chain(
        &leaf,
        &roots.intermediates,
        &roots.anchors,
        now,
        &ek_profile(),
    )
    .map_err(|e| match e {
        plinth_x509::Error::UnknownIssuer { issuer } => Error::EkUntrustedRoot { issuer },
        other => Error::EkCertificate(other),
    })?;
    let public_key = chain.leaf().public_key().map_err(Error::EkCertificate)?;
    let canonical_spki = canonical_spki(&public_key)?;
    let tcg = |oid| {
        chain
            .leaf()
            .san_directory_attributes()
            .iter()
            .find(|a| *a.oid() == oid)
            .and_then(|a| a.value_str())
            .map(str::to_owned)
    };
    Ok(VerifiedEk {
        manufacturer: tcg(oids::TCG_TPM_MANUFACTURER),
        model: tcg(oids::TCG_TPM_MODEL),
        version: tcg(oids::TCG_TPM_VERSION),
        chain,
        public_key,
        canonical_spki,
    })
}

impl VerifiedEk {
    /// The EK certificate (after any NV padding was trimmed).
    pub const fn certificate(&self) -> &Certificate {
        self.chain.leaf()
    }

    /// The validated path, EK certificate first, vendor root last.
    pub const fn chain(&self) -> &VerifiedChain {
        &self.chain
    }

    /// The certified EK public key.
    pub const fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The subject of the vendor root the path ends at.
    pub fn root_subject(&self) -> String {
        self.chain.anchor().subject().to_string()
    }

    /// The TCG `tpmManufacturer` attribute of the `subjectAltName` (for example `id:494E5443`).
    pub fn manufacturer(&self) -> Option<&str> {
        self.manufacturer.as_deref()
    }

    /// The TCG `tpmModel` attribute.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The TCG `tpmVersion` attribute (firmware version, for example `id:00020000`).
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// How many bytes of NV padding followed the certificate.
    pub const fn padding_trimmed(&self) -> usize {
        self.chain.leaf().trimmed_len()
    }

    /// Checks that the EK public area the TPM presented holds the certified key.
    ///
    /// # Errors
    /// [`Error::EkPublicMismatch`] when the keys differ; the public area's own key errors.
    pub fn check_public_matches(&self, ek_public: &Public) -> Result<(), Error> {
        self.check_public_key_matches(&ek_public.public_key()?)
    }

    /// Checks that `ek_public` is the certified key, comparing key material (RSA modulus
    /// and exponent, or curve and point), not encodings.
    ///
    /// # Errors
    /// [`Error::EkPublicMismatch`] when the keys differ.
    pub fn check_public_key_matches(&self, ek_public: &PublicKey) -> Result<(), Error> {
        check_same_key(&self.canonical_spki, ek_public, Error::EkPublicMismatch)
    }
}

/// EKs admitted without a certificate, by SHA-256 of their canonical
/// `SubjectPublicKeyInfo` DER (see [`plinth_crypto::canonical_spki`]; compute entries
/// with [`EkAllowList::spki_sha256`]).
#[derive(Debug, Clone, Default)]
pub struct EkAllowList {
    entries: Vec<[u8; 32]>,
}

/// An EK found on the allow-list. Made only by [`EkAllowList::check`].
#[derive(Debug, Clone)]
pub struct AllowListedEk {
    public_key: PublicKey,
    spki_sha256: Digest,
}

impl AllowListedEk {
    /// The admitted EK public key.
    pub const fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The allow-list entry it matched.
    pub const fn spki_sha256(&self) -> &Digest {
        &self.spki_sha256
    }
}

impl EkAllowList {
    /// An empty list: no EK is admitted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry: SHA-256 of an EK's canonical `SubjectPublicKeyInfo` DER.
    pub fn add(&mut self, spki_sha256: [u8; 32]) {
        if !self.entries.contains(&spki_sha256) {
            self.entries.push(spki_sha256);
        }
    }

    /// Adds the entry for `ek`.
    ///
    /// # Errors
    /// [`Error::Crypto`] when the key cannot be put in canonical form.
    pub fn add_key(&mut self, ek: &PublicKey) -> Result<(), Error> {
        let digest = Self::spki_sha256(ek)?;
        let mut entry = [0; 32];
        entry.copy_from_slice(digest.as_bytes());
        self.add(entry);
        Ok(())
    }

    /// The allow-list entry for `ek`: SHA-256 of its canonical `SubjectPublicKeyInfo`.
    ///
    /// # Errors
    /// [`Error::Crypto`] when the key cannot be put in canonical form.
    pub fn spki_sha256(ek: &PublicKey) -> Result<Digest, Error> {
        Ok(plinth_crypto::digest(HashAlg::Sha256, &canonical_spki(ek)?))
    }

    /// How many entries the list has.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Admits `ek` if its entry is on the list.
    ///
    /// # Errors
    /// [`Error::EkNotAllowListed`] when it is not; [`Error::Crypto`] when the key cannot be
    /// put in canonical form.
    pub fn check(&self, ek: &PublicKey) -> Result<AllowListedEk, Error> {
        let spki_sha256 = Self::spki_sha256(ek)?;
        if self
            .entries
            .iter()
            .any(|e| e.as_slice() == spki_sha256.as_bytes())
        {
            Ok(AllowListedEk {
                public_key: ek.clone(),
                spki_sha256,
            })
        } else {
            Err(Error::EkNotAllowListed { spki_sha256 })
        }
    }
}

/// An AK certificate that chains to a configured CA at the given time (cloud vTPMs such
/// as GCE certify the AK directly). Made only by [`verify_ak_certificate`].
#[derive(Debug, Clone)]
pub struct VerifiedAkCertificate {
    chain: VerifiedChain,
    public_key: PublicKey,
    canonical_spki: Vec<u8>,
}

/// Validates an AK certificate (DER, possibly followed by NV padding) with extra
/// `intermediates` (DER) against `roots` at `now`. The profile is the EK profile, except
/// that `extendedKeyUsage` may name `tcg-kp-AIKCertificate` as well as `tcg-kp-EKCertificate`.
///
/// # Errors
/// [`Error::AkCertificate`] for any failure of parsing or path validation (an untrusted
/// root is [`plinth_x509::Error::UnknownIssuer`] inside it); [`Error::Crypto`] when the
/// certified key cannot be decoded.
pub fn verify_ak_certificate(
    cert_der: &[u8],
    intermediates: &[&[u8]],
    roots: &EkRoots,
    now: UnixTime,
) -> Result<VerifiedAkCertificate, Error> {
    let leaf = Certificate::from_der_trimmed(cert_der).map_err(Error::AkCertificate)?;
    reject_ca_certificate(&leaf)?;
    let mut pool = roots.intermediates.clone();
    for der in intermediates {
        let intermediate = Certificate::from_der(der).map_err(Error::AkCertificate)?;
        if !pool.contains(&intermediate) {
            pool.push(intermediate);
        }
    }
    let options = ek_profile().require_extended_key_usage(oids::TCG_KP_AIK_CERTIFICATE);
    let chain =
        verify_chain(&leaf, &pool, &roots.anchors, now, &options).map_err(Error::AkCertificate)?;
    let public_key = chain.leaf().public_key().map_err(Error::AkCertificate)?;
    let canonical_spki = canonical_spki(&public_key)?;
    Ok(VerifiedAkCertificate {
        chain,
        public_key,
        canonical_spki,
    })
}

impl VerifiedAkCertificate {
    /// The AK certificate.
    pub const fn certificate(&self) -> &Certificate {
        self.chain.leaf()
    }

    /// The validated path, AK certificate first, root last.
    pub const fn chain(&self) -> &VerifiedChain {
        &self.chain
    }

    /// The certified AK public key.
    pub const fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Checks that the AK public area presented holds the certified key.
    ///
    /// # Errors
    /// [`Error::AkCertificateKeyMismatch`] when the keys differ; the public area's own
    /// key errors.
    pub fn check_public_matches(&self, ak_public: &Public) -> Result<(), Error> {
        self.check_public_key_matches(&ak_public.public_key()?)
    }

    /// Checks that `ak_public` is the certified key, comparing key material.
    ///
    /// # Errors
    /// [`Error::AkCertificateKeyMismatch`] when the keys differ.
    pub fn check_public_key_matches(&self, ak_public: &PublicKey) -> Result<(), Error> {
        check_same_key(
            &self.canonical_spki,
            ak_public,
            Error::AkCertificateKeyMismatch,
        )
    }
}

/// Checks that `presented` is the key whose canonical `SubjectPublicKeyInfo` DER is
/// `certified`, failing with `mismatch` when it is not (or cannot be canonicalised).
fn check_same_key(certified: &[u8], presented: &PublicKey, mismatch: Error) -> Result<(), Error> {
    match canonical_spki(presented) {
        Ok(presented) if presented == certified => Ok(()),
        _ => Err(mismatch),
    }
}
