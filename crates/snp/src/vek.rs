//! VCEK and VLEK certificates: the AMD extensions that bind a key to a product, a chip and
//! a TCB (AMD "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface
//! Specification", 57230).
//!
//! | OID (1.3.6.1.4.1.3704.1.…) | name | encoding |
//! |---|---|---|
//! | .1 | structVersion | INTEGER |
//! | .2 | productName | IA5String (`Milan-B0`, `Genoa`, `Turin`) |
//! | .3.1 / .3.2 / .3.3 / .3.8 | blSPL / teeSPL / snpSPL / ucodeSPL | INTEGER |
//! | .3.4 – .3.7 | spl_4 – spl_7 (reserved TCB bytes) | INTEGER |
//! | .3.9 | fmcSPL (Turin) | INTEGER |
//! | .4 | hwID (VCEK only) | the raw bytes, or an OCTET STRING of them |
//! | .5 | cspId (VLEK only) | IA5String |

use std::fmt;

use der::Decode;
use der::asn1::{Ia5StringRef, OctetStringRef};
use plinth_crypto::{Curve, KeyKind, PublicKey};
use plinth_x509::{Certificate, Oid};

use crate::{Error, Product, SigningKey, TcbComponent, TcbLayout, TcbVersion};

const PRODUCT_NAME: Oid = Oid::from_static("1.3.6.1.4.1.3704.1.2");
const BL_SPL: Oid = Oid::from_static("1.3.6.1.4.1.3704.1.3.1");
const TEE_SPL: Oid = Oid::from_static("1.3.6.1.4.1.3704.1.3.2");
const SNP_SPL: Oid = Oid::from_static("1.3.6.1.4.1.3704.1.3.3");
const SPL_4: Oid = Oid::from_static("1.3.6.1.4.1.3704.1.3.4");
const SPL_5: Oid = Oid::from_static("1.3.6.1.4.1.3704.1.3.5");
const SPL_6: Oid = Oid::from_static("1.3.6.1.4.1.3704.1.3.6");
const SPL_7: Oid = Oid::from_static("1.3.6.1.4.1.3704.1.3.7");
const UCODE_SPL: Oid = Oid::from_static("1.3.6.1.4.1.3704.1.3.8");
const FMC_SPL: Oid = Oid::from_static("1.3.6.1.4.1.3704.1.3.9");
const HW_ID: Oid = Oid::from_static("1.3.6.1.4.1.3704.1.4");
const CSP_ID: Oid = Oid::from_static("1.3.6.1.4.1.3704.1.5");

/// The TCB security patch levels an endorsement certificate was issued for.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertifiedTcb {
    layout: TcbLayout,
    fmc: Option<u8>,
    bootloader: u8,
    tee: u8,
    snp: u8,
    microcode: u8,
    /// spl_4 … spl_7, when present.
    reserved: [Option<u8>; 4],
}

impl CertifiedTcb {
    /// The level the certificate gives `component` (`None` only for FMC before Turin).
    pub const fn component(&self, component: TcbComponent) -> Option<u8> {
        match component {
            TcbComponent::Fmc => self.fmc,
            TcbComponent::Bootloader => Some(self.bootloader),
            TcbComponent::Tee => Some(self.tee),
            TcbComponent::Snp => Some(self.snp),
            TcbComponent::Microcode => Some(self.microcode),
        }
    }

