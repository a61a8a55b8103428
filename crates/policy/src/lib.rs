//! Appraisal policies: which verified evidence a deployment target accepts, and what
//! identity it then gets.
//!
//! A policy is a hand-written TOML file, one per deployment target, named by its `name`
//! and versioned by the SHA-256 of its exact text. It names a platform, states rules over
//! that platform's verified claims, and says what a passing appraisal yields: a SPIFFE ID
//! template over claims (`spiffe://{trust_domain}/node/tpm/{ek_hash}`), selectors and an
//! SVID lifetime.
//!
//! ```text
//!  policy.toml ─► Policy::parse(name, text) ─► Policy   (errors carry file:line:column)
//!  VerifiedQuote + VerifiedEventLog + identity ─┐
//!  VerifiedDocument (Nitro) ────────────────────┼─► Evidence
//!  VerifiedReport (SEV-SNP) ────────────────────┘
//!                      appraise(&policy, &evidence, now) ─► Appraisal
//!                        ├ every rule: pass / warn / fail, observed vs expected
//!                        ├ AR4SI trust vector, verdict (affirming / warning / contraindicated)
//!                        └ identity (SPIFFE ID, selectors, TTL) only when the verdict passes
//! ```
//!
//! The crate is pure: no I/O and no clock (`now` is a parameter). Its only input besides
//! the policy text is a verified value from a platform crate, which only that crate can
//! make, so a policy can never be applied to unverified evidence.
//!
//! # The format
//!
//! ```toml
//! version = 1
//! name = "gce-cos-85"
//! platform = "tpm"            # tpm | nitro | snp; the matching section is required
//!
//! [identity]
//! trust_domain = "example.org"
//! spiffe_id = "spiffe://{trust_domain}/node/tpm/{ak_hash}"
//! selectors = ["tpm:ak:{ak_hash}"]
//! svid_ttl_seconds = 3600
//!
//! [tpm.pcrs.sha256]           # per bank, per PCR: the allowed values
//! 0 = ["0f2d3a2a1adaa479aeeca8f5df76aadc41b862ea…"]
//! [tpm.boot]                  # from the event log verified against the quote
//! require_secure_boot = true
//! boot_applications = ["…"]   # Authenticode digests; every loaded application must match
//! cmdline_contains = ["dm-verity"]
//! cmdline_excludes = ["cros_debug"]
//! dbx_contains = ["…"]        # SHA-256 entries the measured dbx must hold
//! [tpm.identity]
//! roots = ["…"]               # SHA-256 of the EK/AK certificate's root
//! ek_hashes = ["…"]           # SHA-256 of the EK's SubjectPublicKeyInfo
//! ```
//!
//! Nitro: `[nitro]` with `pcrs` (indices 0–4 and 8, SHA-384), `allow_debug` (default
//! false) and `max_age_seconds`. SEV-SNP: `[snp]` with `measurements`, `min_tcb`
//! (`fmc`, `bootloader`, `tee`, `snp`, `microcode`), `allow_debug`,
//! `allow_migration_agent` (default false), `allow_smt` (default true), `host_data`,
//! `id_key_digests`, `author_key_digests`, `products` and `min_report_version`. Every
//! table rejects unknown keys; an absent key means "no rule", an empty list is an error,
//! and a policy that checks no measurement at all is rejected.
//!
//! # Results and reference values
//! - [`ear`]: the appraisal as a signed EAR token (draft-ietf-rats-ear, JWT form),
//!   verifiable offline with the CA's JWKS bundle.
//! - [`authenticode`]: Authenticode digests of EFI binaries, the reference values for
//!   `boot_applications` (`plinth measure authenticode`).
//! - [`snp_measure`]: the SEV-SNP launch measurement of a QEMU/OVMF guest, the reference
//!   value for `measurements` (`plinth measure snp`).

mod appraisal;
pub mod authenticode;
pub mod ear;
mod error;
mod nitro;
mod policy;
mod snp;
pub mod snp_measure;
mod template;
mod tpm;

pub use appraisal::{
    Appraisal, AppraisedIdentity, Component, Evidence, Outcome, RuleResult, TrustVector, Verdict,
    appraise, tier,
};
pub use error::{EarError, Error, Location};
pub use nitro::NITRO_MAX_SKEW_MS;
pub use policy::{
    IdentitySpec, MAX_POLICY_LEN, MAX_SVID_TTL_SECONDS, POLICY_FORMAT_VERSION, Policy,
    PolicyPlatform,
};
pub use template::Template;
pub use tpm::{TpmEvidence, TpmIdentity};
