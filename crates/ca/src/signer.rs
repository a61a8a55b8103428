//! The signing core: algorithms as constants, the [`Signer`] trait, and software keys.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use plinth_core::{HashAlg, SecureRandom};
use plinth_crypto::{CryptoError, Curve, EcdsaSigningKey, PublicKey, SignatureScheme};
use zeroize::Zeroizing;

use crate::Error;

/// A signature algorithm of the signing core. Each is a constant ([`ECDSA_P256_SHA256`],
/// [`ECDSA_P384_SHA384`]); nothing chooses an algorithm from untrusted input.
#[derive(PartialEq, Eq)]
pub struct SignatureAlgorithm {
    name: &'static str,
    curve: Curve,
    hash: HashAlg,
    jws: &'static str,
}

/// ECDSA on P-256 with SHA-256 (JWS `ES256`): the default.
pub static ECDSA_P256_SHA256: SignatureAlgorithm = SignatureAlgorithm {
    name: "ecdsa-p256-sha256",
    curve: Curve::P256,
    hash: HashAlg::Sha256,
    jws: "ES256",
};

/// ECDSA on P-384 with SHA-384 (JWS `ES384`).
pub static ECDSA_P384_SHA384: SignatureAlgorithm = SignatureAlgorithm {
    name: "ecdsa-p384-sha384",
    curve: Curve::P384,
    hash: HashAlg::Sha384,
    jws: "ES384",
};

impl SignatureAlgorithm {
    /// Looks an algorithm up by its [`SignatureAlgorithm::name`] (configuration files,
    /// command line).
    pub fn from_name(name: &str) -> Option<&'static Self> {
        [&ECDSA_P256_SHA256, &ECDSA_P384_SHA384]
            .into_iter()
            .find(|alg| alg.name == name)
    }

    /// The name, e.g. `ecdsa-p256-sha256`.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The curve.
    pub const fn curve(&self) -> Curve {
        self.curve
    }

    /// The hash applied to the message.
    pub const fn hash(&self) -> HashAlg {
        self.hash
    }

    /// The JWS `alg` name (`ES256`, `ES384`).
    pub const fn jws_name(&self) -> &'static str {
        self.jws
    }

    /// The scheme a [`Signer`]'s output verifies under: ECDSA with fixed-length `r ‖ s`.
    pub const fn scheme(&self) -> SignatureScheme {
        SignatureScheme::EcdsaFixed(self.hash)
    }

    pub(crate) fn rcgen(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.curve {
            Curve::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            _ => &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }

    /// The algorithm for keys on `curve`.
    pub(crate) fn for_curve(curve: Curve) -> &'static Self {
        match curve {
            Curve::P384 => &ECDSA_P384_SHA384,
            _ => &ECDSA_P256_SHA256,
        }
    }
}

impl fmt::Debug for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A private key that signs for the CA and never lets the key out.
///
/// Implementations hold the key (in memory, on a PKCS#11 token, in a TPM) and offer no
/// way to read it: no getter, no serialization, and a `Debug` that shows only the public
/// key. The CA checks every signer against the certificate it signs for when it starts
/// ([`check_signer`]).
///
/// The trait is open so that other key stores (a TPM-held CA key) can plug in.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The algorithm this key signs with.
    fn algorithm(&self) -> &'static SignatureAlgorithm;

    /// The public key.
    fn public_key(&self) -> &PublicKey;

    /// Signs `message`: hashes it with the algorithm's hash, and returns the ECDSA
    /// signature as fixed-length big-endian `r ‖ s` ([`SignatureAlgorithm::scheme`]).
    ///
    /// # Errors
    /// [`Error::Signing`], [`Error::Pkcs11`] or [`Error::Crypto`] when the backend fails.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error>;
}

/// The message signed and verified to show a signer holds the key it claims.
const PROBE: &[u8] = b"plinth-ca signer self-test";

/// Checks that `signer` holds the private key for `expected_spki` (a certificate's
/// SubjectPublicKeyInfo): the public keys must be equal, and a fresh signature must
/// verify with the expected key.
///
/// # Errors
/// [`Error::KeyDoesNotMatchCertificate`] naming `what`, or the signer's own error.
pub fn check_signer(signer: &dyn Signer, expected_spki: &[u8], what: &str) -> Result<(), Error> {
    let mismatch = || Error::KeyDoesNotMatchCertificate {
        what: what.to_owned(),
    };
    plinth_crypto::verify_slices_equal(signer.public_key().spki_der(), expected_spki)
        .map_err(|_| mismatch())?;
    let expected = PublicKey::from_spki_der(expected_spki).map_err(|_| mismatch())?;
    let signature = signer.sign(PROBE)?;
    expected
        .verify(signer.algorithm().scheme(), PROBE, &signature)
        .map_err(|_| mismatch())
}

/// An ECDSA key held in this process's memory (by aws-lc-rs), stored on disk as an
/// unencrypted PKCS#8 file readable only by its owner.
///
/// The private key is never returned. It is written once, when the key is created
/// ([`SoftwareKey::create_file`]); AWS-LC zeroizes its memory when the key is dropped,
/// and every buffer that held the PKCS#8 bytes is zeroized too.
pub struct SoftwareKey {
    algorithm: &'static SignatureAlgorithm,
    key: EcdsaSigningKey,
}

