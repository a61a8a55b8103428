//! Verification: the endorsement chain, then the report against it.

use plinth_core::{BoundKey, Claims, Digest, HashAlg, Measurement, Nonce, Platform, UnixTime};
use plinth_crypto::{PublicKey, SignatureScheme};
use plinth_x509::{Certificate, ChainOptions};

use crate::report::Cpuid;
use crate::vek::{CertifiedTcb, EndorsementKey};
use crate::{
    AmdRoots, AttestationReport, Collateral, Error, GuestPolicy, PlatformInfo, Product, SigningKey,
    TcbLayout, TcbVersion,
};

/// Signature checks one chain may cost: VCEK←ASK, ASK←ARK, and a few wrong candidates.
const MAX_SIGNATURE_CHECKS: usize = 6;

/// A VCEK or VLEK that chains to the pinned ARK of its product: proof made only by
/// [`verify_endorsement`]. Cheap to clone and safe to cache; [`verify_report`] checks the
/// validity periods again at its own `now`.
#[derive(Debug, Clone)]
pub struct VerifiedEndorsement {
    kind: SigningKey,
    product: Product,
    hwid: Option<Vec<u8>>,
    tcb: CertifiedTcb,
    csp_id: Option<String>,
    public_key: PublicKey,
    fingerprint: Digest,
    vek_not_before: UnixTime,
    vek_not_after: UnixTime,
    chain_not_before: UnixTime,
    chain_not_after: UnixTime,
}

impl VerifiedEndorsement {
    /// VCEK or VLEK.
    pub const fn kind(&self) -> SigningKey {
        self.kind
    }

    /// The product whose ARK it chains to.
    pub const fn product(&self) -> Product {
        self.product
    }

    /// The hwID of a VCEK.
    pub fn hwid(&self) -> Option<&[u8]> {
        self.hwid.as_deref()
    }

    /// The TCB levels it certifies.
    pub const fn tcb(&self) -> &CertifiedTcb {
        &self.tcb
    }

    /// The VLEK's cspId.
    pub fn csp_id(&self) -> Option<&str> {
        self.csp_id.as_deref()
    }

    /// SHA-256 of the VCEK/VLEK certificate DER.
    pub const fn fingerprint(&self) -> &Digest {
        &self.fingerprint
    }

    /// Checks every certificate of the chain is valid at `now`.
    fn check_time(&self, now: UnixTime) -> Result<(), Error> {
        let secs = now.as_secs();
        if secs < self.vek_not_before.as_secs() {
            return Err(Error::VekNotYetValid {
                kind: self.kind,
                not_before: self.vek_not_before,
                now,
            });
        }
        if secs > self.vek_not_after.as_secs() {
            return Err(Error::VekExpired {
                kind: self.kind,
                not_after: self.vek_not_after,
                now,
            });
        }
        if secs < self.chain_not_before.as_secs() || secs > self.chain_not_after.as_secs() {
            return Err(Error::ChainNotValidAt { now });
        }
        Ok(())
    }
}

