//! The trust configuration: which AWS Nitro root a document's chain must end at.

use std::fmt;

use crate::Error;

/// SHA-256 of the DER of AWS's "AWS_NitroEnclaves_Root-G1" certificate
/// (`CN=aws.nitro-enclaves, OU=AWS, O=Amazon, C=US`, ECDSA P-384, valid 2019-10-28 to
/// 2049-10-28), the root of every Nitro attestation document.
///
/// AWS publishes the root in `AWS_NitroEnclaves_Root-G1.zip` together with the zip's own
/// SHA-256 (`8cf60e2b2efca96c6a9e71e851d00c1b6991cc09eadbe64a6a1d1b1eb9faff7c`); this value
/// is the fingerprint of the `root.pem` inside it, converted to DER. The repository keeps
/// both files in `testdata/nitro/aws-root/`, and a test recomputes this constant from them.
pub const AWS_NITRO_ROOT_G1_SHA256: [u8; 32] = [
    0x64, 0x1a, 0x03, 0x21, 0xa3, 0xe2, 0x44, 0xef, 0xe4, 0x56, 0x46, 0x31, 0x95, 0xd6, 0x06, 0x31,
    0x7e, 0xd7, 0xcd, 0xcc, 0x3c, 0x17, 0x56, 0xe0, 0x98, 0x93, 0xf3, 0xc6, 0x8f, 0x79, 0xbb, 0x5b,
];

/// Which root a Nitro document's certificate chain must end at, pinned by the SHA-256
/// fingerprint of the root certificate's DER.
///
/// A document carries its root as `cabundle[0]`. That certificate is used as the trust
/// anchor only when its fingerprint equals the pinned one: the bundle's root is never
/// trusted on its own word, and no other root is ever considered.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NitroTrust {
    root_sha256: [u8; 32],
}

impl NitroTrust {
    /// Trusts the root whose DER has this SHA-256 fingerprint.
    pub const fn pinned_root_sha256(root_sha256: [u8; 32]) -> Self {
        Self { root_sha256 }
    }

    /// Trusts AWS's published Nitro Enclaves root, G1 ([`AWS_NITRO_ROOT_G1_SHA256`]).
    pub const fn aws_root_g1() -> Self {
        Self::pinned_root_sha256(AWS_NITRO_ROOT_G1_SHA256)
    }

    /// Parses a pinned fingerprint written as 64 hex digits (colons allowed, as
    /// `openssl x509 -fingerprint -sha256` prints it).
    ///
    /// # Errors
    /// [`Error::FingerprintHex`] when the text is not 32 bytes of hex.
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let compact: String = text.trim().chars().filter(|&c| c != ':').collect();
        let bytes = hex::decode(compact).map_err(|_| Error::FingerprintHex)?;
        let root_sha256 =
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| Error::FingerprintHex)?;
        Ok(Self { root_sha256 })
    }

    /// The pinned fingerprint.
    pub const fn root_sha256(&self) -> &[u8; 32] {
        &self.root_sha256
    }
}

impl Default for NitroTrust {
    /// [`NitroTrust::aws_root_g1`].
    fn default() -> Self {
        Self::aws_root_g1()
    }
}

impl fmt::Debug for NitroTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NitroTrust(root sha256 {})",
            hex::encode(self.root_sha256)
        )
    }
}
