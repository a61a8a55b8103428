//! The node's TLS client identity for renewal: its current SVID, whose key never leaves
//! the TPM. rustls asks for one signature per handshake; it is made by TPM2_Sign.

use std::fmt;
use std::sync::{Arc, Mutex};

use plinth_core::HashAlg;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use crate::{TpmCollector, TpmKeyHandle};

/// A P-256 key held in the TPM, signing TLS handshakes (ECDSA with SHA-256).
pub struct TpmSigningKey {
    collector: Arc<Mutex<TpmCollector>>,
    key: Arc<TpmKeyHandle>,
}

impl fmt::Debug for TpmSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TpmSigningKey")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TpmSigningKey {
    /// The key `key`, reached through `collector` (shared with the rest of the agent:
    /// the TPM serves one command at a time).
    pub fn new(collector: Arc<Mutex<TpmCollector>>, key: TpmKeyHandle) -> Self {
        Self {
            collector,
            key: Arc::new(key),
        }
    }
}

impl SigningKey for TpmSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        if !offered.contains(&SignatureScheme::ECDSA_NISTP256_SHA256) {
            return None;
        }
        let signer: Box<dyn Signer> = Box::new(TpmSigner {
            collector: Arc::clone(&self.collector),
            key: Arc::clone(&self.key),
        });
        Some(signer)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

struct TpmSigner {
    collector: Arc<Mutex<TpmCollector>>,
    key: Arc<TpmKeyHandle>,
}

impl fmt::Debug for TpmSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TpmSigner").finish_non_exhaustive()
    }
}

impl Signer for TpmSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let digest = plinth_crypto::digest(HashAlg::Sha256, message);
        let digest: [u8; 32] = digest
            .as_bytes()
            .try_into()
            .map_err(|_| rustls::Error::General("SHA-256 is 32 bytes".into()))?;
        let mut collector = self
            .collector
            .lock()
            .map_err(|_| rustls::Error::General("the TPM collector lock is poisoned".into()))?;
        collector
            .sign_digest(&self.key, &digest)
            .map_err(|e| rustls::Error::General(format!("TPM2_Sign: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP256_SHA256
    }
}

/// Presents the SVID chain with its TPM-held key to every server that asks.
#[derive(Debug)]
pub struct SvidClientCert(Arc<CertifiedKey>);

impl SvidClientCert {
    /// The SVID `chain` (DER, leaf first) and the TPM key it certifies.
    pub fn new(chain: Vec<Vec<u8>>, key: TpmSigningKey) -> Self {
        let chain = chain.into_iter().map(CertificateDer::from).collect();
        Self(Arc::new(CertifiedKey::new(chain, Arc::new(key))))
    }
}

impl ResolvesClientCert for SvidClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        sigschemes
            .contains(&SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}
