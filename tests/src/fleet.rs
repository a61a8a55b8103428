//! TPM nodes for the crash-safety test and the load benchmark: each a freshly manufactured
//! swtpm with plinth-agent's tss-esapi collector on it and the hello it sends; and the
//! policy and trust roots a server needs to admit several of them at once.
//!
//! ```text
//!  TpmNode::start ─► Swtpm::start ─► TpmCollector::open ─► tpm_hello (EK cert, EK, AK)
//!  TpmNode::evidence(challenge) ─► activate credential, quote, certified key ─► Evidence
//!  write_trust_for(dir, nodes) ─► policies/tpm.toml (swtpm_policy over their roots)
//!                               └► tpm-roots/ (each node's root and EK issuer)
//!  swtpm_policy(roots) ─► a policy admitting EKs certified by those local CAs
//! ```
#![allow(
    clippy::panic,
    reason = "a test harness: a failure to set up is a test failure and should abort loudly"
)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use plinth_agent::exchange::{tpm_evidence, tpm_hello};
use plinth_agent::tls::{SvidClientCert, TpmSigningKey};
use plinth_agent::{CertifiedKey, TpmCollector};
use plinth_api::attestation::attestation_client::AttestationClient;
use plinth_api::attestation::{AttestationResult, ChallengeResponse, Evidence, Hello};
use plinth_core::HashAlg;
use tonic::transport::Channel;

use crate::Swtpm;
use crate::formats::pem_to_der;

/// The SVID lifetime [`swtpm_policy`] grants.
pub const SVID_TTL_SECONDS: u64 = 300;

/// [`swtpm_policy_with_ttl`] with [`SVID_TTL_SECONDS`].
pub fn swtpm_policy(roots_sha256: &[String]) -> String {
    swtpm_policy_with_ttl(roots_sha256, SVID_TTL_SECONDS)
}

