//! A pure AMD SEV-SNP evidence verifier.
//!
//! Report bytes, certificates, the pinned AMD roots and "now" go in; a [`VerifiedReport`]
//! or a specific [`Error`] comes out. There is no I/O, no clock and no C library; every
//! signature is checked over the bytes as received, through `plinth-crypto`; certificate
//! paths are validated by `plinth-x509`.
//!
//! ```text
//!  report bytes ──► AttestationReport::parse ─────────────────────────────┐ (not trusted)
//!                                                                         │
//!  VCEK/VLEK DER ─► EndorsementKey ─┐                                     │
//!  ASK/ASVK, CRLs ─► Collateral ────┼─► verify_endorsement(.., product, now)
//!  AmdRoots (ARK pinned/product) ───┘        │  chain to the pinned ARK (RSA-PSS),
//!                                            │  dates, issuer kind, CRLs
//!                                            ▼
//!                                   VerifiedEndorsement (cacheable)
//!                                            │
//!                     verify_report(report, &endorsement, now) ◄──────────┘
//!                        ECDSA P-384 over [0, 0x2A0), SIGNING_KEY, CPUID product,
//!                        CHIP_ID = hwID, REPORTED_TCB = TCB extensions
//!                                            ▼
//!                                     VerifiedReport ──► claims(), verify_key_binding()
//! ```
//!
//! [`verify`] does both steps and picks the product: the caller's, else the report's
//! CPUID (versions 3+), else the certificate's productName — in every case the chain must
//! end at the ARK pinned for that product, so a certificate cannot choose its own root.
//!
//! # What is checked
//! - **Report:** exactly 1184 bytes; VERSION 2, 3, 4 or 5 (4 shares 3's layout);
//!   SIGNATURE_ALGO 1; VMPL 0–3; SIGNING_KEY VCEK or VLEK; the signature's `r` and `s`
//!   are 72-byte little-endian fields whose high 24 bytes must be zero. The signed region
//!   `[0, 0x2A0)` is hashed as received; the unsigned tail is never read.
//! - **TCB:** TCB_VERSION is decoded with the verified product's layout (Turin:
//!   FMC, BL, TEE, SNP, …, ucode; Milan/Genoa: BL, TEE, …, SNP, ucode), see [`TcbVersion`].
//!   Every SPL extension of the certificate must equal the REPORTED_TCB component.
//! - **Chip:** a VCEK's hwID must equal CHIP_ID (64 bytes; 8 on Turin). VLEKs have no
//!   hwID, so a VLEK report's CHIP_ID is not reported as verified.
//! - **Chain:** VCEK ← `SEV-<product>` (ASK) ← pinned `ARK-<product>`, or VLEK ←
//!   `SEV-VLEK-<product>` (ASVK) ← pinned ARK; every certificate valid at `now`; AMD's
//!   serial-0 VCEKs and private extensions are accepted by `plinth-x509` as they are.
//! - **Revocation:** only when CRLs are given (AMD KDS `…/crl`): each must be signed by
//!   the pinned ARK and current at `now`, and no certificate of the chain may be listed.
//!   Without CRLs revocation is not checked.
//!
//! # Why not the `sev` crate
//! The project considered `sev` 8 (`snp`, `crypto_nossl`) for the report types and the
//! built-in AMD roots. It is not used: the report is ~40 fixed-offset fields, parsed here
//! through one bounds-checked reader ([`AttestationReport::parse`]) that keeps the original
//! bytes; `sev` verifies over a re-serialised report, skips dates, TCB-versus-VCEK and
//! chip checks (so its verifier could not be used anyway), costs about 63 s of build time,
//! and pulls in a second crypto stack (RustCrypto `p384`/`rsa`, the latter with
//! RUSTSEC-2023-0071) next to `plinth-crypto`. AMD's ARK/ASK/ASVK for Milan, Genoa and
//! Turin ship in `roots/` instead (the files AMD's KDS serves, copied from
//! confidential-containers/trustee), with the ARKs pinned by SHA-256 fingerprint in
//! [`AmdRoots::builtin`].
//!
//! # Where certificates come from
//! [`Collateral`] is filled from the extended report's certificate table
//! ([`CertTable`], GHCB GUID format), from files, or from an [`OfflineStore`] keyed by
//! product, hwID and TCB. Fetching from AMD's KDS is the server's business, not this
//! crate's.

mod collateral;
mod crl;
mod error;
mod policy;
mod product;
mod reader;
mod report;
mod tcb;
mod trust;
mod vek;
mod verify;

pub use collateral::{
    CertKind, CertTable, CertTableEntry, Collateral, MAX_CERT_TABLE_ENTRIES, MAX_CERT_TABLE_LEN,
    MAX_COLLATERAL_ITEMS, OfflineStore,
};
pub use crl::{Crl, MAX_CRL_ENTRIES, MAX_CRL_LEN};
pub use error::Error;
pub use policy::{GuestPolicy, PlatformInfo, SigningKey};
pub use product::Product;
pub use report::{AttestationReport, Cpuid, FirmwareVersion, REPORT_LEN, SIGNED_LEN};
pub use tcb::{TcbComponent, TcbLayout, TcbVersion};
pub use trust::{AmdRoots, builtin_intermediates};
pub use vek::{CertifiedTcb, EndorsementKey};
pub use verify::{VerifiedEndorsement, VerifiedReport, verify, verify_endorsement, verify_report};
