//! The SEV-SNP launch measurement of a QEMU/OVMF guest, computed from its artifacts: the
//! OVMF image, the kernel, initrd and command line (measured direct boot), the vCPU count
//! and the vCPU type. The result is the report's MEASUREMENT, the value `[snp]
//! measurements` lists.
//!
//! The computation follows the SNP firmware ABI (SNP_LAUNCH_UPDATE): the launch digest
//! starts at zero and every page added to the guest extends it,
//! `digest = SHA-384(digest ‖ PAGE_INFO)`, where the 0x70-byte PAGE_INFO carries the
//! page's SHA-384 (or zeros for zero, secrets and CPUID pages), its type and its guest
//! physical address. QEMU adds, in order: the OVMF image (mapped to end at 4 GiB), the
//! sections OVMF's SEV metadata (`ASEV`) lists, with the kernel-hashes page holding
//! SHA-256 of the command line, initrd and kernel, then one VMSA page per vCPU (the
//! boot processor at the reset vector, the others at OVMF's SEV-ES reset block).
//!
//! Inputs are operator artifacts, but are still read through bounds checks and budgets.

use plinth_core::HashAlg;
use plinth_crypto::digest;

/// The largest OVMF image accepted (64 MiB).
pub const MAX_OVMF_LEN: usize = 64 << 20;
/// The most vCPUs accepted.
pub const MAX_VCPUS: u32 = 1024;
/// The most OVMF metadata sections accepted.
pub const MAX_METADATA_SECTIONS: usize = 64;

const PAGE: usize = 4096;
const FOUR_GIB: u64 = 1 << 32;
const VMSA_GPA: u64 = 0xFFFF_FFFF_F000;
const BSP_EIP: u64 = 0xFFFF_FFF0;

const OVMF_TABLE_FOOTER: &str = "96b582de-1fb2-45f7-baea-a366c55a082d";
const SEV_HASH_TABLE_RV: &str = "7255371f-3a3b-4b04-927b-1da6efa8d454";
const SEV_ES_RESET_BLOCK: &str = "00f771de-1a7e-4fcb-890e-68c77e2fb44e";
const OVMF_SEV_METADATA: &str = "dc886566-984a-4798-a75e-5585a7bf67cc";
const HASH_TABLE_HEADER: &str = "9438d606-4f22-4cc9-b479-a793d411fd21";
const HASH_KERNEL: &str = "4de79437-abd2-427f-b835-d5b172d2045b";
const HASH_INITRD: &str = "44baf731-3a2f-4bd7-9af1-41e29169781d";
const HASH_CMDLINE: &str = "97d02dd8-bd20-4c94-aa78-e7714d36ab2a";