/// A policy for freshly manufactured swtpm instances: PCR 0 as the TPM leaves it (zero,
/// no firmware ran), and an EK certified by one of the local CAs whose root certificates
/// hash (SHA-256 of the DER, hex) to `roots_sha256`; SVIDs live `svid_ttl_seconds`.
pub fn swtpm_policy_with_ttl(roots_sha256: &[String], svid_ttl_seconds: u64) -> String {
    let roots = roots_sha256
        .iter()
        .map(|r| format!("\"{r}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"version = 1
name = "swtpm-node"
platform = "tpm"

[identity]
trust_domain = "example.org"
spiffe_id = "spiffe://{{trust_domain}}/node/tpm/{{ek_hash}}"
selectors = ["tpm:root:{{root_fingerprint}}"]
svid_ttl_seconds = {svid_ttl_seconds}

[tpm.pcrs.sha256]
0 = ["{zero}"]

[tpm.identity]
roots = [{roots}]
"#,
        zero = "00".repeat(32)
    )
}

/// A node: a swtpm and the agent's collector on it.
pub struct TpmNode {
    // Declared first so it is dropped before the TPM it talks to.
    collector: Arc<Mutex<TpmCollector>>,
    /// The TPM.
    pub tpm: Swtpm,
    /// The hello this node sends (EK certificate, EK, AK).
    pub hello: Hello,
}

impl TpmNode {
    /// Manufactures a TPM and opens the collector on it.
    ///
    /// # Panics
    /// When swtpm or tpm2-tss is missing or fails (the TPM tests never skip).
    pub fn start() -> Self {
        Self::on(Swtpm::start().unwrap_or_else(|e| panic!("cannot run the swtpm tests: {e}")))
    }

    /// Opens the collector on a running TPM.
    ///
    /// # Panics
    /// When tpm2-tss cannot talk to it.
    pub fn on(tpm: Swtpm) -> Self {
        let mut collector =
            TpmCollector::open(tpm.tcti()).unwrap_or_else(|e| panic!("opening the TPM: {e}"));
        let hello = tpm_hello(&mut collector).unwrap_or_else(|e| panic!("TPM hello: {e}"));
        Self {
            collector: Arc::new(Mutex::new(collector)),
            tpm,
            hello,
        }
    }

    /// Manufactures `count` TPMs in parallel (manufacturing takes seconds each), and only
    /// then opens their collectors. tpm2-tss opens its sockets without close-on-exec, so a
    /// swtpm started while another node's collector is connected inherits that connection
    /// and keeps the other TPM (which serves one client at a time) busy for ever.
    ///
    /// # Panics
    /// As [`TpmNode::start`].
    pub fn start_many(count: usize) -> Vec<Self> {
        let tpms: Vec<Swtpm> = std::thread::scope(|scope| {
            let starting: Vec<_> = (0..count).map(|_| scope.spawn(Swtpm::start)).collect();
            starting
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| panic!("starting a swtpm panicked"))
                        .unwrap_or_else(|e| panic!("cannot run the swtpm tests: {e}"))
                })
                .collect()
        });
        tpms.into_iter().map(Self::on).collect()
    }

    /// The collector (shared with TLS signing keys).
    pub fn collector(&self) -> &Arc<Mutex<TpmCollector>> {
        &self.collector
    }

    /// The local CA's root certificate, DER.
    ///
    /// # Panics
    /// When it cannot be read.
    pub fn root_der(&self) -> Vec<u8> {
        let pem = std::fs::read_to_string(self.tpm.root_ca_pem())
            .unwrap_or_else(|e| panic!("reading the swtpm root: {e}"));
        pem_to_der(&pem).unwrap_or_else(|e| panic!("the swtpm root: {e}"))
    }

    /// SHA-256 (hex) of the local CA's root certificate: what a policy names.
    pub fn root_sha256(&self) -> String {
        plinth_crypto::digest(HashAlg::Sha256, &self.root_der()).to_hex()
    }

    /// Copies this node's root and EK issuer into `dir` (a server's `tpm_roots`), under
    /// names prefixed with `prefix`.
    ///
    /// # Panics
    /// When the files cannot be copied.
    pub fn copy_roots_to(&self, dir: &Path, prefix: &str) {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for (from, name) in [
            (self.tpm.root_ca_pem(), "root.pem"),
            (self.tpm.issuer_cert_pem(), "issuer.pem"),
        ] {
            let to = dir.join(format!("{prefix}{name}"));
            let _bytes = std::fs::copy(&from, &to)
                .unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
        }
    }

    /// Answers a challenge with this TPM (blocking: the TPM is a local device).
    ///
    /// # Panics
    /// When the TPM fails.
    pub fn evidence(&self, challenge: &ChallengeResponse) -> (Evidence, CertifiedKey) {
        let mut collector = self
            .collector
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        tpm_evidence(&mut collector, challenge, None)
            .unwrap_or_else(|e| panic!("TPM evidence: {e}"))
    }

    /// One attestation: challenge, evidence from the TPM, result.
    ///
    /// # Errors
    /// The server's status.
    pub async fn attest(
        &self,
        client: &mut AttestationClient<Channel>,
    ) -> Result<(AttestationResult, CertifiedKey), tonic::Status> {
        let challenge = client.challenge(self.hello.clone()).await?.into_inner();
        let (evidence, key) = self.evidence(&challenge);
        let result = client.attest(evidence).await?.into_inner();
        Ok((result, key))
    }

    /// An SVID as a TLS client identity, its key in the TPM.
    ///
    /// # Panics
    /// When the key blobs do not load.
    pub fn client_cert(
        &self,
        result: &AttestationResult,
        key: &CertifiedKey,
    ) -> Arc<dyn rustls::client::ResolvesClientCert> {
        let handle =
            plinth_agent::TpmKeyHandle::from_blobs(key.key.wrapped_private(), key.key.public())
                .unwrap_or_else(|e| panic!("the SVID key: {e}"));
        Arc::new(SvidClientCert::new(
            result.svid_chain.clone(),
            Arc::new(TpmSigningKey::new(Arc::clone(&self.collector), handle)),
        ))
    }
}

/// Writes the policy admitting `nodes` into `policies/tpm.toml` under `dir` and copies
/// their roots into `dir/tpm-roots`; returns the `tpm_roots` directory.
///
/// # Panics
/// When the files cannot be written.
pub fn write_trust_for(dir: &Path, nodes: &[&TpmNode]) -> PathBuf {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap_or_else(|e| panic!("policies dir: {e}"));
    let roots: Vec<String> = nodes.iter().map(|n| n.root_sha256()).collect();
    std::fs::write(policies.join("tpm.toml"), swtpm_policy(&roots))
        .unwrap_or_else(|e| panic!("writing the policy: {e}"));
    let tpm_roots = dir.join("tpm-roots");
    for (i, node) in nodes.iter().enumerate() {
        node.copy_roots_to(&tpm_roots, &format!("node{i}-"));
    }
    tpm_roots
}
