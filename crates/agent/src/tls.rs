//! The node's TLS client identity for renewal: its current SVID and the key the evidence
//! bound. rustls asks for one signature per handshake: TPM2_Sign for a key in the TPM, the
//! signing core for a key in enclave (Nitro) or confidential-VM (SNP) memory.

use std::fmt;
use std::sync::{Arc, Mutex};

use plinth_core::HashAlg;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use plinth_crypto::{Curve, EcdsaSigningKey};

use crate::{Error, TpmCollector, TpmKeyHandle};

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

/// A P-256 key in the agent's memory, signing TLS handshakes through plinth's signing
/// core (ECDSA with SHA-256). On Nitro and SNP this memory is what the evidence vouches
/// for: the enclave or the confidential VM.
pub struct MemorySigningKey(Arc<EcdsaSigningKey>);

impl fmt::Debug for MemorySigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MemorySigningKey").field(&self.0).finish()
    }
}

impl MemorySigningKey {
    /// Wraps `key`.
    ///
    /// # Errors
    /// [`Error::UnexpectedResponse`] for a key that is not on P-256 (the only curve SVID
    /// keys use).
    pub fn new(key: EcdsaSigningKey) -> Result<Self, Error> {
        if key.curve() != Curve::P256 {
            return Err(Error::UnexpectedResponse("an SVID key must be on P-256"));
        }
        Ok(Self(Arc::new(key)))
    }
}

impl SigningKey for MemorySigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        if !offered.contains(&SignatureScheme::ECDSA_NISTP256_SHA256) {
            return None;
        }
        let signer: Box<dyn Signer> = Box::new(MemorySigner(Arc::clone(&self.0)));
        Some(signer)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

#[derive(Debug)]
struct MemorySigner(Arc<EcdsaSigningKey>);

impl Signer for MemorySigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.0
            .sign_der(message)
            .map_err(|e| rustls::Error::General(format!("ECDSA: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP256_SHA256
    }
}

/// Presents the SVID chain with its TPM-held key to every server that asks.
#[derive(Debug)]
pub struct SvidClientCert(Arc<CertifiedKey>);

impl SvidClientCert {
    /// The SVID `chain` (DER, leaf first) and the key it certifies.
    pub fn new(chain: Vec<Vec<u8>>, key: Arc<dyn SigningKey>) -> Self {
        let chain = chain.into_iter().map(CertificateDer::from).collect();
        Self(Arc::new(CertifiedKey::new(chain, key)))
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

#[cfg(test)]
mod tests {
    use plinth_crypto::SystemRandom;

    use super::*;

    #[test]
    fn memory_key_signs_tls_handshakes_with_ecdsa_p256_sha256() {
        let key = EcdsaSigningKey::generate(Curve::P256, &SystemRandom).unwrap();
        let public = key.public_key().clone();
        let signing = MemorySigningKey::new(key).unwrap();
        assert!(signing.choose_scheme(&[SignatureScheme::ED25519]).is_none());
        let signer = signing
            .choose_scheme(&[
                SignatureScheme::ED25519,
                SignatureScheme::ECDSA_NISTP256_SHA256,
            ])
            .unwrap();
        assert_eq!(signer.scheme(), SignatureScheme::ECDSA_NISTP256_SHA256);
        let signature = signer.sign(b"transcript").unwrap();
        public
            .verify(
                plinth_crypto::SignatureScheme::EcdsaDer(HashAlg::Sha256),
                b"transcript",
                &signature,
            )
            .unwrap();
        assert!(
            public
                .verify(
                    plinth_crypto::SignatureScheme::EcdsaDer(HashAlg::Sha256),
                    b"another transcript",
                    &signature,
                )
                .is_err()
        );
    }

    #[test]
    fn rejects_p384_memory_key_with_unexpected_response() {
        let key = EcdsaSigningKey::generate(Curve::P384, &SystemRandom).unwrap();
        assert!(matches!(
            MemorySigningKey::new(key),
            Err(Error::UnexpectedResponse(_))
        ));
    }
}
