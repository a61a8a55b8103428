//! CA keys on a PKCS#11 token (an HSM, or SoftHSM2 in tests), through `cryptoki`.
//!
//! The private key is created on the token as sensitive and non-extractable, so it never
//! exists outside it; the process holds only an object handle, a session, and the PIN
//! (zeroized when dropped). Messages are hashed here and the token signs the digest
//! (`CKM_ECDSA`), which every token that does ECDSA supports.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use plinth_crypto::{Curve, PublicKey};
use zeroize::Zeroizing;

use crate::Error;
use crate::signer::{SignatureAlgorithm, Signer};

/// DER OBJECT IDENTIFIER of secp256r1, as CKA_EC_PARAMS holds it.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER OBJECT IDENTIFIER of secp384r1.
const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// Where a PKCS#11 key lives: the module (shared library), the token's label, and the
/// user PIN.
pub struct Pkcs11Config {
    module: PathBuf,
    token_label: String,
    pin: Zeroizing<String>,
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"<redacted>")
            .finish()
    }
}

impl Pkcs11Config {
    /// A token reached through `module`, found by its label, logged in to with `pin`.
    pub fn new(
        module: impl Into<PathBuf>,
        token_label: impl Into<String>,
        pin: Zeroizing<String>,
    ) -> Self {
        Self {
            module: module.into(),
            token_label: token_label.into(),
            pin,
        }
    }

    /// The module path.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The token label.
    pub fn token_label(&self) -> &str {
        &self.token_label
    }

    fn open_session(&self) -> Result<Session, Error> {
        let context = Pkcs11::new(&self.module).map_err(ck("load module"))?;
        match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(ck("initialize")(e)),
        }
        let slot = self.find_slot(&context)?;
        let session = context.open_rw_session(slot).map_err(ck("open session"))?;
        let pin = AuthPin::from(self.pin.as_str().to_owned());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(e) => Err(ck("login")(e)),
        }
    }

    fn find_slot(&self, context: &Pkcs11) -> Result<Slot, Error> {
        for slot in context.get_slots_with_token().map_err(ck("list slots"))? {
            let info = context.get_token_info(slot).map_err(ck("token info"))?;
            if info.token_initialized() && info.label().trim_end() == self.token_label {
                return Ok(slot);
            }
        }
        Err(Error::Pkcs11TokenNotFound {
            label: self.token_label.clone(),
        })
    }
}

fn ck(operation: &'static str) -> impl Fn(CkError) -> Error {
    move |e| Error::Pkcs11 {
        operation,
        reason: e.to_string(),
    }
}

/// An ECDSA key on a PKCS#11 token.
pub struct Pkcs11Key {
    algorithm: &'static SignatureAlgorithm,
    public: PublicKey,
    token_label: String,
    key_label: String,
    private: ObjectHandle,
    public_handle: ObjectHandle,
    // A PKCS#11 session is not thread-safe; signing takes turns.
    session: Mutex<Session>,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("algorithm", &self.algorithm)
            .field("token", &self.token_label)
            .field("label", &self.key_label)
            .field("public_key", &hex::encode(self.public.spki_der()))
            .finish_non_exhaustive()
    }
}

