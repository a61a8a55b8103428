//! Measured boot: TCG PC Client event logs, parsed, replayed against a verified quote, and
//! turned into a boot state.
//!
//! ```text
//!  bytes ─► EventLog::parse ─► EventLog (unverified) ─► replay() ─► ReplayedPcrs
//!                                    └─► boot_state_unverified() ─► BootState (Unverified)
//!  bytes + VerifiedQuote ─► verify_event_log ─► VerifiedEventLog ─► boot_state() ─► BootState
//! ```
//!
//! - **Formats.** The legacy SHA-1 log (`TCG_PCR_EVENT` throughout) and the crypto-agile log
//!   (a `Spec ID Event03` in `TCG_PCR_EVENT` form, then `TCG_PCR_EVENT2`s with a digest for
//!   every bank the Spec ID declares: SHA-1, SHA-256, SHA-384, SHA-512, SM3-256 or others).
//!   The log is little-endian, unlike TPM structures. Every event must carry exactly the
//!   declared banks ([`Error::EventDigestMissing`](crate::Error::EventDigestMissing)).
//! - **Budgets** ([`Budget`]): events per log, bytes per event, bytes per log.
//! - **Typed events** ([`EventData`]): Spec ID, StartupLocality and SP 800-155 reference
//!   manifests (`EV_NO_ACTION`), S-CRTM version, POST codes and firmware blobs, UEFI
//!   variables with their `EFI_SIGNATURE_LIST`s (PK, KEK, db, dbx, MokList), boot-services
//!   images with their device paths, the GPT, separators (normal and error), `EV_IPL`
//!   strings (GRUB commands, systemd-boot command lines), EFI actions and tagged events.
//!   Unknown types, and known types whose data is malformed, are kept raw: never fatal.
//! - **Replay** ([`EventLog::replay`]): every extended event into every bank. PCR 0 starts at
//!   the `StartupLocality` (0…03 or 0…04) when the log has that event. SM3-256 banks (which
//!   the crypto provider cannot compute) and banks of unknown algorithms are parsed and
//!   listed in [`ReplayedPcrs::unreplayable_banks`], not replayed, and do not fail the log.
//! - **Verification** ([`verify_event_log`]): the log is evidence only when its replay
//!   equals a verified quote's PCRs exactly; see that function for the precise rule and
//!   for what a mismatch can and cannot locate.
//! - **Event data** is not covered by a digest for every event type. Where the type defines
//!   the digest as the hash of the data, a verified log must have data that hashes to it
//!   (for separators, Secure Boot variables, EFI actions and the GPT), and the boot state
//!   reads only such bound data ([`DataBinding`]). Device paths of loaded images are never
//!   covered: they are descriptions.
//! - **Boot state** ([`BootState`]): Secure Boot and deployed mode; PK, KEK, db, dbx
//!   (certificates as SHA-256 fingerprints with their subjects, and hashes); a dbx check
//!   against a reference set ([`BootState::check_dbx`]); the authorities that verified
//!   images; the boot applications in order with their Authenticode digests; the kernel
//!   command line; the boot loader; separators of PCRs 0–7; ExitBootServices. Every fact is
//!   an `Option`: `None` when its PCR is not verified or its event is absent or unbound —
//!   absence is never read as a negative fact from a PCR the quote does not vouch for.
//!
//! # What is, and is not, evidence
//!
//! - A [`VerifiedEventLog`] vouches only for the PCRs in
//!   [`VerifiedEventLog::verified_pcrs`]: quoted, and equal to the replay (or, with no
//!   event, at their reset value). A quoted PCR the log never extends but whose value is not
//!   the reset value (PCR 10 after IMA) is listed in
//!   [`VerifiedEventLog::uncovered_pcrs`] and vouches for nothing; a log that drops a PCR's
//!   events therefore hides nothing, it only makes that PCR's facts `None`.
//! - Measured digests are evidence. Event data is evidence only when bound to its digest:
//!   GRUB's labels (`grub_cmd: `, `kernel_cmdline: `) are not covered by GRUB's digests,
//!   so the kernel command line is read from the measured `linux` command itself; device
//!   paths and file names are never covered, so a boot loader named from a file name says
//!   `basis: "device-path"`. A policy that needs to know *which* shim, boot loader or kernel
//!   ran pins the Authenticode digests of [`BootApplication`], not names.
//! - [`EventLog::boot_state_unverified`] reads the same facts from a file alone and says so
//!   ([`Provenance::Unverified`]): for inspection, never for a decision.

mod boot_state;
pub mod efi;
mod events;
mod parse;
mod replay;

pub use boot_state::{
    Authority, BootApplication, BootState, Bootloader, DbxCurrent, Provenance, SeparatorState,
};
pub use events::{
    Bank, Event, EventData, EventDigest, EventType, ImageLoad, ReferenceManifest, Separator,
    SpecId, TPM_ALG_SM3_256, TaggedEvent, Variable, VariableValue,
};
pub use parse::{Budget, EventLog, LogFormat};
pub use replay::{DataBinding, ReplayedPcrs, VerifiedEventLog, verify_event_log};