/// Why a launch measurement could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// The OVMF image is empty, larger than [`MAX_OVMF_LEN`], or not a whole number of
    /// pages.
    #[error("OVMF image of {len} bytes: must be whole 4 KiB pages, at most {max} bytes")]
    OvmfSize {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The OVMF footer GUID table is missing or malformed.
    #[error("OVMF GUID table: {0}")]
    OvmfTable(&'static str),
    /// The OVMF SEV metadata is missing or malformed.
    #[error("OVMF SEV metadata: {0}")]
    OvmfMetadata(&'static str),
    /// An unknown SEV metadata section type.
    #[error("unknown OVMF SEV metadata section type {0:#x}")]
    UnknownSection(u32),
    /// A kernel was given but this OVMF has no kernel-hashes section or table.
    #[error("a kernel was given but this OVMF cannot measure one (no SNP kernel-hashes section)")]
    NoKernelHashes,
    /// The vCPU count is 0 or above [`MAX_VCPUS`].
    #[error("vCPU count {0} is not 1..={MAX_VCPUS}")]
    VcpuCount(u32),
}

/// A guest launch, as QEMU starts it.
#[derive(Debug, Clone, Copy)]
pub struct SnpLaunch<'a> {
    /// The OVMF image (a unified `OVMF.fd`, with SEV metadata).
    pub ovmf: &'a [u8],
    /// The kernel for measured direct boot (`-kernel`), if any.
    pub kernel: Option<&'a [u8]>,
    /// The initrd (`-initrd`); only with a kernel.
    pub initrd: Option<&'a [u8]>,
    /// The command line (`-append`); only with a kernel.
    pub cmdline: Option<&'a str>,
    /// The vCPU count.
    pub vcpus: u32,
    /// The vCPU's CPUID signature (see [`cpu_signature`], [`vcpu_type_signature`]).
    pub vcpu_signature: u32,
    /// SEV_FEATURES of the VMSAs (QEMU's default is 0x1, SNPActive).
    pub guest_features: u64,
}

/// The CPUID Fn0000_0001 EAX signature of a family, model and stepping.
pub const fn cpu_signature(family: u32, model: u32, stepping: u32) -> u32 {
    let (family_low, family_high) = if family > 0xf {
        (0xf, (family - 0xf) & 0xff)
    } else {
        (family, 0)
    };
    (family_high << 20)
        | (((model >> 4) & 0xf) << 16)
        | (family_low << 8)
        | ((model & 0xf) << 4)
        | (stepping & 0xf)
}

/// The signature of a QEMU vCPU model name (`EPYC-v4`, `EPYC-Milan`, `EPYC-Genoa`, …).
pub fn vcpu_type_signature(name: &str) -> Option<u32> {
    let base = name.split("-v").next().unwrap_or(name);
    match base {
        "EPYC" | "EPYC-IBPB" => Some(cpu_signature(23, 1, 2)),
        "EPYC-Rome" => Some(cpu_signature(23, 49, 0)),
        "EPYC-Milan" => Some(cpu_signature(25, 1, 1)),
        "EPYC-Genoa" => Some(cpu_signature(25, 17, 0)),
        "EPYC-Turin" => Some(cpu_signature(26, 0, 0)),
        _ => None,
    }
}

/// Whether `len` is a whole number of 4 KiB pages.
const fn whole_pages(len: usize) -> bool {
    len & (PAGE - 1) == 0
}

/// A GUID's bytes in the little-endian (EFI) layout.
fn guid(text: &str) -> [u8; 16] {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let mut raw = [0_u8; 16];
    for (i, byte) in raw.iter_mut().enumerate() {
        *byte = hex
            .get(i * 2..i * 2 + 2)
            .and_then(|b| u8::from_str_radix(b, 16).ok())
            .unwrap_or(0);
    }
    let mut out = raw;
    for (dst, src) in [
        (0, 3),
        (1, 2),
        (2, 1),
        (3, 0),
        (4, 5),
        (5, 4),
        (6, 7),
        (7, 6),
    ] {
        if let (Some(d), Some(s)) = (out.get_mut(dst), raw.get(src)) {
            *d = *s;
        }
    }
    out
}

fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The OVMF footer GUID table: (GUID, data) entries.
/// The OVMF footer table's entries: (GUID, data).
type GuidTable<'a> = Vec<([u8; 16], &'a [u8])>;

fn footer_table(ovmf: &[u8]) -> Result<GuidTable<'_>, MeasureError> {
    const HEADER: usize = 18;
    let missing = MeasureError::OvmfTable("no footer table");
    let footer = ovmf.len().checked_sub(32 + HEADER).ok_or(missing.clone())?;
    if ovmf.get(footer + 2..footer + HEADER) != Some(&guid(OVMF_TABLE_FOOTER)[..]) {
        return Err(missing);
    }
    let size = usize::from(le_u16(ovmf, footer).ok_or(MeasureError::OvmfTable("footer"))?);
    let table_len = size
        .checked_sub(HEADER)
        .ok_or(MeasureError::OvmfTable("footer size"))?;
    let start = footer
        .checked_sub(table_len)
        .ok_or(MeasureError::OvmfTable("footer size"))?;
    let mut table = ovmf
        .get(start..footer)
        .ok_or(MeasureError::OvmfTable("footer size"))?;
    let mut entries = Vec::new();
    while table.len() >= HEADER {
        let at = table.len() - HEADER;
        let len = usize::from(le_u16(table, at).ok_or(MeasureError::OvmfTable("entry"))?);
        let id: [u8; 16] = table
            .get(at + 2..at + HEADER)
            .and_then(|g| g.try_into().ok())
            .ok_or(MeasureError::OvmfTable("entry"))?;
        if len < HEADER || len > table.len() {
            return Err(MeasureError::OvmfTable("entry size"));
        }
        let data = table
            .get(table.len() - len..at)
            .ok_or(MeasureError::OvmfTable("entry"))?;
        entries.push((id, data));
        table = table
            .get(..table.len() - len)
            .ok_or(MeasureError::OvmfTable("entry"))?;
        if entries.len() > 256 {
            return Err(MeasureError::OvmfTable("too many entries"));
        }
    }
    Ok(entries)
}

fn entry_u32(table: &[([u8; 16], &[u8])], id: &str) -> Option<u32> {
    let id = guid(id);
    table
        .iter()
        .find(|(g, _)| *g == id)
        .and_then(|(_, data)| le_u32(data, 0))
}