impl fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareKey")
            .field("algorithm", &self.algorithm)
            .field("public_key", &hex::encode(self.key.public_key().spki_der()))
            .finish()
    }
}

impl SoftwareKey {
    /// Generates a key in memory, its scalar drawn from `rng`. It lives as long as the
    /// value does (for a root key used once, to sign an intermediate).
    ///
    /// # Errors
    /// [`Error::Crypto`] when generation fails.
    pub fn generate(
        algorithm: &'static SignatureAlgorithm,
        rng: &dyn SecureRandom,
    ) -> Result<Self, Error> {
        Ok(Self {
            algorithm,
            key: EcdsaSigningKey::generate(algorithm.curve, rng)?,
        })
    }

    /// Generates a key and writes it to a new file at `path` with mode 0600 (the file
    /// must not exist).
    ///
    /// # Errors
    /// [`Error::AlreadyExists`], [`Error::Io`], or [`Error::Crypto`].
    pub fn create_file(
        path: &Path,
        algorithm: &'static SignatureAlgorithm,
        rng: &dyn SecureRandom,
    ) -> Result<Self, Error> {
        let key = Self::generate(algorithm, rng)?;
        let pkcs8 = key.key.to_pkcs8()?;
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::AlreadyExists {
                    path: path.to_owned(),
                },
                _ => io(e),
            })?;
        // The umask can only remove bits; make sure of the mode whatever it is.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
        file.write_all(&pkcs8).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(key)
    }

    /// Loads a key for `algorithm` from `path`: DER PKCS#8, or PEM `PRIVATE KEY`. The file
    /// must be accessible to its owner only (no group or other permission bits).
    ///
    /// # Errors
    /// [`Error::KeyFilePermissions`], [`Error::KeyRejected`] or [`Error::Io`].
    pub fn load_file(path: &Path, algorithm: &'static SignatureAlgorithm) -> Result<Self, Error> {
        let pkcs8 = read_private_key_file(path)?;
        EcdsaSigningKey::from_pkcs8(algorithm.curve, &pkcs8)
            .map(|key| Self { algorithm, key })
            .map_err(|_| Error::KeyRejected {
                path: path.to_owned(),
                algorithm: algorithm.name,
            })
    }

    /// Loads a P-256 or P-384 key from `path` (an upstream CA's key, whose algorithm is
    /// the upstream's choice), with the checks of [`SoftwareKey::load_file`].
    ///
    /// # Errors
    /// As [`SoftwareKey::load_file`].
    pub fn load_file_any_curve(path: &Path) -> Result<Self, Error> {
        let pkcs8 = read_private_key_file(path)?;
        [Curve::P256, Curve::P384]
            .into_iter()
            .find_map(|curve| {
                EcdsaSigningKey::from_pkcs8(curve, &pkcs8)
                    .ok()
                    .map(|key| Self {
                        algorithm: SignatureAlgorithm::for_curve(curve),
                        key,
                    })
            })
            .ok_or_else(|| Error::KeyRejected {
                path: path.to_owned(),
                algorithm: "P-256 or P-384",
            })
    }

    /// Loads a key from PKCS#8 DER held in memory.
    ///
    /// # Errors
    /// [`Error::Crypto`] ([`CryptoError::KeyRejected`]) when it is not such a key.
    pub fn from_pkcs8(algorithm: &'static SignatureAlgorithm, pkcs8: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            algorithm,
            key: EcdsaSigningKey::from_pkcs8(algorithm.curve, pkcs8)?,
        })
    }
}

impl Signer for SoftwareKey {
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.algorithm
    }

    fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.key
            .sign(message)
            .map_err(|e: CryptoError| Error::Signing {
                backend: "software",
                reason: e.to_string(),
            })
    }
}

/// The most bytes a private key file may have (a PEM P-384 PKCS#8 key is under 400).
const MAX_KEY_FILE_LEN: usize = 16 * 1024;

/// Reads a private key file, refusing one that group or others can access, into a
/// zeroizing buffer; decodes PEM when the file is PEM.
fn read_private_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // Check the mode of the file actually opened (no race with a rename).
    let metadata = file.metadata().map_err(io)?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::KeyFilePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    // Allocated once, large enough that reading never moves (and so copies) the bytes.
    let mut contents = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN + 64));
    let limit = u64::try_from(MAX_KEY_FILE_LEN + 1).unwrap_or(u64::MAX);
    let _read = file.take(limit).read_to_end(&mut contents).map_err(io)?;
    let rejected = || Error::KeyRejected {
        path: PathBuf::from(path),
        algorithm: "PKCS#8",
    };
    if contents.len() > MAX_KEY_FILE_LEN {
        return Err(rejected());
    }
    if contents.starts_with(b"-----BEGIN") {
        crate::pem::decode_private_key(&contents).ok_or_else(rejected)
    } else {
        Ok(contents)
    }
}
