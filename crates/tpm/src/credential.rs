//! Credential activation, server side (TPM 2.0 Part 1 §24; Part 3 TPM2_MakeCredential).
//!
//! The server seals a fresh secret to the EK, bound to the AK's name. Only the TPM that
//! holds that EK can unseal it, and it will only do so for an object with exactly that
//! name loaded beside it — so a correct answer proves the AK lives in the EK's TPM.

use std::fmt;

use plinth_core::{HashAlg, SecureRandom};
use plinth_crypto::{
    EcdhOutput, Hasher, aes_cfb_encrypt, ecdh_ephemeral, hmac, rsa_oaep_encrypt,
    verify_slices_equal,
};
use zeroize::Zeroizing;

use crate::Error;
use crate::codec::put_tpm2b;
use crate::public::{KeyParameters, Public, Symmetric};
use crate::quote::check_attestation_key;

/// What the server sends the agent: the two inputs of TPM2_ActivateCredential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialChallenge {
    /// Contents of TPM2B_ID_OBJECT (integrity HMAC as TPM2B_DIGEST, then encIdentity).
    pub id_object: Vec<u8>,
    /// Contents of TPM2B_ENCRYPTED_SECRET (RSA-OAEP ciphertext, or a TPMS_ECC_POINT).
    pub encrypted_secret: Vec<u8>,
}

/// The server's half of an activation in progress: the secret it expects back.
/// The secret has no getter and is wiped on drop.
pub struct PendingActivation {
    secret: Zeroizing<Vec<u8>>,
    ak: Public,
}

impl fmt::Debug for PendingActivation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingActivation")
            .field("ak", &hex::encode(self.ak.name()))
            .finish_non_exhaustive()
    }
}

/// An AK proven, by credential activation, to reside in the same TPM as the EK.
/// Only [`PendingActivation::verify`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivatedAk {
    ak: Public,
}

impl ActivatedAk {
    /// The activated attestation key.
    pub const fn public(&self) -> &Public {
        &self.ak
    }
}

/// A commitment to a pending activation's secret and AK, which a server can store (in a
/// database shared by replicas) in place of the secret itself: SHA-256 over a label, the
/// AK's name and the secret. The secret is 16–64 random bytes, so the commitment reveals
/// nothing usable, and only the TPM's answer opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivationCommitment([u8; 32]);

impl ActivationCommitment {
    /// Restores a commitment read back from storage.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The bytes to store.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    fn compute(ak: &Public, secret: &[u8]) -> [u8; 32] {
        let mut hasher = Hasher::new(HashAlg::Sha256);
        hasher.update(b"plinth-activation-v1\0");
        hasher.update(&ak.name());
        hasher.update(secret);
        let mut out = [0; 32];
        out.copy_from_slice(hasher.finish().as_bytes());
        out
    }

    /// Checks, in constant time, that `returned_secret` opens this commitment for `ak`:
    /// the same check as [`PendingActivation::verify`], from stored state.
    ///
    /// # Errors
    /// [`Error::ActivationSecretMismatch`].
    pub fn verify(&self, ak: &Public, returned_secret: &[u8]) -> Result<ActivatedAk, Error> {
        verify_slices_equal(&self.0, &Self::compute(ak, returned_secret))
            .map_err(|_| Error::ActivationSecretMismatch)?;
        Ok(ActivatedAk { ak: ak.clone() })
    }
}

impl PendingActivation {
    /// The commitment to store when the answer may reach another replica.
    pub fn commitment(&self) -> ActivationCommitment {
        ActivationCommitment(ActivationCommitment::compute(&self.ak, &self.secret))
    }

    /// Checks the secret the agent's TPM recovered, in constant time.
    ///
    /// # Errors
    /// [`Error::ActivationSecretMismatch`] when it is not the sealed secret.
    pub fn verify(self, returned_secret: &[u8]) -> Result<ActivatedAk, Error> {
        verify_slices_equal(&self.secret, returned_secret)
            .map_err(|_| Error::ActivationSecretMismatch)?;
        Ok(ActivatedAk { ak: self.ak })
    }
}

