//! Pure X.509 path validation, shared by plinth's TPM, Nitro and SEV-SNP verifiers.
//!
//! ```text
//!  DER ──► Certificate::from_der / from_der_trimmed ──► Certificate   (parsed, NOT trusted)
//!                                                          │
//!  leaf, intermediates, TrustAnchors, now, ChainOptions ──► verify_chain ──► VerifiedChain
//! ```
//!
//! - [`Certificate`] parses leniently (real TPM EK certificates are not strict DER: Intel
//!   PTT encodes DEFAULT values, Nuvoton orders multi-valued RDN SETs wrongly) but keeps
//!   the exact bytes it was given. Signatures are verified over the `TBSCertificate` as
//!   received, names are compared as received; nothing is re-encoded.
//!   [`Certificate::from_der`] rejects trailing bytes; [`Certificate::from_der_trimmed`]
//!   cuts uniform 0xFF/0x00 padding (as read from TPM NV) and records that it did.
//! - [`TrustAnchors`] is the caller's set of roots. A root is trusted because it is in the
//!   set, never because a chain carries it.
//! - [`verify_chain`] builds the path by name and key identifier, and checks every
//!   signature, every validity period at `now`, CA-ness, `keyCertSign`, `pathLenConstraint`
//!   and critical extensions, within depth and signature-check budgets
//!   ([`ChainOptions`]). Its result, [`VerifiedChain`], can only be made by it.
//! - [`Crl`] parses an X.509 v2 CRL the same way (own reader for the signed parts,
//!   x509-parser for the rest, trailing data rejected, size and entry budgets) and
//!   [`Crl::verify_signed_by`] checks its signature over the `TBSCertList` as received,
//!   with the same algorithms as certificates. Which key must sign it, and whether it is
//!   current, is the caller's policy.
//!
//! What is not checked: revocation during path validation (CRLs are parsed and verified
//! on request, but [`verify_chain`] consults none, and there is no OCSP), name constraints
//! and certificate policies (a certificate that marks either critical is rejected unless
//! allow-listed), extended key usage (profile-specific: callers check it on the leaf).
//!
//! There is no I/O and no clock: time is the `now` argument. Cryptography goes through
//! `plinth-crypto`. Signature algorithms accepted: RSA PKCS#1 v1.5 with SHA-1/256/384/512,
//! RSASSA-PSS with SHA-256/384/512 (MGF1 same hash, salt = hash length), ECDSA with
//! SHA-256/384/512 on P-256 and P-384.

mod algorithm;
mod anchors;
mod cert;
mod chain;
mod crl;
mod der;
mod error;
mod oid;
mod signed;

pub use anchors::TrustAnchors;
pub use cert::{
    BasicConstraints, Certificate, Extension, KeyUsage, MAX_CERTIFICATE_LEN, MAX_PADDED_LEN,
    MAX_PEM_CERTIFICATES, Name, NameAttribute, Validity, certificates_from_pem,
};
pub use chain::{ChainOptions, VerifiedChain, verify_chain};
pub use crl::{Crl, MAX_CRL_ENTRIES, MAX_CRL_LEN};
pub use error::Error;
pub use oid::{Oid, oids};
