//! The trust anchors evidence is verified against.

use plinth_nitro::NitroTrust;
use plinth_snp::AmdRoots;
use plinth_tpm::{EkAllowList, EkRoots};

use crate::Error;

/// Trust anchors per platform.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Trust {
    /// Roots (and intermediates) for TPM EK and AK certificates.
    pub ek_roots: EkRoots,
    /// EKs admitted by the SHA-256 of their public key, for TPMs without a certificate.
    pub ek_allow: EkAllowList,
    /// The AWS Nitro root.
    pub nitro: NitroTrust,
    /// AMD's ARKs, pinned per product.
    pub amd: AmdRoots,
}

impl Trust {
    /// The roots that ship with plinth (AWS Nitro root G1, AMD's ARKs), and no TPM roots:
    /// TPM vendors' roots are configuration.
    ///
    /// # Errors
    /// [`Error::Snp`] if the built-in AMD roots fail to load.
    pub fn builtin() -> Result<Self, Error> {
        Ok(Self {
            ek_roots: EkRoots::new(),
            ek_allow: EkAllowList::new(),
            nitro: NitroTrust::aws_root_g1(),
            amd: AmdRoots::builtin()?,
        })
    }
}
