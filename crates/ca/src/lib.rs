//! plinth's signing core and SPIFFE certificate authority.
//!
//! ```text
//!  BoundKey (from a verifier) ─┐
//!  SpiffeId, ttl, now, rng ────┼─► Ca::mint_x509_svid ─► X509Svid (leaf + intermediates)
//!                              │        │
//!  SpiffeId, audience, now ────┼─► Ca::mint_jwt_svid ──► JwtSvid
//!                              │        │ rcgen lays out the DER; the one signature is
//!                              │        ▼ asked of the active authority's Signer
//!                              │   Signer ── SoftwareKey (aws-lc-rs, PKCS#8 file 0600)
//!                              │          └─ Pkcs11Key   (token: sensitive, non-extractable)
//!  Ca::bundle ─► Bundle (X.509 DER / PEM, SPIFFE JWKS, Workload API JWKS)
//!  CaDir: the CA on disk — init, open (every key checked against its certificate),
//!         prepare → activate → retire
//! ```
//!
//! # The signing core
//! Algorithms are constants ([`ECDSA_P256_SHA256`], the default, and
//! [`ECDSA_P384_SHA384`]). A [`Signer`] holds a private key and never gives it out: no
//! getter, `Debug` shows the public key only, and the key is zeroized when dropped
//! (AWS-LC cleanses key memory on free; every buffer that held PKCS#8 bytes is a
//! `Zeroizing`). The arithmetic is aws-lc-rs's constant-time ECDSA; the core itself never
//! branches or indexes on secret data, and compares keys with
//! `plinth_crypto::verify_slices_equal`. When the CA starts, every key is checked against
//! its certificate (equal public keys, and a signature that verifies), so a swapped or
//! corrupted key fails at start, not at the first mint. The `benches/dudect.rs` benchmark
//! checks signing time statistically for a dependence on the key.
//!
//! # What is minted
//! Only for a [`plinth_core::BoundKey`]: the key the evidence proved is held by the
//! hardware. X.509-SVIDs follow SPIFFE X.509-SVID §4 (exactly one URI SAN, cA false,
//! keyUsage digitalSignature only and critical, extendedKeyUsage serverAuth and
//! clientAuth, a random 128-bit serial, key identifiers); they live one hour by default
//! and never past the CA's own expiry. JWT-SVIDs carry only `alg`, `kid` and `typ`
//! headers and `sub`, `aud`, `exp`, `iat` claims. Time and randomness are parameters.
//!
//! # Rotation
//! An authority is one generation of keys and certificates. A new one is *prepared*
//! (it enters the bundle but signs nothing), then *activated* once it has been in the
//! bundle for one refresh hint (peers trust it before they meet SVIDs it signed), then the
//! old one, *superseded* but still in the bundle, is *retired* once every SVID it signed
//! has expired. So at no point is an unexpired SVID unverifiable against the current
//! bundle.
//!
//! # Chains
//! The trust anchor is a self-signed root, or an upstream CA's root when an upstream CA
//! (given as files) signs the CA. Optionally an intermediate signs the SVIDs; the key
//! above it then signs only that intermediate and is not kept.

mod authority;
mod bundle;
mod ca;
mod error;
mod jwt;
mod name;
mod pem;
mod pkcs11;
mod signer;
mod store;
mod x509;

pub use authority::{Authority, AuthorityState, AuthorityTimes};
pub use bundle::{Bundle, JwtAuthority};
pub use ca::{Ca, CaConfig, X509Svid};
pub use error::Error;
pub use jwt::{JwtSvid, MAX_AUDIENCE_LEN, MAX_AUDIENCES};
pub use pem::encode as pem_encode;
pub use pkcs11::{Pkcs11Config, Pkcs11Key};
pub use signer::{
    ECDSA_P256_SHA256, ECDSA_P384_SHA384, SignatureAlgorithm, Signer, SoftwareKey, check_signer,
};
pub use store::{CaDir, InitOptions, KeyBackend, UpstreamFiles};