impl Pkcs11Key {
    /// Generates a key pair on the token under `key_label`: sensitive, non-extractable,
    /// sign-only. With `persistent` false the key is a session object, gone when this
    /// value is dropped (a root key used once, to sign an intermediate).
    ///
    /// # Errors
    /// [`Error::Pkcs11KeyExists`] when the label is taken, [`Error::Pkcs11TokenNotFound`],
    /// [`Error::Pkcs11`].
    pub fn generate(
        config: &Pkcs11Config,
        key_label: &str,
        algorithm: &'static SignatureAlgorithm,
        persistent: bool,
    ) -> Result<Self, Error> {
        let session = config.open_session()?;
        if !find(&session, ObjectClass::PRIVATE_KEY, key_label)?.is_empty()
            || !find(&session, ObjectClass::PUBLIC_KEY, key_label)?.is_empty()
        {
            return Err(Error::Pkcs11KeyExists {
                label: key_label.to_owned(),
            });
        }
        let label = key_label.as_bytes().to_vec();
        let public_template = [
            Attribute::Token(persistent),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(curve_params(algorithm.curve()).to_vec()),
            Attribute::Label(label.clone()),
            Attribute::Id(label.clone()),
        ];
        let private_template = [
            Attribute::Token(persistent),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label.clone()),
            Attribute::Id(label),
        ];
        let (public_handle, private) = session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &public_template,
                &private_template,
            )
            .map_err(ck("generate key pair"))?;
        Self::assemble(
            config,
            key_label,
            algorithm,
            session,
            private,
            public_handle,
        )
    }

    /// Opens the key labelled `key_label` on the token.
    ///
    /// # Errors
    /// [`Error::Pkcs11KeyNotFound`], [`Error::Pkcs11TokenNotFound`],
    /// [`Error::AlgorithmMismatch`] when the key is on another curve, [`Error::Pkcs11`].
    pub fn open(
        config: &Pkcs11Config,
        key_label: &str,
        algorithm: &'static SignatureAlgorithm,
    ) -> Result<Self, Error> {
        let session = config.open_session()?;
        let one = |class| -> Result<ObjectHandle, Error> {
            match find(&session, class, key_label)?.as_slice() {
                [handle] => Ok(*handle),
                [] => Err(Error::Pkcs11KeyNotFound {
                    label: key_label.to_owned(),
                }),
                _ => Err(Error::Pkcs11 {
                    operation: "find key",
                    reason: format!("several objects are labelled {key_label:?}"),
                }),
            }
        };
        let private = one(ObjectClass::PRIVATE_KEY)?;
        let public_handle = one(ObjectClass::PUBLIC_KEY)?;
        Self::assemble(
            config,
            key_label,
            algorithm,
            session,
            private,
            public_handle,
        )
    }

    fn assemble(
        config: &Pkcs11Config,
        key_label: &str,
        algorithm: &'static SignatureAlgorithm,
        session: Session,
        private: ObjectHandle,
        public_handle: ObjectHandle,
    ) -> Result<Self, Error> {
        let attributes = session
            .get_attributes(
                public_handle,
                &[AttributeType::EcParams, AttributeType::EcPoint],
            )
            .map_err(ck("read public key"))?;
        let (mut params, mut point) = (None, None);
        for attribute in attributes {
            match attribute {
                Attribute::EcParams(value) => params = Some(value),
                Attribute::EcPoint(value) => point = Some(value),
                _ => {}
            }
        }
        let bad_key = |reason: &str| Error::Pkcs11 {
            operation: "read public key",
            reason: reason.to_owned(),
        };
        let params = params.ok_or_else(|| bad_key("no CKA_EC_PARAMS"))?;
        let curve = match params.as_slice() {
            P256_PARAMS => Curve::P256,
            P384_PARAMS => Curve::P384,
            _ => return Err(bad_key("the key is not on P-256 or P-384")),
        };
        if curve != algorithm.curve() {
            return Err(Error::AlgorithmMismatch {
                what: format!("PKCS#11 key {key_label:?}"),
                expected: algorithm.name(),
                actual: SignatureAlgorithm::for_curve(curve).name(),
            });
        }
        let point = point.ok_or_else(|| bad_key("no CKA_EC_POINT"))?;
        let public = public_key_from_ec_point(curve, &point)
            .ok_or_else(|| bad_key("CKA_EC_POINT is not an uncompressed point on the curve"))?;
        Ok(Self {
            algorithm,
            public,
            token_label: config.token_label.clone(),
            key_label: key_label.to_owned(),
            private,
            public_handle,
            session: Mutex::new(session),
        })
    }

    /// The key's label on the token.
    pub fn label(&self) -> &str {
        &self.key_label
    }

    /// Deletes the key pair from the token (when its authority is retired).
    ///
    /// # Errors
    /// [`Error::Pkcs11`].
    pub fn destroy(self) -> Result<(), Error> {
        let session = self.session.into_inner().map_err(|_| Error::Pkcs11 {
            operation: "destroy key",
            reason: "session lock poisoned".to_owned(),
        })?;
        session
            .destroy_object(self.private)
            .map_err(ck("destroy private key"))?;
        session
            .destroy_object(self.public_handle)
            .map_err(ck("destroy public key"))
    }
}

impl Signer for Pkcs11Key {
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.algorithm
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let digest = plinth_crypto::digest(self.algorithm.hash(), message);
        let session = self.session.lock().map_err(|_| Error::Signing {
            backend: "pkcs11",
            reason: "session lock poisoned".to_owned(),
        })?;
        let signature = session
            .sign(&Mechanism::Ecdsa, self.private, digest.as_bytes())
            .map_err(ck("sign"))?;
        if signature.len() == 2 * self.algorithm.curve().coordinate_len() {
            Ok(signature)
        } else {
            Err(Error::Signing {
                backend: "pkcs11",
                reason: format!("the token returned a {}-byte signature", signature.len()),
            })
        }
    }
}

fn find(session: &Session, class: ObjectClass, label: &str) -> Result<Vec<ObjectHandle>, Error> {
    session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::KeyType(KeyType::EC),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(ck("find objects"))
}

const fn curve_params(curve: Curve) -> &'static [u8] {
    match curve {
        Curve::P384 => P384_PARAMS,
        _ => P256_PARAMS,
    }
}

/// CKA_EC_POINT is a DER OCTET STRING around the uncompressed point (PKCS#11 2.40); some
/// modules return the bare point. The two differ in length, so both are accepted.
fn public_key_from_ec_point(curve: Curve, value: &[u8]) -> Option<PublicKey> {
    let len = curve.coordinate_len();
    let point_len = 1 + 2 * len;
    let point = match value {
        [0x04, n, rest @ ..] if rest.len() == point_len && usize::from(*n) == point_len => rest,
        _ if value.len() == point_len => value,
        _ => return None,
    };
    let (tag, xy) = point.split_first()?;
    if *tag != 0x04 {
        return None;
    }
    let (x, y) = xy.split_at(len);
    PublicKey::ec(curve, x, y).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_with_and_without_octet_string() {
        let key =
            plinth_crypto::EcdsaSigningKey::generate(Curve::P256, &plinth_crypto::SystemRandom)
                .unwrap();
        let spki = key.public_key().spki_der();
        let point = &spki[spki.len() - 65..];
        let bare = public_key_from_ec_point(Curve::P256, point).unwrap();
        let mut wrapped = vec![0x04, 65];
        wrapped.extend_from_slice(point);
        assert_eq!(
            public_key_from_ec_point(Curve::P256, &wrapped).unwrap(),
            bare
        );
        assert_eq!(&bare, key.public_key());
        assert!(public_key_from_ec_point(Curve::P384, point).is_none());
        assert!(public_key_from_ec_point(Curve::P256, &point[1..]).is_none());
    }

    #[test]
    fn config_debug_hides_the_pin() {
        let config = Pkcs11Config::new("/lib/x.so", "tok", Zeroizing::new("123456".to_owned()));
        assert_eq!(
            format!("{config:?}"),
            r#"Pkcs11Config { module: "/lib/x.so", token_label: "tok", pin: "<redacted>" }"#
        );
    }
}