    /// The components and levels, in [`TcbComponent::ALL`] order.
    pub fn components(&self) -> impl Iterator<Item = (TcbComponent, u8)> + '_ {
        TcbComponent::ALL
            .into_iter()
            .filter_map(|c| self.component(c).map(|v| (c, v)))
    }

    /// The TCB_VERSION byte each reserved-level extension (spl_4 … spl_7) stands for.
    const fn reserved_byte(layout: TcbLayout, spl: usize) -> Option<usize> {
        match (layout, spl) {
            // Milan/Genoa: bytes 2..=5 are reserved, named spl_4..spl_7.
            (TcbLayout::Legacy, 4..=7) => Some(spl - 2),
            // Turin: bytes 4..=6 are reserved, named spl_5..spl_7.
            (TcbLayout::Turin, 5..=7) => Some(spl - 1),
            _ => None,
        }
    }

    /// Checks that every level in the certificate equals the report's REPORTED_TCB
    /// (decoded with the same product's layout).
    pub(crate) fn check_matches(&self, reported: TcbVersion) -> Result<(), Error> {
        for component in TcbComponent::ALL {
            let (report, certificate) = (reported.component(component), self.component(component));
            if report != certificate {
                return Err(Error::TcbMismatch {
                    component: component.name(),
                    report: report.unwrap_or(0),
                    certificate: certificate.unwrap_or(0),
                });
            }
        }
        let bytes = reported.raw().to_le_bytes();
        for (spl, level) in (4..=7).zip(self.reserved) {
            let Some(level) = level else { continue };
            let report = Self::reserved_byte(self.layout, spl).and_then(|i| bytes.get(i).copied());
            if report != Some(level) {
                return Err(Error::TcbMismatch {
                    component: ["spl_4", "spl_5", "spl_6", "spl_7"]
                        .get(spl - 4)
                        .copied()
                        .unwrap_or("spl"),
                    report: report.unwrap_or(0),
                    certificate: level,
                });
            }
        }
        Ok(())
    }
}

impl fmt::Debug for CertifiedTcb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertifiedTcb(")?;
        for (i, (component, level)) in self.components().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{component}={level}")?;
        }
        f.write_str(")")
    }
}

/// A VCEK or VLEK certificate with its AMD extensions decoded: NOT yet verified.
///
/// Trust comes only from [`crate::verify_endorsement`], which chains it to a pinned ARK.
#[derive(Debug, Clone)]
pub struct EndorsementKey {
    certificate: Certificate,
    kind: SigningKey,
    product: Product,
    hwid: Option<Vec<u8>>,
    tcb: CertifiedTcb,
    csp_id: Option<String>,
    public_key: PublicKey,
}

fn extension<'c>(cert: &'c Certificate, oid: &Oid, name: &'static str) -> Result<&'c [u8], Error> {
    cert.extension(oid)
        .map(plinth_x509::Extension::value)
        .ok_or(Error::MissingVekExtension(name))
}

/// A DER INTEGER that must fit in a `u8` (with its leading zero for 128..=255).
fn small_uint(value: &[u8], name: &'static str) -> Result<u8, Error> {
    u8::from_der(value).map_err(|_| Error::MalformedVekExtension(name))
}

/// A DER IA5String.
fn ia5_string<'a>(value: &'a [u8], name: &'static str) -> Result<&'a str, Error> {
    Ia5StringRef::from_der(value)
        .map(|s| s.as_str())
        .map_err(|_| Error::MalformedVekExtension(name))
}

fn level(cert: &Certificate, oid: &Oid, name: &'static str) -> Result<u8, Error> {
    small_uint(extension(cert, oid, name)?, name)
}

fn optional_level(cert: &Certificate, oid: &Oid, name: &'static str) -> Result<Option<u8>, Error> {
    cert.extension(oid)
        .map(|ext| small_uint(ext.value(), name))
        .transpose()
}

/// The hwID value: the raw chip id, or (as some KDS certificates encode it) a DER OCTET
/// STRING wrapping it. Told apart by length, so the two cannot be confused.
fn hwid(value: &[u8], len: usize) -> Result<Vec<u8>, Error> {
    if value.len() == len {
        return Ok(value.to_vec());
    }
    match OctetStringRef::from_der(value) {
        Ok(inner) if inner.as_bytes().len() == len => Ok(inner.as_bytes().to_vec()),
        _ => Err(Error::MalformedVekExtension("hwID")),
    }
}

