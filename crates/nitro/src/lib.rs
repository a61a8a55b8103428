//! Pure verifier for AWS Nitro Enclaves attestation documents.
//!
//! An enclave asks the Nitro Secure Module (NSM) for an attestation document; the NSM
//! returns a COSE_Sign1 whose payload is a CBOR map of measurements (PCRs), the enclave's
//! module id, a timestamp, optional `public_key` / `user_data` / `nonce`, and the
//! certificate chain of the key that signed it. This crate turns those bytes, a
//! [`NitroTrust`] and a `now` into a [`VerifiedDocument`] or an [`Error`]. It does no I/O,
//! reads no clock, and reaches cryptography only through `plinth-crypto` and X.509 only
//! through `plinth-x509`.
//!
//! ```text
//!  bytes ──► ParsedDocument::parse ──────────────► ParsedDocument ──► verify(trust, now)
//!            ├ size budget (MAX_DOCUMENT_LEN)                         ├ cabundle[0] == pinned root?
//!            ├ COSE_Sign1 (tag 18 or none), alg = ES384,              ├ leaf → cabundle → root,
//!            │ protected = {alg} only, unprotected = {}, no trailing  │  all valid at `now`
//!            └ payload map: AWS's field rules, sizes, no unknown keys ├ leaf key ECDSA P-384
//!                                                                     └ ES384 over Sig_structure
//!                                                                        (protected bytes as received)
//!                                              VerifiedDocument ◄────┘
//!                                              ├ verify_nonce(expected)   constant time
//!                                              ├ verify_age(now, max_age, skew)
//!                                              ├ bound_key()              public_key as SPKI
//!                                              └ claims()                 plinth_core::Claims
//! ```
//!
//! # How the AWS root is pinned
//!
//! Every Nitro document carries its own root as `cabundle[0]`. A bundle is attacker
//! supplied, so its root is never trusted for being there: [`NitroTrust`] holds the SHA-256
//! fingerprint of the root certificate's DER, and `cabundle[0]` becomes the trust anchor only
//! if it hashes to exactly that value ([`Error::RootNotPinned`] otherwise). The path from the
//! leaf through the rest of the bundle must then end at that anchor, so no other root can
//! ever sign for an enclave.
//!
//! The fingerprint comes from the trust configuration. [`NitroTrust::aws_root_g1`] (also
//! the [`Default`]) pins [`AWS_NITRO_ROOT_G1_SHA256`],
//! `641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b`: the DER of `root.pem`
//! from AWS's `AWS_NitroEnclaves_Root-G1.zip`, whose own SHA-256 AWS publishes
//! (`8cf60e2b…faff7c`). Both files are in the repository under `testdata/nitro/aws-root/`, and
//! the test suite recomputes the pin from them. A deployment that must follow a future AWS
//! root rotation configures the new fingerprint with [`NitroTrust::pinned_root_sha256`] or
//! [`NitroTrust::from_hex`] (the CLI's `--root-sha256`); nothing is fetched at run time.
//!
//! # The chain cache
//!
//! A steady stream of documents from one enclave carries the same `cabundle` (and, until the
//! NSM rotates it, the same leaf). [`verify_with_cache`] keeps validated chains in a
//! caller-owned, bounded [`ChainCache`] keyed by fingerprint, until their earliest notAfter,
//! so such a document costs one signature check: its own. [`ChainSource`] on the result says
//! what was reused.
//!
//! # What is not checked here
//!
//! Policy: which PCR values, module ids or debug mode are acceptable is the policy engine's
//! decision, made on [`VerifiedDocument::claims`]. Freshness needs the caller's nonce and
//! clock, so it is the explicit next step ([`VerifiedDocument::verify_nonce`],
//! [`VerifiedDocument::verify_age`]). Revocation: AWS publishes no CRL for Nitro
//! certificates; their short lives (the leaf lives about three hours) stand in for it.

mod chain;
mod cose;
mod document;
mod error;
mod trust;
mod verify;

pub use chain::{CacheStats, ChainCache, ChainSource};
pub use document::{
    AttestationDocument, MAX_CABUNDLE_LEN, MAX_CERTIFICATE_LEN, MAX_MODULE_ID_LEN, MAX_NONCE_LEN,
    MAX_PCRS, MAX_PUBLIC_KEY_LEN, MAX_USER_DATA_LEN,
};
pub use error::{ChainPosition, Error, Part};
pub use trust::{AWS_NITRO_ROOT_G1_SHA256, NitroTrust};
pub use verify::{MAX_DOCUMENT_LEN, ParsedDocument, VerifiedDocument, verify, verify_with_cache};

/// Named PCR indices of a Nitro Enclave (AWS Nitro Enclaves User Guide, "Where to get an
/// enclave's measurements").
pub mod pcr {
    /// PCR0: hash of the enclave image file.
    pub const IMAGE: u8 = 0;
    /// PCR1: hash of the Linux kernel and bootstrap.
    pub const KERNEL: u8 = 1;
    /// PCR2: hash of the application.
    pub const APPLICATION: u8 = 2;
    /// PCR3: hash of the parent instance's IAM role.
    pub const PARENT_IAM_ROLE: u8 = 3;
    /// PCR4: hash of the parent instance's id.
    pub const PARENT_INSTANCE_ID: u8 = 4;
    /// PCR8: hash of the enclave image file's signing certificate.
    pub const SIGNING_CERTIFICATE: u8 = 8;
    /// The PCRs with a defined meaning, in order.
    pub const NAMED: [u8; 6] = [
        IMAGE,
        KERNEL,
        APPLICATION,
        PARENT_IAM_ROLE,
        PARENT_INSTANCE_ID,
        SIGNING_CERTIFICATE,
    ];
}
