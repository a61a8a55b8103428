//! The ATTESTATION_REPORT structure (SEV-SNP ABI specification, "ATTESTATION_REPORT
//! Structure"), parsed from its exact 1184 bytes.
//!
//! ```text
//! 0x000 VERSION            0x0E0 ID_KEY_DIGEST      0x1E0 COMMITTED_TCB
//! 0x004 GUEST_SVN          0x110 AUTHOR_KEY_DIGEST  0x1E8 CURRENT_BUILD/MINOR/MAJOR
//! 0x008 POLICY             0x140 REPORT_ID          0x1EC COMMITTED_BUILD/MINOR/MAJOR
//! 0x010 FAMILY_ID          0x160 REPORT_ID_MA       0x1F0 LAUNCH_TCB
//! 0x020 IMAGE_ID           0x180 REPORTED_TCB       0x1F8 LAUNCH_MIT_VECTOR (v5)
//! 0x030 VMPL               0x188 CPUID FAM/MOD/STEP 0x200 CURRENT_MIT_VECTOR (v5)
//! 0x034 SIGNATURE_ALGO           (v3 and later)    0x2A0 SIGNATURE: R (72, LE)
//! 0x038 CURRENT_TCB        0x1A0 CHIP_ID            0x2E8            S (72, LE)
//! 0x040 PLATFORM_INFO                               0x4A0 end
//! 0x048 AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY
//! 0x050 REPORT_DATA   0x090 MEASUREMENT   0x0C0 HOST_DATA
//! ```
//!
//! The signature covers bytes `[0, 0x2A0)` exactly as received; [`AttestationReport`]
//! keeps them.

use std::fmt;

use crate::reader::Reader;
use crate::{Error, GuestPolicy, PlatformInfo, Product, SigningKey, TcbLayout, TcbVersion};

/// Size of every attestation report.
pub const REPORT_LEN: usize = 0x4A0;
/// End of the signed part: the signature covers `[0, SIGNED_LEN)`.
pub const SIGNED_LEN: usize = 0x2A0;
/// Length of each little-endian signature component field.
const SIG_COMPONENT_LEN: usize = 72;
/// Length of a P-384 scalar.
const P384_SCALAR_LEN: usize = 48;
/// SIGNATURE_ALGO value for ECDSA P-384 with SHA-384, the only one defined.
const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// A firmware version triple (CURRENT_* / COMMITTED_* fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FirmwareVersion {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Build number.
    pub build: u8,
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// The CPUID family, model and stepping a report of version 3 or later carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cpuid {
    /// Combined family (base + extended), e.g. 0x19.
    pub family: u8,
    /// Combined model, e.g. 0x01.
    pub model: u8,
    /// Stepping.
    pub stepping: u8,
}

/// A structurally valid, NOT yet verified attestation report: the original bytes plus
/// their decoded fields.
///
/// Nothing here is trustworthy until [`crate::verify`] or [`crate::verify_report`]
/// has checked the signature; use this type to find which collateral to fetch, or to
/// inspect a report that failed.
#[derive(Clone)]
pub struct AttestationReport {
    raw: Box<[u8; REPORT_LEN]>,
    version: u32,
    guest_svn: u32,
    policy: GuestPolicy,
    family_id: [u8; 16],
    image_id: [u8; 16],
    vmpl: u32,
    current_tcb: u64,
    platform_info: PlatformInfo,
    author_key_en: bool,
    mask_chip_key: bool,
    signing_key: SigningKey,
    report_data: [u8; 64],
    measurement: [u8; 48],
    host_data: [u8; 32],
    id_key_digest: [u8; 48],
    author_key_digest: [u8; 48],
    report_id: [u8; 32],
    report_id_ma: [u8; 32],
    reported_tcb: u64,
    cpuid: Option<Cpuid>,
    chip_id: [u8; 64],
    committed_tcb: u64,
    current_version: FirmwareVersion,
    committed_version: FirmwareVersion,
    launch_tcb: u64,
    launch_mit_vector: Option<u64>,
    current_mit_vector: Option<u64>,
    signature_r: [u8; P384_SCALAR_LEN],
    signature_s: [u8; P384_SCALAR_LEN],
}

impl fmt::Debug for AttestationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttestationReport")
            .field("version", &self.version)
            .field("signing_key", &self.signing_key)
            .field("measurement", &hex::encode(self.measurement))
            .field("chip_id", &hex::encode(self.chip_id))
            .field("reported_tcb", &format_args!("{:#018x}", self.reported_tcb))
            .finish_non_exhaustive()
    }
}

