//! AMD EPYC product lines that sign SEV-SNP reports, each with its own AMD root key.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// An AMD product line with its own ARK (AMD Root Key) and ASK/ASVK.
///
/// Siena and Bergamo parts are certified under Genoa's keys, as AMD's Key Distribution
/// Service does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Product {
    /// EPYC 7003 (Zen 3, family 19h models 00h–0Fh).
    Milan,
    /// EPYC 9004 / 8004 / 97x4 (Zen 4, family 19h models 10h–1Fh and A0h–AFh).
    Genoa,
    /// EPYC 9005 (Zen 5, family 1Ah models 00h–1Fh).
    Turin,
}

impl Product {
    /// Every product, in a fixed order.
    pub const ALL: [Self; 3] = [Self::Milan, Self::Genoa, Self::Turin];

    /// The name AMD uses in certificate subjects and KDS URLs (`Milan`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Milan => "Milan",
            Self::Genoa => "Genoa",
            Self::Turin => "Turin",
        }
    }

    /// Length of the chip identifier the VCEK's hwID extension carries: Turin VCEKs are
    /// keyed by an 8-byte id, the earlier products by the full 64-byte CHIP_ID.
    pub const fn hwid_len(self) -> usize {
        match self {
            Self::Milan | Self::Genoa => 64,
            Self::Turin => 8,
        }
    }

    /// The product a report's CPUID family and model (report version 3 and later) belong to.
    pub(crate) const fn from_cpuid(family: u8, model: u8) -> Option<Self> {
        match (family, model) {
            (0x19, 0x00..=0x0f) => Some(Self::Milan),
            (0x19, 0x10..=0x1f | 0xa0..=0xaf) => Some(Self::Genoa),
            (0x1a, 0x00..=0x1f) => Some(Self::Turin),
            _ => None,
        }
    }

    /// The product named by a VCEK/VLEK productName extension: `Milan-B0`, `Genoa`, `Turin`.
    /// The stepping suffix after `-` is ignored.
    pub(crate) fn from_cert_product_name(name: &str) -> Option<Self> {
        let line = name.split('-').next().unwrap_or(name);
        Self::ALL.into_iter().find(|p| p.name() == line)
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Product {
    type Err = Error;

    /// Parses `milan`, `genoa` or `turin`, in any case.
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::UnknownProductName(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuid_mapping() {
        assert_eq!(Product::from_cpuid(25, 1), Some(Product::Milan));
        assert_eq!(Product::from_cpuid(25, 17), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(25, 160), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(26, 2), Some(Product::Turin));
        assert_eq!(Product::from_cpuid(0, 0), None);
        assert_eq!(Product::from_cpuid(25, 0x50), None);
    }

    #[test]
    fn names() {
        assert_eq!(
            Product::from_cert_product_name("Milan-B0"),
            Some(Product::Milan)
        );
        assert_eq!(
            Product::from_cert_product_name("Genoa"),
            Some(Product::Genoa)
        );
        assert_eq!(
            Product::from_cert_product_name("Turin"),
            Some(Product::Turin)
        );
        assert_eq!(Product::from_cert_product_name("Rome"), None);
        assert_eq!("TURIN".parse::<Product>(), Ok(Product::Turin));
        assert!(matches!(
            "rome".parse::<Product>(),
            Err(Error::UnknownProductName(_))
        ));
    }
}