/// Verifies `key` (a VCEK or VLEK) for `product`: its productName names `product`; it and
/// every certificate above it are valid at `now`; it chains, through one of
/// `intermediates`, to the ARK pinned for `product` in `roots`, every signature (RSASSA-PSS
/// SHA-384) checked over the bytes as received; the intermediate is AMD's ASK (for a VCEK)
/// or ASVK (for a VLEK) of that product; and, for every CRL in `crls`, the CRL is signed
/// by that ARK, current at `now`, and lists no certificate of the chain.
///
/// # Errors
/// [`Error::ProductMismatch`], [`Error::ProductNotPinned`], [`Error::VekExpired`],
/// [`Error::VekNotYetValid`], [`Error::Chain`] (with the path validator's reason),
/// [`Error::UnexpectedIssuer`], and the CRL errors.
pub fn verify_endorsement(
    key: &EndorsementKey,
    collateral: &Collateral,
    roots: &AmdRoots,
    product: Product,
    now: UnixTime,
) -> Result<VerifiedEndorsement, Error> {
    let kind = key.kind();
    if key.product() != product {
        return Err(Error::ProductMismatch {
            expected: product,
            found: key.product(),
            source_name: "certificate productName",
        });
    }
    let (ark, anchors) = roots.anchors(product)?;
    let certificate = key.certificate();
    let validity = certificate.validity();
    if now.as_secs() < validity.not_before().as_secs() {
        return Err(Error::VekNotYetValid {
            kind,
            not_before: validity.not_before(),
            now,
        });
    }
    if now.as_secs() > validity.not_after().as_secs() {
        return Err(Error::VekExpired {
            kind,
            not_after: validity.not_after(),
            now,
        });
    }

    let options = ChainOptions::new()
        .with_max_depth(3)
        .with_max_signature_checks(MAX_SIGNATURE_CHECKS);
    let chain = plinth_x509::verify_chain(
        certificate,
        collateral.intermediates(),
        anchors,
        now,
        &options,
    )
    .map_err(|source| Error::Chain {
        kind,
        product,
        source,
    })?;

    let expected_issuer = match kind {
        SigningKey::Vcek => format!("SEV-{product}"),
        SigningKey::Vlek => format!("SEV-VLEK-{product}"),
    };
    let issuer = chain
        .intermediates()
        .first()
        .and_then(|c| c.subject().common_name());
    if issuer != Some(expected_issuer.as_str()) {
        return Err(Error::UnexpectedIssuer {
            kind,
            expected: expected_issuer,
            found: issuer.unwrap_or_default().to_owned(),
        });
    }

    for crl in collateral.crls() {
        if crl.issuer_der() != ark.subject().der() {
            // A CRL of another product's ARK says nothing about this chain.
            continue;
        }
        crl.verify(ark, now)?;
        for cert in chain.certificates() {
            crl.check_not_revoked(cert)?;
        }
    }

    let above: Vec<&Certificate> = chain.certificates().skip(1).collect();
    let chain_not_before = above
        .iter()
        .map(|c| c.validity().not_before())
        .max()
        .unwrap_or(now);
    let chain_not_after = above
        .iter()
        .map(|c| c.validity().not_after())
        .min()
        .unwrap_or(now);
    Ok(VerifiedEndorsement {
        kind,
        product,
        hwid: key.hwid().map(<[u8]>::to_vec),
        tcb: *key.tcb(),
        csp_id: key.csp_id().map(str::to_owned),
        public_key: key.public_key().clone(),
        fingerprint: certificate.fingerprint().clone(),
        vek_not_before: validity.not_before(),
        vek_not_after: validity.not_after(),
        chain_not_before,
        chain_not_after,
    })
}

/// Verifies a report with an endorsement key verified earlier (and perhaps cached):
/// the validity periods at `now`; SIGNING_KEY against the key's kind; the CPUID product
/// (reports of version 3 and later) against the key's product; every REPORTED_TCB
/// component, decoded with the product's layout, against the certificate's TCB
/// extensions; for a VCEK, CHIP_ID against hwID (64 bytes, or the first 8 on Turin); and
/// the ECDSA P-384 signature over bytes `[0, 0x2A0)` of `report` exactly as given.
///
/// # Errors
/// The parse errors of [`AttestationReport::parse`], [`Error::VekExpired`],
/// [`Error::VekNotYetValid`], [`Error::ChainNotValidAt`], [`Error::SigningKeyMismatch`],
/// [`Error::ProductMismatch`], [`Error::SignatureInvalid`], [`Error::ChipIdMismatch`],
/// [`Error::TcbMismatch`].
pub fn verify_report(
    report: &[u8],
    endorsement: &VerifiedEndorsement,
    now: UnixTime,
) -> Result<VerifiedReport, Error> {
    let report = AttestationReport::parse(report)?;
    verify_parsed(report, endorsement, now)
}

