//! Authenticode digests of real Debian EFI binaries (testdata/efi/debian), against the
//! values two independent tools compute on the same files: pesign (`pesign -h -i`, run
//! here) and osslsigncode (`osslsigncode verify`, "Calculated message digest", recorded
//! for the signed binary). Then negatives named after the error they expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::process::Command;

use plinth_core::HashAlg;
use plinth_policy::authenticode::{PeError, authenticode_digest};

const EFI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/efi/debian");

/// File, and its SHA-256 Authenticode digest as pesign 0.112 and (for the signed one)
/// osslsigncode 2.9 print it.
const VECTORS: [(&str, &str); 3] = [
    (
        "fbx64.efi.signed",
        "f08e1ed5914bd0f4d1dd8731e53c8bc54ad0ce7daf49bfbea01d760b249b136f",
    ),
    (
        "systemd-bootx64.efi",
        "7843e376e57323bcdfebcffc8d5109eb39721c83d8bedab1dfd6431596875c2c",
    ),
    (
        "linuxx64.efi.stub",
        "28fd6b9a39b745449fa2389a31045900804eae49ea7edb0f8c152a131df0002c",
    ),
];

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{EFI}/{name}")).unwrap()
}

#[test]
fn digests_match_the_recorded_independent_values() {
    for (name, expected) in VECTORS {
        let digest = authenticode_digest(&read(name), HashAlg::Sha256).unwrap();
        assert_eq!(digest.to_hex(), expected, "{name}");
    }
}

#[test]
fn digests_match_pesign_run_now() {
    // pesign is installed by scripts/install-deps.sh.
    for (name, _) in VECTORS {
        let out = Command::new("pesign")
            .args(["-h", "-i", &format!("{EFI}/{name}")])
            .output()
            .expect("pesign (scripts/install-deps.sh installs it)");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let pesign = stdout
            .lines()
            .find_map(|l| l.strip_prefix("hash: "))
            .unwrap_or_else(|| panic!("{name}: {stdout}"));
        let ours = authenticode_digest(&read(name), HashAlg::Sha256).unwrap();
        assert_eq!(ours.to_hex(), pesign.trim(), "{name}");
    }
}

#[test]
fn the_attribute_certificate_table_is_not_covered() {
    // Growing the signature table (and its directory size) leaves the digest unchanged.
    let mut image = read("fbx64.efi.signed");
    let before = authenticode_digest(&image, HashAlg::Sha256).unwrap();
    let pe = usize::from(u16::from_le_bytes([image[0x3c], image[0x3d]]));
    // PE32+: optional header at pe + 24, data directories at +112, entry 4 at +32.
    assert_eq!(image[pe + 24..pe + 26], [0x0b, 0x02]);
    let entry = pe + 24 + 112 + 4 * 8;
    let size_at = entry + 4;
    let size = u32::from_le_bytes(image[size_at..size_at + 4].try_into().unwrap());
    assert!(size > 0, "fbx64 is signed");
    image.extend_from_slice(&[0; 8]);
    image[size_at..size_at + 4].copy_from_slice(&(size + 8).to_le_bytes());
    assert_eq!(
        authenticode_digest(&image, HashAlg::Sha256).unwrap(),
        before
    );
    // Changing a byte of a section changes it.
    let mut image = read("fbx64.efi.signed");
    let last_section_byte = image.len() - usize::try_from(size).unwrap() - 1;
    image[last_section_byte] ^= 1;
    assert_ne!(
        authenticode_digest(&image, HashAlg::Sha256).unwrap(),
        before
    );
}

#[test]
fn rejects_truncated_images_with_truncated_or_inconsistent() {
    let image = read("systemd-bootx64.efi");
    for len in [0, 1, 0x3c, 0x40, 0x80, 0x100, 0x200, 0x400, image.len() / 2] {
        let err = authenticode_digest(&image[..len], HashAlg::Sha256).unwrap_err();
        assert!(
            matches!(
                err,
                PeError::Truncated { .. } | PeError::Inconsistent { .. }
            ),
            "{len}: {err:?}"
        );
    }
}

#[test]
fn rejects_bad_pe_signature_with_bad_signature() {
    let mut image = read("linuxx64.efi.stub");
    let pe = usize::from(u16::from_le_bytes([image[0x3c], image[0x3d]]));
    image[pe] = b'X';
    assert_eq!(
        authenticode_digest(&image, HashAlg::Sha256),
        Err(PeError::BadSignature { which: "PE" })
    );
}

#[test]
fn rejects_unknown_magic_with_unknown_magic() {
    let mut image = read("linuxx64.efi.stub");
    let pe = usize::from(u16::from_le_bytes([image[0x3c], image[0x3d]]));
    image[pe + 24] = 0x0c;
    assert!(matches!(
        authenticode_digest(&image, HashAlg::Sha256),
        Err(PeError::UnknownMagic { .. })
    ));
}

#[test]
fn rejects_too_many_sections_with_too_many_sections() {
    let mut image = read("linuxx64.efi.stub");
    let pe = usize::from(u16::from_le_bytes([image[0x3c], image[0x3d]]));
    image[pe + 6..pe + 8].copy_from_slice(&200_u16.to_le_bytes());
    assert_eq!(
        authenticode_digest(&image, HashAlg::Sha256),
        Err(PeError::TooManySections {
            count: 200,
            max: 96
        })
    );
}