fn firmware_version(r: &mut Reader<'_>) -> Result<FirmwareVersion, Error> {
    let build = r.u8()?;
    let minor = r.u8()?;
    let major = r.u8()?;
    let _reserved = r.u8()?;
    Ok(FirmwareVersion {
        major,
        minor,
        build,
    })
}

/// Reads a 72-byte little-endian signature component as a 48-byte big-endian scalar.
/// The 24 high bytes must be zero: a P-384 scalar never needs them.
fn scalar(r: &mut Reader<'_>) -> Result<[u8; P384_SCALAR_LEN], Error> {
    let field = r.take(SIG_COMPONENT_LEN)?;
    let (low, high) = field
        .split_at_checked(P384_SCALAR_LEN)
        .ok_or(Error::SignatureInvalid)?;
    if high.iter().any(|&b| b != 0) {
        return Err(Error::SignatureInvalid);
    }
    let mut be = [0; P384_SCALAR_LEN];
    for (dst, src) in be.iter_mut().zip(low.iter().rev()) {
        *dst = *src;
    }
    Ok(be)
}

/// The report bytes as an array: exactly [`REPORT_LEN`] of them.
fn exact_len(bytes: &[u8]) -> Result<&[u8; REPORT_LEN], Error> {
    if bytes.len() < REPORT_LEN {
        return Err(Error::Truncated {
            structure: "attestation report",
            len: bytes.len(),
            needed: REPORT_LEN,
        });
    }
    bytes.try_into().map_err(|_| Error::TrailingData {
        structure: "attestation report",
        extra: bytes.len().saturating_sub(REPORT_LEN),
    })
}

/// Decodes the key-information word at 0x48: AUTHOR_KEY_EN (bit 0), MASK_CHIP_KEY (bit 1),
/// SIGNING_KEY (bits 4:2: 0 VCEK, 1 VLEK, 7 none).
fn key_info(word: u32) -> Result<(bool, bool, SigningKey), Error> {
    let signing_key = match (word >> 2) & 0b111 {
        0 => SigningKey::Vcek,
        1 => SigningKey::Vlek,
        7 => return Err(Error::ReportNotSigned),
        other => {
            return Err(Error::InvalidField {
                field: "SIGNING_KEY",
                value: u64::from(other),
            });
        }
    };
    Ok((word & 1 != 0, word & 0b10 != 0, signing_key))
}

impl AttestationReport {
    /// Parses exactly [`REPORT_LEN`] bytes.
    ///
    /// # Errors
    /// [`Error::Truncated`] / [`Error::TrailingData`] for any other length,
    /// [`Error::UnknownReportVersion`], [`Error::UnsupportedSignatureAlgorithm`],
    /// [`Error::InvalidField`] for a VMPL or SIGNING_KEY the ABI does not define,
    /// [`Error::ReportNotSigned`] when SIGNING_KEY says no key signed it.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let raw = exact_len(bytes)?;
        let mut r = Reader::new(raw, "attestation report");