/// One OVMF SEV metadata section: (gpa, size, type).
fn metadata(
    ovmf: &[u8],
    table: &[([u8; 16], &[u8])],
) -> Result<Vec<(u64, usize, u32)>, MeasureError> {
    let bad = MeasureError::OvmfMetadata;
    let from_end = entry_u32(table, OVMF_SEV_METADATA).ok_or(bad("no SEV metadata"))?;
    let start = usize::try_from(from_end)
        .ok()
        .and_then(|offset| ovmf.len().checked_sub(offset))
        .ok_or(bad("offset"))?;
    if ovmf.get(start..start + 4) != Some(b"ASEV") {
        return Err(bad("signature"));
    }
    if le_u32(ovmf, start + 8) != Some(1) {
        return Err(bad("version"));
    }
    let count = le_u32(ovmf, start + 12)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(bad("header"))?;
    if count > MAX_METADATA_SECTIONS {
        return Err(bad("too many sections"));
    }
    (0..count)
        .map(|i| {
            let at = start + 16 + i * 12;
            let gpa = le_u32(ovmf, at).ok_or(bad("section"))?;
            let size = le_u32(ovmf, at + 4).ok_or(bad("section"))?;
            let kind = le_u32(ovmf, at + 8).ok_or(bad("section"))?;
            let size = usize::try_from(size).map_err(|_| bad("section size"))?;
            if !whole_pages(size) {
                return Err(bad("section size is not whole pages"));
            }
            Ok((u64::from(gpa), size, kind))
        })
        .collect()
}

struct LaunchDigest([u8; 48]);

impl LaunchDigest {
    fn update(&mut self, page_type: u8, gpa: u64, contents: &[u8; 48]) {
        let mut info = Vec::with_capacity(0x70);
        info.extend_from_slice(&self.0);
        info.extend_from_slice(contents);
        info.extend_from_slice(&0x70_u16.to_le_bytes());
        info.extend_from_slice(&[page_type, 0, 0, 0, 0, 0]);
        info.extend_from_slice(&gpa.to_le_bytes());
        self.0
            .copy_from_slice(digest(HashAlg::Sha384, &info).as_bytes());
    }

    fn normal_pages(&mut self, gpa: u64, data: &[u8]) {
        for (page, gpa) in data.chunks(PAGE).zip((gpa..).step_by(PAGE)) {
            let mut contents = [0_u8; 48];
            contents.copy_from_slice(digest(HashAlg::Sha384, page).as_bytes());
            self.update(1, gpa, &contents);
        }
    }

    fn pages(&mut self, page_type: u8, gpa: u64, len: usize) {
        for gpa in (gpa..).step_by(PAGE).take(len / PAGE) {
            self.update(page_type, gpa, &[0; 48]);
        }
    }
}

/// The page OVMF reads the kernel hashes from: the padded SEV hash table at `offset`.
fn kernel_hashes_page(launch: &SnpLaunch<'_>, kernel: &[u8], offset: usize) -> Vec<u8> {
    let sha256 = |data: &[u8]| digest(HashAlg::Sha256, data);
    let cmdline = match launch.cmdline {
        Some(text) => [text.as_bytes(), b"\0"].concat(),
        None => b"\0".to_vec(),
    };
    let mut table = Vec::with_capacity(176);
    table.extend_from_slice(&guid(HASH_TABLE_HEADER));
    table.extend_from_slice(&168_u16.to_le_bytes());
    for (id, hash) in [
        (HASH_CMDLINE, sha256(&cmdline)),
        (HASH_INITRD, sha256(launch.initrd.unwrap_or_default())),
        (HASH_KERNEL, sha256(kernel)),
    ] {
        table.extend_from_slice(&guid(id));
        table.extend_from_slice(&50_u16.to_le_bytes());
        table.extend_from_slice(hash.as_bytes());
    }
    table.resize(176, 0);
    let mut page = vec![0_u8; offset];
    page.extend_from_slice(&table);
    page.resize(PAGE, 0);
    page
}