fn verify_parsed(
    report: AttestationReport,
    endorsement: &VerifiedEndorsement,
    now: UnixTime,
) -> Result<VerifiedReport, Error> {
    endorsement.check_time(now)?;
    if report.signing_key() != endorsement.kind {
        return Err(Error::SigningKeyMismatch {
            report: report.signing_key(),
            certificate: endorsement.kind,
        });
    }
    let product = endorsement.product;
    if let Some(found) = report.cpuid_product()
        && found != product
    {
        return Err(Error::ProductMismatch {
            expected: product,
            found,
            source_name: "report CPUID",
        });
    }

    // Is this the certificate for this chip at this TCB? (Cheap, and a more useful error
    // than a failed signature when the wrong VCEK was fetched.)
    let layout = TcbLayout::of(product);
    endorsement
        .tcb
        .check_matches(TcbVersion::new(report.reported_tcb_raw(), layout))?;
    if let Some(hwid) = endorsement.hwid.as_deref() {
        let chip_id = report
            .chip_id()
            .get(..product.hwid_len())
            .ok_or(Error::ChipIdMismatch)?;
        if chip_id != hwid {
            return Err(Error::ChipIdMismatch);
        }
    }

    let (r, s) = report.signature_scalars();
    let signature =
        plinth_crypto::ecdsa_der_from_scalars(r, s).map_err(|_| Error::SignatureInvalid)?;
    endorsement
        .public_key
        .verify(
            SignatureScheme::EcdsaDer(HashAlg::Sha384),
            report.signed_bytes(),
            &signature,
        )
        .map_err(|_| Error::SignatureInvalid)?;

    Ok(VerifiedReport {
        report,
        product,
        chip_id_verified: endorsement.hwid.is_some(),
        csp_id: endorsement.csp_id.clone(),
        endorsement_fingerprint: endorsement.fingerprint.clone(),
    })
}

/// Verifies a report end to end: picks the product (`expected`, else the report's CPUID,
/// else the certificate's productName), the endorsement key the report names from
/// `collateral`, verifies it with [`verify_endorsement`] and the report with
/// [`verify_report`].
///
/// # Errors
/// [`Error::MissingCertificate`] when the collateral has no key of the kind the report
/// names; [`Error::SigningKeyMismatch`] when it has only the other kind; and the errors of
/// the two steps.
pub fn verify(
    report: &[u8],
    collateral: &Collateral,
    roots: &AmdRoots,
    expected: Option<Product>,
    now: UnixTime,
) -> Result<VerifiedReport, Error> {
    let parsed = AttestationReport::parse(report)?;
    let wanted = parsed.signing_key();
    let Some(key) = collateral.endorsement(wanted) else {
        let other = match wanted {
            SigningKey::Vcek => SigningKey::Vlek,
            SigningKey::Vlek => SigningKey::Vcek,
        };
        return Err(match collateral.endorsement(other) {
            Some(_) => Error::SigningKeyMismatch {
                report: wanted,
                certificate: other,
            },
            None => Error::MissingCertificate(wanted.name()),
        });
    };
    let product = expected
        .or_else(|| parsed.cpuid_product())
        .unwrap_or_else(|| key.product());
    let endorsement = verify_endorsement(key, collateral, roots, product, now)?;
    verify_parsed(parsed, &endorsement, now)
}

/// A report whose signature, endorsement chain, chip and TCB binding all verified.
/// Only [`verify_report`] and [`verify`] make one.
#[derive(Debug, Clone)]
pub struct VerifiedReport {
    report: AttestationReport,
    product: Product,
    chip_id_verified: bool,
    csp_id: Option<String>,
    endorsement_fingerprint: Digest,
}

impl VerifiedReport {
    /// Every field of the report (now verified). Prefer the accessors below for TCBs:
    /// they decode with the verified product's layout.
    pub const fn report(&self) -> &AttestationReport {
        &self.report
    }

    /// The product whose ARK the endorsement chains to.
    pub const fn product(&self) -> Product {
        self.product
    }

    /// The key that signed it.
    pub const fn signing_key(&self) -> SigningKey {
        self.report.signing_key()
    }

    /// The VLEK's cspId (cloud provider), when signed by a VLEK that carries one.
    pub fn csp_id(&self) -> Option<&str> {
        self.csp_id.as_deref()
    }

    /// SHA-256 of the VCEK/VLEK that verified it.
    pub const fn endorsement_fingerprint(&self) -> &Digest {
        &self.endorsement_fingerprint
    }

    /// MEASUREMENT, the SHA-384 launch digest.
    pub const fn measurement(&self) -> &[u8; 48] {
        self.report.measurement()
    }

    /// HOST_DATA.
    pub const fn host_data(&self) -> &[u8; 32] {
        self.report.host_data()
    }

    /// REPORT_DATA.
    pub const fn report_data(&self) -> &[u8; 64] {
        self.report.report_data()
    }

