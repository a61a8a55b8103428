//! A server for a freshly manufactured swtpm: the policy admitting it and its local CA's
//! roots as the server's `tpm_roots`.

use std::sync::Arc;

use plinth_core::HashAlg;

use crate::Swtpm;
use crate::formats::pem_to_der;
use crate::server::{SteppingClock, TestServer, config_in};

/// A policy admitting one freshly manufactured swtpm, whose local CA's root hashes to
/// `root_sha256` (see [`crate::fleet::swtpm_policy_with_ttl`]).
pub fn swtpm_policy(root_sha256: &str, svid_ttl_seconds: u64) -> String {
    crate::fleet::swtpm_policy_with_ttl(&[root_sha256.to_owned()], svid_ttl_seconds)
}

/// A server admitting `tpm` (its policy and local CA), on a stepping clock shared with
/// its clients' certificate checks.
///
/// # Panics
/// When the files cannot be written or the server does not start (a test failure).
#[expect(clippy::panic, reason = "a test harness: set-up failures abort loudly")]
pub async fn swtpm_server(tpm: &Swtpm, svid_ttl_seconds: u64) -> (TestServer, SteppingClock) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pem = std::fs::read_to_string(tpm.root_ca_pem()).unwrap_or_else(|e| panic!("{e}"));
    let root = pem_to_der(&pem).unwrap_or_else(|e| panic!("{e}"));
    let root_hash = plinth_crypto::digest(HashAlg::Sha256, &root).to_hex();
    let mut config = config_in(
        dir.path(),
        &[("tpm.toml", swtpm_policy(&root_hash, svid_ttl_seconds))],
    );
    let roots = dir.path().join("tpm-roots");
    std::fs::create_dir_all(&roots).unwrap_or_else(|e| panic!("{e}"));
    let _root =
        std::fs::copy(tpm.root_ca_pem(), roots.join("root.pem")).unwrap_or_else(|e| panic!("{e}"));
    let _issuer = std::fs::copy(tpm.issuer_cert_pem(), roots.join("issuer.pem"))
        .unwrap_or_else(|e| panic!("{e}"));
    config.tpm_roots = vec![roots];
    let clock = SteppingClock::now();
    let server = TestServer::start_with(
        dir,
        config,
        Arc::new(clock.clone()),
        Arc::new(clock.clone()),
    )
    .await;
    (server, clock)
}