/// A VMSA page as QEMU/KVM sets it at reset (AMD64 APM vol. 2, table B-4), with `eip`.
fn vmsa(eip: u64, launch: &SnpLaunch<'_>) -> Vec<u8> {
    let mut page = vec![0_u8; PAGE];
    let mut put = |at: usize, bytes: &[u8]| {
        if let Some(slot) = page.get_mut(at..at + bytes.len()) {
            slot.copy_from_slice(bytes);
        }
    };
    // Segments: selector, attributes, limit, base.
    let segment = |selector: u16, attrib: u16, base: u64| {
        let mut s = Vec::with_capacity(16);
        s.extend_from_slice(&selector.to_le_bytes());
        s.extend_from_slice(&attrib.to_le_bytes());
        s.extend_from_slice(&0xffff_u32.to_le_bytes());
        s.extend_from_slice(&base.to_le_bytes());
        s
    };
    for (at, selector, attrib, base) in [
        (0, 0, 0x93, 0),                       // es
        (16, 0xf000, 0x9b, eip & 0xffff_0000), // cs
        (32, 0, 0x93, 0),                      // ss
        (48, 0, 0x93, 0),                      // ds
        (64, 0, 0x93, 0),                      // fs
        (80, 0, 0x93, 0),                      // gs
        (96, 0, 0, 0),                         // gdtr
        (112, 0, 0x82, 0),                     // ldtr
        (128, 0, 0, 0),                        // idtr
        (144, 0, 0x8b, 0),                     // tr
    ] {
        put(at, &segment(selector, attrib, base));
    }
    put(208, &0x1000_u64.to_le_bytes()); // efer: SVME
    put(328, &0x40_u64.to_le_bytes()); // cr4: MCE
    put(344, &0x10_u64.to_le_bytes()); // cr0: ET
    put(352, &0x400_u64.to_le_bytes()); // dr7
    put(360, &0xffff_0ff0_u64.to_le_bytes()); // dr6
    put(368, &0x2_u64.to_le_bytes()); // rflags
    put(376, &(eip & 0xffff).to_le_bytes()); // rip
    put(616, &0x0007_0406_0007_0406_u64.to_le_bytes()); // g_pat
    put(784, &u64::from(launch.vcpu_signature).to_le_bytes()); // rdx
    put(944, &launch.guest_features.to_le_bytes()); // sev_features
    put(1000, &0x1_u64.to_le_bytes()); // xcr0
    put(1032, &0x1f80_u32.to_le_bytes()); // mxcsr
    put(1040, &0x37f_u16.to_le_bytes()); // x87 fcw
    page
}

/// The SEV-SNP launch measurement (MEASUREMENT) of `launch`.
///
/// # Errors
/// A [`MeasureError`] for an unusable OVMF image, a kernel this OVMF cannot measure, or
/// a vCPU count out of range.
pub fn snp_launch_measurement(launch: &SnpLaunch<'_>) -> Result<[u8; 48], MeasureError> {
    let ovmf = launch.ovmf;
    if ovmf.is_empty() || ovmf.len() > MAX_OVMF_LEN || !whole_pages(ovmf.len()) {
        return Err(MeasureError::OvmfSize {
            len: ovmf.len(),
            max: MAX_OVMF_LEN,
        });
    }
    if launch.vcpus == 0 || launch.vcpus > MAX_VCPUS {
        return Err(MeasureError::VcpuCount(launch.vcpus));
    }
    let table = footer_table(ovmf)?;
    let sections = metadata(ovmf, &table)?;
    let ap_eip = entry_u32(&table, SEV_ES_RESET_BLOCK)
        .ok_or(MeasureError::OvmfTable("no SEV-ES reset block"))?;
    let ovmf_len = u64::try_from(ovmf.len()).map_err(|_| MeasureError::OvmfSize {
        len: ovmf.len(),
        max: MAX_OVMF_LEN,
    })?;
    let mut ld = LaunchDigest([0; 48]);
    ld.normal_pages(FOUR_GIB - ovmf_len, ovmf);
    let mut kernel_measured = false;
    for (gpa, size, kind) in sections {
        match kind {
            1 | 4 => ld.pages(3, gpa, size), // SNP_SEC_MEM, SVSM_CAA: zero pages
            2 => ld.update(5, gpa, &[0; 48]), // secrets page
            3 => ld.update(6, gpa, &[0; 48]), // CPUID page
            0x10 => match launch.kernel {
                Some(kernel) => {
                    let table_gpa = entry_u32(&table, SEV_HASH_TABLE_RV)
                        .filter(|g| *g != 0)
                        .ok_or(MeasureError::NoKernelHashes)?;
                    let offset = usize::try_from(table_gpa & 0xfff).unwrap_or_default();
                    if size != PAGE {
                        return Err(MeasureError::OvmfMetadata(
                            "kernel-hashes section is not one page",
                        ));
                    }
                    ld.normal_pages(gpa, &kernel_hashes_page(launch, kernel, offset));
                    kernel_measured = true;
                }
                None => ld.pages(3, gpa, size),
            },
            other => return Err(MeasureError::UnknownSection(other)),
        }
    }
    if launch.kernel.is_some() && !kernel_measured {
        return Err(MeasureError::NoKernelHashes);
    }
    for i in 0..launch.vcpus {
        let eip = if i == 0 { BSP_EIP } else { u64::from(ap_eip) };
        let mut contents = [0_u8; 48];
        contents.copy_from_slice(digest(HashAlg::Sha384, &vmsa(eip, launch)).as_bytes());
        ld.update(2, VMSA_GPA, &contents);
    }
    Ok(ld.0)
}