        let version = r.u32()?;
        // 3 and 4 share one layout; 5 adds the mitigation vectors in former reserved space.
        if !matches!(version, 2..=5) {
            return Err(Error::UnknownReportVersion(version));
        }
        let guest_svn = r.u32()?;
        let policy = GuestPolicy::new(r.u64()?);
        let family_id = r.array()?;
        let image_id = r.array()?;
        let vmpl = r.u32()?;
        if vmpl > 3 {
            return Err(Error::InvalidField {
                field: "VMPL",
                value: u64::from(vmpl),
            });
        }
        let signature_algo = r.u32()?;
        if signature_algo != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(Error::UnsupportedSignatureAlgorithm(signature_algo));
        }
        let current_tcb = r.u64()?;
        let platform_info = PlatformInfo::new(r.u64()?);
        let (author_key_en, mask_chip_key, signing_key) = key_info(r.u32()?)?;
        let _reserved = r.u32()?;
        let report_data = r.array()?;
        let measurement = r.array()?;
        let host_data = r.array()?;
        let id_key_digest = r.array()?;
        let author_key_digest = r.array()?;
        let report_id = r.array()?;
        let report_id_ma = r.array()?;
        let reported_tcb = r.u64()?;
        let [family, model, stepping] = r.array()?;
        let cpuid = (version >= 3).then_some(Cpuid {
            family,
            model,
            stepping,
        });
        r.skip_to(0x1A0)?;
        let chip_id = r.array()?;
        let committed_tcb = r.u64()?;
        let current_version = firmware_version(&mut r)?;
        let committed_version = firmware_version(&mut r)?;
        let launch_tcb = r.u64()?;
        let launch_mit = r.u64()?;
        let current_mit = r.u64()?;
        let (launch_mit_vector, current_mit_vector) = if version >= 5 {
            (Some(launch_mit), Some(current_mit))
        } else {
            (None, None)
        };
        r.skip_to(SIGNED_LEN)?;
        let signature_r = scalar(&mut r)?;
        let signature_s = scalar(&mut r)?;
        // The rest of the signature area is reserved and unsigned: nothing is read from it.
        r.skip_to(REPORT_LEN)?;
        r.finish()?;

        Ok(Self {
            raw: Box::new(*raw),
            version,
            guest_svn,
            policy,
            family_id,
            image_id,
            vmpl,
            current_tcb,
            platform_info,
            author_key_en,
            mask_chip_key,
            signing_key,
            report_data,
            measurement,
            host_data,
            id_key_digest,
            author_key_digest,
            report_id,
            report_id_ma,
            reported_tcb,
            cpuid,
            chip_id,
            committed_tcb,
            current_version,
            committed_version,
            launch_tcb,
            launch_mit_vector,
            current_mit_vector,
            signature_r,
            signature_s,
        })
    }

    /// The original bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.raw.as_slice()
    }

    /// The signed bytes, `[0, 0x2A0)` of the original report.
    pub fn signed_bytes(&self) -> &[u8] {
        let raw = self.raw.as_slice();
        raw.get(..SIGNED_LEN).unwrap_or(raw)
    }

    /// The signature's big-endian `r` and `s` scalars.
    pub(crate) const fn signature_scalars(&self) -> (&[u8; 48], &[u8; 48]) {
        (&self.signature_r, &self.signature_s)
    }

    /// Report format version (2, 3, 4 or 5).
    pub const fn version(&self) -> u32 {
        self.version
    }

    /// Guest security version number from the ID block.
    pub const fn guest_svn(&self) -> u32 {
        self.guest_svn
    }

    /// The guest policy.
    pub const fn policy(&self) -> GuestPolicy {
        self.policy
    }

    /// FAMILY_ID from the ID block.
    pub const fn family_id(&self) -> &[u8; 16] {
        &self.family_id
    }

    /// IMAGE_ID from the ID block.
    pub const fn image_id(&self) -> &[u8; 16] {
        &self.image_id
    }

    /// The VM privilege level (0–3) the report was requested at.
    pub const fn vmpl(&self) -> u32 {
        self.vmpl
    }

    /// Raw CURRENT_TCB.
    pub const fn current_tcb_raw(&self) -> u64 {
        self.current_tcb
    }

    /// Raw REPORTED_TCB: the TCB the signing key was derived for.
    pub const fn reported_tcb_raw(&self) -> u64 {
        self.reported_tcb
    }

    /// Raw COMMITTED_TCB.
    pub const fn committed_tcb_raw(&self) -> u64 {
        self.committed_tcb
    }

    /// Raw LAUNCH_TCB.
    pub const fn launch_tcb_raw(&self) -> u64 {
        self.launch_tcb
    }

    /// PLATFORM_INFO.
    pub const fn platform_info(&self) -> PlatformInfo {
        self.platform_info
    }

    /// AUTHOR_KEY_EN: the ID block was signed by an author key, whose digest is in
    /// [`Self::author_key_digest`].
    pub const fn author_key_enabled(&self) -> bool {
        self.author_key_en
    }

    /// MASK_CHIP_KEY: the firmware was told not to sign with the chip key.
    pub const fn mask_chip_key(&self) -> bool {
        self.mask_chip_key
    }

    /// Which key signed the report.
    pub const fn signing_key(&self) -> SigningKey {
        self.signing_key
    }

    /// REPORT_DATA: the 64 bytes the guest asked to be included.
    pub const fn report_data(&self) -> &[u8; 64] {
        &self.report_data
    }

    /// MEASUREMENT: the SHA-384 launch digest.
    pub const fn measurement(&self) -> &[u8; 48] {
        &self.measurement
    }

    /// HOST_DATA: 32 bytes the host supplied at launch.
    pub const fn host_data(&self) -> &[u8; 32] {
        &self.host_data
    }

    /// SHA-384 digest of the ID public key that signed the ID block (zero without one).
    pub const fn id_key_digest(&self) -> &[u8; 48] {
        &self.id_key_digest
    }

    /// SHA-384 digest of the author public key that certified the ID key (zero without one).
    pub const fn author_key_digest(&self) -> &[u8; 48] {
        &self.author_key_digest
    }

    /// REPORT_ID.
    pub const fn report_id(&self) -> &[u8; 32] {
        &self.report_id
    }

    /// REPORT_ID_MA (the migration agent's report id, all ones without one).
    pub const fn report_id_ma(&self) -> &[u8; 32] {
        &self.report_id_ma
    }

    /// CPUID family, model and stepping (report version 3 and later).
    pub const fn cpuid(&self) -> Option<Cpuid> {
        self.cpuid
    }

    /// The product the CPUID fields name, when the report has them and they are known.
    pub fn cpuid_product(&self) -> Option<Product> {
        self.cpuid
            .and_then(|c| Product::from_cpuid(c.family, c.model))
    }

    /// CHIP_ID: 64 bytes (Turin fills only the first 8; zero when masked).
    pub const fn chip_id(&self) -> &[u8; 64] {
        &self.chip_id
    }

    /// CURRENT firmware version.
    pub const fn current_version(&self) -> FirmwareVersion {
        self.current_version
    }

    /// COMMITTED firmware version.
    pub const fn committed_version(&self) -> FirmwareVersion {
        self.committed_version
    }

    /// LAUNCH_MIT_VECTOR (version 5).
    pub const fn launch_mit_vector(&self) -> Option<u64> {
        self.launch_mit_vector
    }

    /// CURRENT_MIT_VECTOR (version 5).
    pub const fn current_mit_vector(&self) -> Option<u64> {
        self.current_mit_vector
    }

    /// The TCB layout this report's own fields suggest: Turin when the CPUID says so,
    /// otherwise Milan/Genoa. Verification decodes with the verified product instead.
    pub fn tcb_layout_hint(&self) -> TcbLayout {
        self.cpuid_product()
            .map_or(TcbLayout::Legacy, TcbLayout::of)
    }

    /// REPORTED_TCB decoded with [`Self::tcb_layout_hint`].
    pub fn reported_tcb(&self) -> TcbVersion {
        TcbVersion::new(self.reported_tcb, self.tcb_layout_hint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milan() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/sev-snp/go-sev-guest/attestation.bin"
        );
        std::fs::read(path).unwrap()
    }

    #[test]
    fn parses_fields_at_their_offsets() {
        let bytes = milan();
        let report = AttestationReport::parse(&bytes).unwrap();
        assert_eq!(report.version(), 2);
        assert_eq!(report.policy().raw(), 0xb_0000);
        assert_eq!(report.reported_tcb_raw(), 0x4405_0000_0000_0002);
        assert_eq!(report.cpuid(), None);
        assert_eq!(&report.report_data()[..5], &[1, 2, 3, 4, 5]);
        assert_eq!(
            hex::encode(report.measurement()),
            "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"
        );
        assert_eq!(
            &hex::encode(report.chip_id())[..32],
            "3ac3fe21e13fb0990eb28a802e3fb6a2"
        );
        assert_eq!(report.signed_bytes().len(), SIGNED_LEN);
    }

    #[test]
    fn scalar_high_bytes_must_be_zero() {
        let mut bytes = milan();
        bytes[0x2A0 + 60] = 1;
        assert_eq!(
            AttestationReport::parse(&bytes).err(),
            Some(Error::SignatureInvalid)
        );
    }

    #[test]
    fn rejects_undefined_field_values() {
        let base = milan();
        let with = |offset: usize, value: u32| {
            let mut bytes = base.clone();
            bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
            AttestationReport::parse(&bytes).err()
        };
        assert_eq!(with(0x34, 2), Some(Error::UnsupportedSignatureAlgorithm(2)));
        assert_eq!(
            with(0x30, 4),
            Some(Error::InvalidField {
                field: "VMPL",
                value: 4
            })
        );
        assert_eq!(with(0x48, 7 << 2), Some(Error::ReportNotSigned));
        assert_eq!(
            with(0x48, 2 << 2),
            Some(Error::InvalidField {
                field: "SIGNING_KEY",
                value: 2
            })
        );
        let vlek = AttestationReport::parse(&{
            let mut bytes = base.clone();
            bytes[0x48] = 1 << 2 | 1;
            bytes
        })
        .unwrap();
        assert_eq!(vlek.signing_key(), SigningKey::Vlek);
        assert!(vlek.author_key_enabled());
    }

    #[test]
    fn length_is_exact() {
        let mut bytes = milan();
        bytes.push(0);
        assert_eq!(
            AttestationReport::parse(&bytes).err(),
            Some(Error::TrailingData {
                structure: "attestation report",
                extra: 1
            })
        );
    }
}