impl EndorsementKey {
    /// Parses a DER VCEK or VLEK certificate and decodes its AMD extensions.
    ///
    /// # Errors
    /// [`Error::Certificate`] when the DER is not a certificate,
    /// [`Error::NotAnEndorsementKey`] when the subject is neither `SEV-VCEK` nor `SEV-VLEK`
    /// or the key is not ECDSA P-384, [`Error::MissingVekExtension`] /
    /// [`Error::MalformedVekExtension`] for the AMD extensions.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let certificate = Certificate::from_der(der).map_err(|source| Error::Certificate {
            role: "endorsement key",
            source,
        })?;
        Self::from_certificate(certificate)
    }

    /// As [`Self::from_der`], for an already parsed certificate.
    ///
    /// # Errors
    /// As [`Self::from_der`].
    pub fn from_certificate(certificate: Certificate) -> Result<Self, Error> {
        let subject = || certificate.subject().to_string();
        let kind = match certificate.subject().common_name() {
            Some("SEV-VCEK") => SigningKey::Vcek,
            Some("SEV-VLEK") => SigningKey::Vlek,
            _ => return Err(Error::NotAnEndorsementKey { subject: subject() }),
        };
        let public_key = certificate
            .public_key()
            .ok()
            .filter(|key| key.kind() == KeyKind::Ec(Curve::P384))
            .ok_or_else(|| Error::NotAnEndorsementKey { subject: subject() })?;

        let name = ia5_string(
            extension(&certificate, &PRODUCT_NAME, "productName")?,
            "productName",
        )?;
        let product = Product::from_cert_product_name(name)
            .ok_or_else(|| Error::UnknownProductName(name.to_owned()))?;
        let layout = TcbLayout::of(product);

        let fmc = optional_level(&certificate, &FMC_SPL, "fmcSPL")?;
        match (layout, fmc) {
            (TcbLayout::Turin, None) => return Err(Error::MissingVekExtension("fmcSPL")),
            (TcbLayout::Legacy, Some(_)) => return Err(Error::MalformedVekExtension("fmcSPL")),
            _ => {}
        }
        let tcb = CertifiedTcb {
            layout,
            fmc,
            bootloader: level(&certificate, &BL_SPL, "blSPL")?,
            tee: level(&certificate, &TEE_SPL, "teeSPL")?,
            snp: level(&certificate, &SNP_SPL, "snpSPL")?,
            microcode: level(&certificate, &UCODE_SPL, "ucodeSPL")?,
            reserved: [
                optional_level(&certificate, &SPL_4, "spl_4")?,
                optional_level(&certificate, &SPL_5, "spl_5")?,
                optional_level(&certificate, &SPL_6, "spl_6")?,
                optional_level(&certificate, &SPL_7, "spl_7")?,
            ],
        };

        let hwid = match kind {
            SigningKey::Vcek => Some(hwid(
                extension(&certificate, &HW_ID, "hwID")?,
                product.hwid_len(),
            )?),
            SigningKey::Vlek => None,
        };
        let csp_id = certificate
            .extension(&CSP_ID)
            .map(|ext| ia5_string(ext.value(), "cspId").map(str::to_owned))
            .transpose()?;

        Ok(Self {
            certificate,
            kind,
            product,
            hwid,
            tcb,
            csp_id,
            public_key,
        })
    }

    /// The certificate.
    pub const fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// VCEK or VLEK.
    pub const fn kind(&self) -> SigningKey {
        self.kind
    }

    /// The product its productName extension names.
    pub const fn product(&self) -> Product {
        self.product
    }

    /// The hwID (VCEK only): 64 bytes before Turin, 8 on Turin.
    pub fn hwid(&self) -> Option<&[u8]> {
        self.hwid.as_deref()
    }

    /// The TCB levels it was issued for.
    pub const fn tcb(&self) -> &CertifiedTcb {
        &self.tcb
    }

    /// The cloud provider a VLEK was issued to (cspId), when present.
    pub fn csp_id(&self) -> Option<&str> {
        self.csp_id.as_deref()
    }

    /// The P-384 public key.
    pub const fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(path: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../../testdata/sev-snp/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn milan_vcek_extensions() {
        let vek = EndorsementKey::from_der(&load("virtee-sev/vcek_milan.der")).unwrap();
        assert_eq!(
            (vek.kind(), vek.product()),
            (SigningKey::Vcek, Product::Milan)
        );
        assert_eq!(
            &hex::encode(vek.hwid().unwrap())[..32],
            "d49554ec717f4e5b0fe6b143bcf0405b"
        );
        let levels: Vec<_> = vek.tcb().components().collect();
        assert_eq!(
            levels,
            [
                (TcbComponent::Bootloader, 3),
                (TcbComponent::Tee, 0),
                (TcbComponent::Snp, 8),
                (TcbComponent::Microcode, 115)
            ]
        );
    }

    #[test]
    fn turin_vcek_extensions() {
        let vek = EndorsementKey::from_der(&load("oak/turin_oc_vcek.der")).unwrap();
        assert_eq!(vek.product(), Product::Turin);
        assert_eq!(
            vek.hwid().map(hex::encode).as_deref(),
            Some("3b42092f69c656d3")
        );
        let levels: Vec<_> = vek.tcb().components().collect();
        assert_eq!(
            levels,
            [
                (TcbComponent::Fmc, 0),
                (TcbComponent::Bootloader, 1),
                (TcbComponent::Tee, 0),
                (TcbComponent::Snp, 2),
                (TcbComponent::Microcode, 71)
            ]
        );
        let reported = TcbVersion::new(0x4700_0000_0200_0100, TcbLayout::Turin);
        assert_eq!(vek.tcb().check_matches(reported), Ok(()));
    }

    #[test]
    fn every_tcb_component_is_compared() {
        let vek = EndorsementKey::from_der(&load("virtee-sev/vcek_milan.der")).unwrap();
        let good = 0x7308_0000_0000_0003_u64;
        assert_eq!(
            vek.tcb()
                .check_matches(TcbVersion::new(good, TcbLayout::Legacy)),
            Ok(())
        );
        for (byte, component, report, certificate) in [
            (0, "bootloader", 4, 3),
            (1, "tee", 1, 0),
            (2, "spl_4", 1, 0),
            (5, "spl_7", 1, 0),
            (6, "snp", 9, 8),
            (7, "microcode", 116, 115),
        ] {
            let mut bytes = good.to_le_bytes();
            bytes[byte] = report;
            let changed = TcbVersion::new(u64::from_le_bytes(bytes), TcbLayout::Legacy);
            assert_eq!(
                vek.tcb().check_matches(changed),
                Err(Error::TcbMismatch {
                    component,
                    report,
                    certificate
                }),
                "byte {byte}"
            );
        }
        // Turin: FMC is compared too.
        let turin = EndorsementKey::from_der(&load("oak/turin_oc_vcek.der")).unwrap();
        let changed = TcbVersion::new(0x4700_0000_0200_0101, TcbLayout::Turin);
        assert_eq!(
            turin.tcb().check_matches(changed),
            Err(Error::TcbMismatch {
                component: "fmc",
                report: 1,
                certificate: 0
            })
        );
    }

    #[test]
    fn vlek_extensions() {
        let vek = EndorsementKey::from_der(&load("trustee/test-vlek.der")).unwrap();
        assert_eq!(
            (vek.kind(), vek.product(), vek.hwid()),
            (SigningKey::Vlek, Product::Milan, None)
        );
        assert_eq!(vek.csp_id(), Some("CN=cc-us-east-2.amazonaws.com"));
        assert_eq!(vek.tcb().component(TcbComponent::Microcode), Some(217));
    }

    #[test]
    fn nested_hwid_encoding_parses() {
        // trustee's tampered VCEK wraps hwID in an inner OCTET STRING (04 40 ..).
        let vek = EndorsementKey::from_der(&load("trustee/test-vcek-invalid-new.der")).unwrap();
        let expected: Vec<u8> = (0..64).collect();
        assert_eq!(vek.hwid(), Some(expected.as_slice()));
    }
}
