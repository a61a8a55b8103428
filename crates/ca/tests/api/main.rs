//! plinth-ca's integration tests, one binary: SVIDs checked by real SPIFFE clients
//! (`spiffe`, `spiffe-rustls`) and by OpenSSL, rotation, SoftHSM2, refusals, `Debug` pins.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

mod debug;
mod jwt;
mod mtls;
mod negative;
mod pkcs11;
mod rotation;
mod support;
mod workload_api;
mod x509;
