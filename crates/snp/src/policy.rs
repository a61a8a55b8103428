//! The bit fields of a report: guest policy, platform info, and the signing-key flags.

use std::fmt;

/// The guest policy the VM was launched with (SEV-SNP ABI, GUEST_POLICY).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GuestPolicy(u64);

impl GuestPolicy {
    const SMT: u64 = 1 << 16;
    const RESERVED_MBO: u64 = 1 << 17;
    const MIGRATE_MA: u64 = 1 << 18;
    const DEBUG: u64 = 1 << 19;
    const SINGLE_SOCKET: u64 = 1 << 20;
    const CXL_ALLOW: u64 = 1 << 21;
    const MEM_AES_256_XTS: u64 = 1 << 22;
    const RAPL_DIS: u64 = 1 << 23;
    const CIPHERTEXT_HIDING: u64 = 1 << 24;
    const PAGE_SWAP_DISABLE: u64 = 1 << 25;

    pub(crate) const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw 64-bit value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    const fn bit(self, mask: u64) -> bool {
        self.0 & mask != 0
    }

    /// Minimum firmware ABI minor version the guest requires.
    pub const fn abi_minor(self) -> u8 {
        self.0.to_le_bytes()[0]
    }

    /// Minimum firmware ABI major version the guest requires.
    pub const fn abi_major(self) -> u8 {
        self.0.to_le_bytes()[1]
    }

    /// Simultaneous multithreading may be enabled on the host.
    pub const fn smt_allowed(self) -> bool {
        self.bit(Self::SMT)
    }

    /// Bit 17, which the ABI requires to be one.
    pub const fn reserved_bit_set(self) -> bool {
        self.bit(Self::RESERVED_MBO)
    }

    /// A migration agent may be associated with the guest.
    pub const fn migration_agent_allowed(self) -> bool {
        self.bit(Self::MIGRATE_MA)
    }

    /// The host may debug the guest (read and write its memory): not a production guest.
    pub const fn debug_allowed(self) -> bool {
        self.bit(Self::DEBUG)
    }

    /// The guest may only be activated on one socket.
    pub const fn single_socket_required(self) -> bool {
        self.bit(Self::SINGLE_SOCKET)
    }

    /// CXL may be populated with guest memory.
    pub const fn cxl_allowed(self) -> bool {
        self.bit(Self::CXL_ALLOW)
    }

    /// AES-256-XTS memory encryption is required.
    pub const fn mem_aes_256_xts_required(self) -> bool {
        self.bit(Self::MEM_AES_256_XTS)
    }

    /// Running average power limit (RAPL) must be disabled.
    pub const fn rapl_disable_required(self) -> bool {
        self.bit(Self::RAPL_DIS)
    }

    /// Ciphertext hiding must be enabled.
    pub const fn ciphertext_hiding_required(self) -> bool {
        self.bit(Self::CIPHERTEXT_HIDING)
    }

    /// Guest page swapping is disabled.
    pub const fn page_swap_disabled(self) -> bool {
        self.bit(Self::PAGE_SWAP_DISABLE)
    }
}

impl fmt::Debug for GuestPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestPolicy")
            .field("raw", &format_args!("{:#x}", self.0))
            .field(
                "abi",
                &format_args!("{}.{}", self.abi_major(), self.abi_minor()),
            )
            .field("smt_allowed", &self.smt_allowed())
            .field("migration_agent_allowed", &self.migration_agent_allowed())
            .field("debug_allowed", &self.debug_allowed())
            .field("single_socket_required", &self.single_socket_required())
            .finish_non_exhaustive()
    }
}

/// Facts about the platform the report was produced on (SEV-SNP ABI, PLATFORM_INFO).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlatformInfo(u64);

impl PlatformInfo {
    pub(crate) const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw 64-bit value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    const fn bit(self, index: u32) -> bool {
        self.0 & (1 << index) != 0
    }

    /// SMT is enabled on the host.
    pub const fn smt_enabled(self) -> bool {
        self.bit(0)
    }

    /// Transparent SME (TSME) is enabled.
    pub const fn tsme_enabled(self) -> bool {
        self.bit(1)
    }

    /// The platform uses error-correcting memory.
    pub const fn ecc_enabled(self) -> bool {
        self.bit(2)
    }

    /// RAPL is disabled.
    pub const fn rapl_disabled(self) -> bool {
        self.bit(3)
    }

    /// Ciphertext hiding is enabled for DRAM.
    pub const fn ciphertext_hiding_enabled(self) -> bool {
        self.bit(4)
    }

    /// The memory alias check completed (no aliased DRAM).
    pub const fn alias_check_complete(self) -> bool {
        self.bit(5)
    }
}

impl fmt::Debug for PlatformInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformInfo")
            .field("raw", &format_args!("{:#x}", self.0))
            .field("smt_enabled", &self.smt_enabled())
            .field("tsme_enabled", &self.tsme_enabled())
            .field("ecc_enabled", &self.ecc_enabled())
            .finish_non_exhaustive()
    }
}

/// Which AMD key signed a report (the report's SIGNING_KEY field), or which kind an
/// endorsement certificate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningKey {
    /// Versioned Chip Endorsement Key: unique to the chip and its TCB.
    Vcek,
    /// Versioned Loaded Endorsement Key: issued by AMD to a cloud provider, loaded into
    /// its machines.
    Vlek,
}

impl SigningKey {
    /// Upper-case name (`VCEK`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Vcek => "VCEK",
            Self::Vlek => "VLEK",
        }
    }
}

impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_bits() {
        // go-sev-guest attestation.bin: 0xb0000 = SMT, reserved, DEBUG.
        let p = GuestPolicy::new(0xb_0000);
        assert!(p.smt_allowed() && p.reserved_bit_set() && p.debug_allowed());
        assert!(!p.migration_agent_allowed() && !p.single_socket_required());
        // trustee test-report.bin: 0x3001f = ABI 0.31, SMT.
        let p = GuestPolicy::new(0x3_001f);
        assert_eq!((p.abi_major(), p.abi_minor()), (0, 0x1f));
        assert!(!p.debug_allowed());
    }
}