    /// The guest policy.
    pub const fn policy(&self) -> GuestPolicy {
        self.report.policy()
    }

    /// PLATFORM_INFO.
    pub const fn platform_info(&self) -> PlatformInfo {
        self.report.platform_info()
    }

    /// VMPL.
    pub const fn vmpl(&self) -> u32 {
        self.report.vmpl()
    }

    /// ID_KEY_DIGEST (all zero without an ID block).
    pub const fn id_key_digest(&self) -> &[u8; 48] {
        self.report.id_key_digest()
    }

    /// AUTHOR_KEY_DIGEST (all zero without an author key).
    pub const fn author_key_digest(&self) -> &[u8; 48] {
        self.report.author_key_digest()
    }

    /// AUTHOR_KEY_EN.
    pub const fn author_key_enabled(&self) -> bool {
        self.report.author_key_enabled()
    }

    /// CHIP_ID, when it was checked against the VCEK's hwID (`None` for VLEK reports,
    /// whose CHIP_ID nothing vouches for). 64 bytes, or 8 on Turin.
    pub fn chip_id(&self) -> Option<&[u8]> {
        if self.chip_id_verified {
            self.report.chip_id().get(..self.product.hwid_len())
        } else {
            None
        }
    }

    /// CPUID family/model/stepping (report version 3 and later).
    pub const fn cpuid(&self) -> Option<Cpuid> {
        self.report.cpuid()
    }

    fn tcb(&self, raw: u64) -> TcbVersion {
        TcbVersion::new(raw, TcbLayout::of(self.product))
    }

    /// REPORTED_TCB: the TCB the signing key is bound to (checked against the certificate).
    pub fn reported_tcb(&self) -> TcbVersion {
        self.tcb(self.report.reported_tcb_raw())
    }

    /// CURRENT_TCB.
    pub fn current_tcb(&self) -> TcbVersion {
        self.tcb(self.report.current_tcb_raw())
    }

    /// COMMITTED_TCB.
    pub fn committed_tcb(&self) -> TcbVersion {
        self.tcb(self.report.committed_tcb_raw())
    }

    /// LAUNCH_TCB.
    pub fn launch_tcb(&self) -> TcbVersion {
        self.tcb(self.report.launch_tcb_raw())
    }

    /// Checks, in constant time, that REPORT_DATA is SHA-512(`nonce` ‖ `spki_der`), the
    /// binding plinth's agent puts there, and returns the key it binds.
    ///
    /// # Errors
    /// [`Error::KeyBindingMismatch`].
    pub fn verify_key_binding(&self, nonce: &Nonce, spki_der: &[u8]) -> Result<BoundKey, Error> {
        let mut hasher = plinth_crypto::Hasher::new(HashAlg::Sha512);
        hasher.update(nonce.as_bytes());
        hasher.update(spki_der);
        let expected = hasher.finish();
        plinth_crypto::verify_slices_equal(expected.as_bytes(), self.report_data())
            .map_err(|_| Error::KeyBindingMismatch)?;
        Ok(BoundKey::from_spki_der(spki_der.to_vec()))
    }

    /// The normalized claims: platform `sev-snp`; hardware id = hex CHIP_ID when a VCEK
    /// vouched for it; measurements `measurement` (SHA-384) and, when non-zero,
    /// `id_key_digest` and `author_key_digest`; nonce = REPORT_DATA; debug = the policy's
    /// DEBUG bit. No key is bound: see [`Self::claims_with_bound_key`].
    pub fn claims(&self) -> Claims {
        let mut measurements = Vec::new();
        let mut add = |name: &str, bytes: &[u8]| {
            if let Ok(value) = Digest::new(HashAlg::Sha384, bytes) {
                measurements.push(Measurement {
                    name: name.to_owned(),
                    value,
                });
            }
        };
        add("measurement", self.measurement());
        if self.id_key_digest().iter().any(|&b| b != 0) {
            add("id_key_digest", self.id_key_digest());
        }
        if self.author_key_digest().iter().any(|&b| b != 0) {
            add("author_key_digest", self.author_key_digest());
        }
        Claims {
            platform: Platform::SevSnp,
            hardware_id: self.chip_id().map(hex::encode),
            measurements,
            bound_key: None,
            nonce: Some(self.report_data().to_vec()),
            debug: self.policy().debug_allowed(),
            produced_at: None,
        }
    }