/// TPM2_MakeCredential in software: seals a fresh random secret to `ek` for `ak`.
///
/// `ek` must be the public area of an EK already tied to a trusted certificate or allow
/// list. Supported EKs: RSA (OAEP seed encryption) and ECC P-256 or P-384 (ECDH), each a
/// restricted decryption key with AES-CFB protection, as the TCG EK templates (low and
/// high range) define.
///
/// # Errors
/// [`Error::UnusableEk`] for an EK of another shape, [`Error::AkAttributes`] when `ak`
/// is not a restricted signing key, or a provider error.
pub fn make_credential(
    ek: &Public,
    ak: &Public,
    rng: &dyn SecureRandom,
) -> Result<(CredentialChallenge, PendingActivation), Error> {
    check_attestation_key(ak)?;
    let attributes = ek.attributes();
    if !attributes.restricted() || !attributes.decrypt() {
        return Err(Error::UnusableEk("not a restricted decryption key"));
    }
    let key_bytes = match ek.symmetric() {
        Symmetric::AesCfb { key_bits: 128 } => 16,
        Symmetric::AesCfb { key_bits: 256 } => 32,
        _ => {
            return Err(Error::UnusableEk(
                "symmetric protection is not AES-128/256-CFB",
            ));
        }
    };
    let name_alg = ek.name_alg();
    let digest_len = name_alg.output_len();

    let mut secret = Zeroizing::new(vec![0; digest_len]);
    rng.fill(&mut secret)
        .map_err(plinth_crypto::CryptoError::from)?;

    let (seed, encrypted_secret) = match ek.parameters() {
        KeyParameters::Rsa { .. } => {
            let mut seed = Zeroizing::new(vec![0; digest_len]);
            rng.fill(&mut seed)
                .map_err(plinth_crypto::CryptoError::from)?;
            let ciphertext = rsa_oaep_encrypt(&ek.public_key()?, name_alg, &seed, b"IDENTITY\0")?;
            (seed, ciphertext)
        }
        KeyParameters::Ecc { x: ek_x, .. } => {
            let EcdhOutput {
                shared_x,
                ephemeral_x,
                ephemeral_y,
            } = ecdh_ephemeral(&ek.public_key()?, rng)?;
            let seed = kdf_e(
                name_alg,
                &shared_x,
                b"IDENTITY",
                &ephemeral_x,
                ek_x,
                digest_len,
            );
            let mut point = Vec::new();
            put_tpm2b(&mut point, "ECC point x", &ephemeral_x)?;
            put_tpm2b(&mut point, "ECC point y", &ephemeral_y)?;
            (seed, point)
        }
    };

    let name = ak.name();
    let sym_key = kdf_a(name_alg, &seed, b"STORAGE", &name, &[], key_bytes);
    let mut enc_identity = Vec::new();
    put_tpm2b(&mut enc_identity, "credential", &secret)?;
    aes_cfb_encrypt(&sym_key, [0; 16], &mut enc_identity)?;
    let hmac_key = kdf_a(name_alg, &seed, b"INTEGRITY", &[], &[], digest_len);
    let integrity = hmac(name_alg, &hmac_key, &[&enc_identity, &name]);

    let mut id_object = Vec::new();
    put_tpm2b(&mut id_object, "integrityHMAC", &integrity)?;
    id_object.extend_from_slice(&enc_identity);
    Ok((
        CredentialChallenge {
            id_object,
            encrypted_secret,
        },
        PendingActivation {
            secret,
            ak: ak.clone(),
        },
    ))
}

/// KDFa (Part 1 §11.4.10.2): SP 800-108 counter mode with HMAC, `len` bytes.
fn kdf_a(
    alg: HashAlg,
    key: &[u8],
    label: &[u8],
    context_u: &[u8],
    context_v: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let bits = u32::try_from(len.saturating_mul(8))
        .unwrap_or(u32::MAX)
        .to_be_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(len + alg.output_len()));
    let mut counter: u32 = 1;
    while out.len() < len {
        let block = hmac(
            alg,
            key,
            &[
                &counter.to_be_bytes(),
                label,
                &[0],
                context_u,
                context_v,
                &bits,
            ],
        );
        out.extend_from_slice(&block);
        counter = counter.saturating_add(1);
    }
    out.truncate(len);
    out
}

/// KDFe (Part 1 §11.4.10.3): SP 800-56A concatenation KDF over the ECDH secret `z`.
fn kdf_e(
    alg: HashAlg,
    z: &[u8],
    label: &[u8],
    party_u: &[u8],
    party_v: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + alg.output_len()));
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut hasher = Hasher::new(alg);
        for part in [&counter.to_be_bytes()[..], z, label, &[0], party_u, party_v] {
            hasher.update(part);
        }
        out.extend_from_slice(hasher.finish().as_bytes());
        counter = counter.saturating_add(1);
    }
    out.truncate(len);
    out
}
