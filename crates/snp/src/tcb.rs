//! TCB_VERSION: the security patch levels of the firmware components, packed in 64 bits.
//!
//! The packing depends on the product (SEV-SNP ABI specification, TCB_VERSION):
//!
//! ```text
//! byte          0      1      2      3      4      5      6      7
//! Milan/Genoa   BL     TEE    -      -      -      -      SNP    ucode
//! Turin         FMC    BL     TEE    SNP    -      -      -      ucode
//! ```
//!
//! Bytes marked `-` are reserved. The value is little-endian in the report, so byte 0 is
//! the least significant byte of the `u64`.

use std::fmt;

use crate::Product;

/// How a product packs its TCB_VERSION.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TcbLayout {
    /// Milan and Genoa: BL, TEE, 4 reserved, SNP, microcode.
    Legacy,
    /// Turin: FMC, BL, TEE, SNP, 3 reserved, microcode.
    Turin,
}

impl TcbLayout {
    /// The layout `product` uses.
    pub const fn of(product: Product) -> Self {
        match product {
            Product::Milan | Product::Genoa => Self::Legacy,
            Product::Turin => Self::Turin,
        }
    }
}

/// A decoded TCB_VERSION.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcbVersion {
    raw: u64,
    layout: TcbLayout,
}

/// One security patch level of a [`TcbVersion`], named as AMD's VCEK extensions name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TcbComponent {
    /// Firmware mailbox controller (Turin and later).
    Fmc,
    /// PSP bootloader.
    Bootloader,
    /// PSP OS (trusted execution environment).
    Tee,
    /// SNP firmware.
    Snp,
    /// CPU microcode.
    Microcode,
}

impl TcbComponent {
    /// Every component, in a fixed order.
    pub const ALL: [Self; 5] = [
        Self::Fmc,
        Self::Bootloader,
        Self::Tee,
        Self::Snp,
        Self::Microcode,
    ];

    /// Lower-case name, as used in JSON (`bootloader`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Fmc => "fmc",
            Self::Bootloader => "bootloader",
            Self::Tee => "tee",
            Self::Snp => "snp",
            Self::Microcode => "microcode",
        }
    }
}

impl fmt::Display for TcbComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TcbVersion {
    /// Decodes the raw little-endian value with `layout`.
    pub const fn new(raw: u64, layout: TcbLayout) -> Self {
        Self { raw, layout }
    }

    /// The raw 64-bit value.
    pub const fn raw(self) -> u64 {
        self.raw
    }

    /// The layout it was decoded with.
    pub const fn layout(self) -> TcbLayout {
        self.layout
    }

    const fn byte(self, index: usize) -> u8 {
        let [b0, b1, b2, b3, b4, b5, b6, b7] = self.raw.to_le_bytes();
        match index {
            0 => b0,
            1 => b1,
            2 => b2,
            3 => b3,
            4 => b4,
            5 => b5,
            6 => b6,
            _ => b7,
        }
    }

    /// The patch level of `component`; `None` for FMC under the legacy layout, which has none.
    pub const fn component(self, component: TcbComponent) -> Option<u8> {
        let index = match (self.layout, component) {
            (TcbLayout::Legacy, TcbComponent::Fmc) => return None,
            (TcbLayout::Legacy, TcbComponent::Bootloader)
            | (TcbLayout::Turin, TcbComponent::Fmc) => 0,
            (TcbLayout::Legacy, TcbComponent::Tee)
            | (TcbLayout::Turin, TcbComponent::Bootloader) => 1,
            (TcbLayout::Turin, TcbComponent::Tee) => 2,
            (TcbLayout::Turin, TcbComponent::Snp) => 3,
            (TcbLayout::Legacy, TcbComponent::Snp) => 6,
            (_, TcbComponent::Microcode) => 7,
        };
        Some(self.byte(index))
    }

    /// FMC patch level (Turin layout only).
    pub const fn fmc(self) -> Option<u8> {
        self.component(TcbComponent::Fmc)
    }

    /// Bootloader patch level.
    pub const fn bootloader(self) -> u8 {
        self.byte(match self.layout {
            TcbLayout::Legacy => 0,
            TcbLayout::Turin => 1,
        })
    }

    /// TEE (PSP OS) patch level.
    pub const fn tee(self) -> u8 {
        self.byte(match self.layout {
            TcbLayout::Legacy => 1,
            TcbLayout::Turin => 2,
        })
    }

    /// SNP firmware patch level.
    pub const fn snp(self) -> u8 {
        self.byte(match self.layout {
            TcbLayout::Legacy => 6,
            TcbLayout::Turin => 3,
        })
    }

    /// Microcode patch level.
    pub const fn microcode(self) -> u8 {
        self.byte(7)
    }

    /// The components this layout has, with their levels.
    pub fn components(self) -> impl Iterator<Item = (TcbComponent, u8)> {
        TcbComponent::ALL
            .into_iter()
            .filter_map(move |c| self.component(c).map(|v| (c, v)))
    }
}

impl fmt::Debug for TcbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcbVersion({:#018x}", self.raw)?;
        for (component, level) in self.components() {
            write!(f, " {component}={level}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_layout() {
        // go-sev-guest attestation.bin: bl=2 tee=0 snp=5 ucode=68.
        let t = TcbVersion::new(0x4405_0000_0000_0002, TcbLayout::Legacy);
        assert_eq!(
            (t.fmc(), t.bootloader(), t.tee(), t.snp(), t.microcode()),
            (None, 2, 0, 5, 68)
        );
        assert_eq!(t.components().count(), 4);
    }

    #[test]
    fn turin_layout() {
        // oak turin_oc_report.bin: fmc=0 bl=1 tee=0 snp=2 ucode=71.
        let t = TcbVersion::new(0x4700_0000_0200_0100, TcbLayout::Turin);
        assert_eq!(
            (t.fmc(), t.bootloader(), t.tee(), t.snp(), t.microcode()),
            (Some(0), 1, 0, 2, 71)
        );
        assert_eq!(t.components().count(), 5);
        // The same bits read with the wrong layout give other numbers.
        let wrong = TcbVersion::new(t.raw(), TcbLayout::Legacy);
        assert_eq!((wrong.bootloader(), wrong.snp()), (0, 0));
    }
}