    /// [`Self::claims`] with the key binding checked: `bound_key` is `spki_der` and
    /// `nonce` is `nonce`.
    ///
    /// # Errors
    /// [`Error::KeyBindingMismatch`].
    pub fn claims_with_bound_key(&self, nonce: &Nonce, spki_der: &[u8]) -> Result<Claims, Error> {
        let key = self.verify_key_binding(nonce, spki_der)?;
        let mut claims = self.claims();
        claims.bound_key = Some(key);
        claims.nonce = Some(nonce.as_bytes().to_vec());
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::REPORT_LEN;

    fn load(rel: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../../testdata/{rel}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// A VerifiedReport built around report bytes that were NOT verified: only for testing
    /// what happens after verification.
    fn assume_verified(bytes: &[u8]) -> VerifiedReport {
        VerifiedReport {
            report: AttestationReport::parse(bytes).unwrap(),
            product: Product::Milan,
            chip_id_verified: true,
            csp_id: None,
            endorsement_fingerprint: Digest::zero(HashAlg::Sha256),
        }
    }

    #[test]
    fn key_binding_is_sha512_of_nonce_and_spki() {
        let nonce = Nonce::from_slice(&[0x5a; 32]).unwrap();
        let spki = b"0Y0\x13\x06\x07*\x86H\xce=\x02\x01 (an SPKI)";
        let mut hasher = plinth_crypto::Hasher::new(HashAlg::Sha512);
        hasher.update(nonce.as_bytes());
        hasher.update(spki);
        let binding = hasher.finish();
        let mut bytes = load("sev-snp/go-sev-guest/attestation.bin");
        assert_eq!(bytes.len(), REPORT_LEN);
        bytes[0x50..0x90].copy_from_slice(binding.as_bytes());
        let report = assume_verified(&bytes);

        let key = report.verify_key_binding(&nonce, spki).unwrap();
        assert_eq!(key.spki_der(), spki);
        let claims = report.claims_with_bound_key(&nonce, spki).unwrap();
        assert_eq!(
            claims.bound_key.as_ref().map(BoundKey::spki_der),
            Some(&spki[..])
        );
        assert_eq!(claims.nonce.as_deref(), Some(&nonce.as_bytes()[..]));

        let other_nonce = Nonce::from_slice(&[0x5b; 32]).unwrap();
        assert_eq!(
            report.verify_key_binding(&other_nonce, spki).err(),
            Some(Error::KeyBindingMismatch)
        );
        assert_eq!(
            report.verify_key_binding(&nonce, b"another key").err(),
            Some(Error::KeyBindingMismatch)
        );
    }

    #[test]
    fn claims_include_key_digests_when_present() {
        let mut bytes = load("sev-snp/go-sev-guest/attestation.bin");
        bytes[0xE0] = 1; // ID_KEY_DIGEST
        bytes[0x110] = 2; // AUTHOR_KEY_DIGEST
        let names: Vec<String> = assume_verified(&bytes)
            .claims()
            .measurements
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["measurement", "id_key_digest", "author_key_digest"]);
    }

    #[test]
    fn rejects_an_ask_listed_on_the_crl_with_revoked() {
        let roots = AmdRoots::builtin().unwrap();
        let ark = roots.ark(Product::Milan).unwrap();
        let ask = crate::builtin_intermediates()
            .unwrap()
            .into_iter()
            .find(|c| c.subject().common_name() == Some("SEV-Milan"))
            .unwrap();
        let crl_der = crate::crl::tests::unsigned_crl(ark.subject().der(), &[ask.serial()]);
        let crl = crate::Crl::from_der(&crl_der).unwrap();
        // The signature is the generator's, not AMD's: verify() refuses it ...
        assert_eq!(
            crl.verify(ark, UnixTime::from_secs(1_700_000_000)),
            Err(Error::CrlSignatureInvalid)
        );
        // ... and the listing is honoured once a CRL is trusted.
        assert_eq!(
            crl.check_not_revoked(&ask),
            Err(Error::Revoked {
                subject: ask.subject().to_string(),
                serial: "010001".to_owned()
            })
        );
        assert_eq!(crl.check_not_revoked(ark), Ok(()));
    }
}
