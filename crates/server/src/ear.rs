//! EAR attestation results signed by the CA's JWT key, verifiable with the SPIFFE bundle.

use plinth_policy::ear::{EarAlgorithm, EarSigner};

/// The active authority's JWT key, as EAR issuance needs it.
pub struct AuthorityEarSigner<'a>(pub &'a plinth_ca::Authority);

impl EarSigner for AuthorityEarSigner<'_> {
    fn algorithm(&self) -> EarAlgorithm {
        if self.0.jwt_signer().algorithm().jws_name() == "ES384" {
            EarAlgorithm::Es384
        } else {
            EarAlgorithm::Es256
        }
    }

    fn key_id(&self) -> &str {
        self.0.jwt_key_id()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        self.0.jwt_signer().sign(message).map_err(|e| e.to_string())
    }
}
