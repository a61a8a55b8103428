//! plinth's shared vocabulary.
//!
//! Every other plinth crate speaks in these types: the [`Nonce`] a challenge carries, the
//! [`Digest`] of a measurement, the [`SpiffeId`] an SVID is minted for, the [`UnixTime`] a
//! verifier is told is "now", and the normalized [`Claims`] each platform verifier produces
//! from evidence it has verified.
//!
//! This crate has no cryptography and no I/O. Randomness comes in through the
//! [`SecureRandom`] trait, implemented by `plinth-crypto`; time comes in as a value.

mod claims;
mod digest;
mod error;
mod nonce;
mod random;
mod spiffe;
mod time;

pub use claims::{BoundKey, Claims, Measurement, Platform};
pub use digest::{Digest, HashAlg};
pub use error::Error;
pub use nonce::Nonce;
pub use random::{RandomError, SecureRandom};
pub use spiffe::{SpiffeId, TrustDomain};
pub use time::UnixTime;
