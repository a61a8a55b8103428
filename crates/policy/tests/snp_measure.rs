//! SEV-SNP launch measurements of Debian's OVMF (testdata/sev-snp/ovmf/OVMF.fd, package
//! ovmf 2022.11-6+deb12u2), against the values sev-snp-measure 0.0.13 (PyPI) computes for
//! the same inputs (`sev-snp-measure --mode snp --ovmf … --vcpus … --vcpu-type …`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use plinth_policy::snp_measure::{
    MeasureError, SnpLaunch, cpu_signature, snp_launch_measurement, vcpu_type_signature,
};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{TESTDATA}/{rel}")).unwrap()
}

fn launch<'a>(ovmf: &'a [u8], vcpus: u32, vcpu_type: &str, features: u64) -> SnpLaunch<'a> {
    SnpLaunch {
        ovmf,
        kernel: None,
        initrd: None,
        cmdline: None,
        vcpus,
        vcpu_signature: vcpu_type_signature(vcpu_type).unwrap(),
        guest_features: features,
    }
}

/// vCPUs, vCPU type, guest features, and sev-snp-measure's output.
const VECTORS: [(u32, &str, u64, &str); 5] = [
    (
        1,
        "EPYC-v4",
        0x1,
        "11570979c77a0adb515761a702527c8b9e11554e730552621d950988613a3a75c6ff1703f540bd22a9beede8fe7a97e3",
    ),
    (
        4,
        "EPYC-Milan",
        0x1,
        "e9c10ab98f8086bf4a4993dcdc1f768b1128bcb02301d1791f1d3274329e790db2d12a301d66d99a462a13b5d87e2840",
    ),
    (
        8,
        "EPYC-Genoa",
        0x21,
        "cad9212c78b1a76d0cdcaee0b582c0ef73d721d61a856ac4de9bce739dbb6232ff3d082646a2a7cafbc79ad6ab1dd292",
    ),
    (
        2,
        "EPYC-Turin",
        0x1,
        "6e3fa2a5b872e90e79f4ce28802471b791461a21f14c05f40cd0b0f9424f5bae885ca0ecf5cc798375e468bc611e0397",
    ),
    (
        1,
        "EPYC-Rome-v2",
        0x1,
        "aed006b5dedbbfbb481286997a4d30a1de888bda86b0b2283347cfd22f3638af229e8618d1442543b0a769c335f57ad1",
    ),
];

#[test]
fn debian_ovmf_measurements_agree_with_sev_snp_measure() {
    let ovmf = read("sev-snp/ovmf/OVMF.fd");
    for (vcpus, vcpu_type, features, expected) in VECTORS {
        let measured = snp_launch_measurement(&launch(&ovmf, vcpus, vcpu_type, features)).unwrap();
        assert_eq!(hex::encode(measured), expected, "{vcpus} x {vcpu_type}");
    }
}

/// Debian's OVMF has no SNP kernel-hashes section (its SEV hash table address is 0), as
/// sev-snp-measure also reports. The derived image turns its one-page CPUID section into
/// the kernel-hashes section and points the hash-table entry at 0x80e400: bytes
/// 0x1fff84..88 = 0x0080e400 and 0x1ffb10..14 = 0x10 (little-endian).
fn ovmf_with_kernel_hashes() -> Vec<u8> {
    let mut ovmf = read("sev-snp/ovmf/OVMF.fd");
    ovmf[0x1f_ff84..0x1f_ff88].copy_from_slice(&0x0080_e400_u32.to_le_bytes());
    assert_eq!(
        ovmf[0x1f_fb10..0x1f_fb14],
        3_u32.to_le_bytes(),
        "the CPUID section"
    );
    ovmf[0x1f_fb10..0x1f_fb14].copy_from_slice(&0x10_u32.to_le_bytes());
    ovmf
}

#[test]
fn measured_direct_boot_agrees_with_sev_snp_measure() {
    let ovmf = ovmf_with_kernel_hashes();
    let kernel = read("efi/debian/linuxx64.efi.stub");
    let initrd = read("efi/debian/fbx64.efi.signed");
    let with_all = SnpLaunch {
        kernel: Some(&kernel),
        initrd: Some(&initrd),
        cmdline: Some("console=ttyS0_root=/dev/vda"),
        ..launch(&ovmf, 2, "EPYC-Milan", 0x1)
    };
    assert_eq!(
        hex::encode(snp_launch_measurement(&with_all).unwrap()),
        "ca8fc3300631da2877a1ac89a0c315af3299f1a560be7ea660f086d3d02f4701c44b7d97d6a68f236cceb16747a99cd8"
    );
    let kernel_only = SnpLaunch {
        kernel: Some(&kernel),
        ..launch(&ovmf, 1, "EPYC-v4", 0x1)
    };
    assert_eq!(
        hex::encode(snp_launch_measurement(&kernel_only).unwrap()),
        "446be241be510899006db7f96ecbf70c582cfcebdb68f13e146ae2fe4322dfcc1a0e654aea6d43437ca56625cfae590e"
    );
}

#[test]
fn rejects_kernel_without_kernel_hashes_section_with_no_kernel_hashes() {
    let ovmf = read("sev-snp/ovmf/OVMF.fd");
    let kernel = read("efi/debian/linuxx64.efi.stub");
    let with_kernel = SnpLaunch {
        kernel: Some(&kernel),
        ..launch(&ovmf, 1, "EPYC-v4", 0x1)
    };
    assert_eq!(
        snp_launch_measurement(&with_kernel),
        Err(MeasureError::NoKernelHashes)
    );
}

#[test]
fn rejects_non_ovmf_images_and_bad_counts() {
    let ovmf = read("sev-snp/ovmf/OVMF.fd");
    assert!(matches!(
        snp_launch_measurement(&launch(&ovmf[..4095], 1, "EPYC", 1)),
        Err(MeasureError::OvmfSize { .. })
    ));
    assert!(matches!(
        snp_launch_measurement(&launch(&[0; 8192], 1, "EPYC", 1)),
        Err(MeasureError::OvmfTable(_))
    ));
    assert_eq!(
        snp_launch_measurement(&launch(&ovmf, 0, "EPYC", 1)),
        Err(MeasureError::VcpuCount(0))
    );
    let mut bad_section = ovmf.clone();
    bad_section[0x1f_fb10] = 0x7f;
    assert_eq!(
        snp_launch_measurement(&launch(&bad_section, 1, "EPYC", 1)),
        Err(MeasureError::UnknownSection(0x7f))
    );
}

#[test]
fn cpu_signatures_follow_cpuid_encoding() {
    // Family 19h model 01h stepping 1 (Milan): 0x00A00F11.
    assert_eq!(cpu_signature(25, 1, 1), 0x00a0_0f11);
    assert_eq!(vcpu_type_signature("EPYC-Milan-v2"), Some(0x00a0_0f11));
    assert_eq!(vcpu_type_signature("Skylake"), None);
}
