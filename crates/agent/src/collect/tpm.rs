//! The TPM 2.0 evidence collector, over tss-esapi 7.7 (and so the system tpm2-tss).
//!
//! What it produces is exactly what plinth-tpm verifies: TPMT_PUBLIC areas, TPMS_ATTEST and
//! TPMT_SIGNATURE bytes, the contents of TPM2B credential structures. Before a quote or a
//! certification leaves the collector it goes through plinth-tpm's own verifier, so a
//! marshalling slip or a PCR that moved under the quote fails here, with a local error,
//! rather than at the server.
//!
//! Keys, and how long each stays loaded (a TPM, and swtpm in particular, may hold only
//! three transient objects; every command here flushes what it loaded, error or not):
//! - **EK**: the primary key of the endorsement hierarchy, recreated from the TCG template
//!   that matches the EK certificate found in NV (RSA-2048 preferred, then ECC P-256, then
//!   ECC P-384; RSA-2048 when there is no certificate). Recreation is deterministic, so the
//!   EK is loaded only while a command needs it.
//! - **AK**: a restricted ECC P-256 ECDSA-SHA256 signing key under the EK, created once per
//!   collector. Its blobs are kept, plus a saved context so that a quote need not recreate
//!   the EK; when the saved context no longer loads (TPM reset) it is reloaded under the EK.
//! - **SRK**: the ECC P-256 storage primary of the owner hierarchy (TCG provisioning
//!   template, empty unique), recreated whenever an SVID key is created or loaded.
//! - **SVID key**: an unrestricted ECC P-256 ECDSA-SHA256 signing key under the SRK,
//!   carried as its (SRK-wrapped) blobs in a [`TpmKeyHandle`] and loaded for each use.

use std::fmt;
use std::fs::File;
use std::io::Read as _;
use std::path::Path;
use std::str::FromStr;

use plinth_core::{Digest as PcrDigest, HashAlg};
use plinth_crypto::ecdsa_der_from_scalars;
use plinth_tpm::{PcrValues, Public as VerifiedPublic};
use tss_esapi::Context;
use tss_esapi::abstraction::{AsymmetricAlgorithmSelection, DefaultKey, ak, ek, nv};
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::constants::{CapabilityType, SessionType};
use tss_esapi::handles::{
    AuthHandle, KeyHandle, NvIndexTpmHandle, ObjectHandle, SessionHandle, TpmHandle,
};
use tss_esapi::interface_types::algorithm::{
    HashingAlgorithm, PublicAlgorithm, SignatureSchemeAlgorithm,
};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::{Hierarchy, NvAuth};
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    CapabilityData, Data, Digest, EccPoint, EccScheme, EncryptedSecret, HashScheme,
    HashcheckTicket, IdObject, Nonce, PcrSelectionList, PcrSelectionListBuilder, PcrSlot, Private,
    Public, PublicBuilder, PublicEccParametersBuilder, Signature, SignatureScheme,
    SymmetricDefinition, SymmetricDefinitionObject,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::tss2_esys::{TPM2B_DIGEST, TPMT_TK_HASHCHECK};
use tss_esapi::utils::TpmsContext;
use zeroize::Zeroizing;

use crate::Error;

/// The TCTI of a Linux TPM behind the kernel's resource manager.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";
/// Where Linux exposes the firmware's TCG event log.
pub const DEFAULT_EVENT_LOG: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";
/// The largest event log [`read_event_log`] accepts: 16 MiB.
pub const MAX_EVENT_LOG: u64 = 16 * 1024 * 1024;

/// TPM2_PCR_Read returns at most eight digests (TPML_DIGEST) per call.
const PCRS_PER_READ: usize = 8;
/// Highest PCR index of a PC Client TPM.
const MAX_PCR_INDEX: u8 = 23;
/// Largest qualifying data TPM2B_DATA carries (the largest digest).
const MAX_QUALIFYING_DATA: usize = 64;
/// Step name for flushing a transient object or session.
const FLUSH: &str = "flushing a transient object";

/// The EK templates the collector knows, in order of preference, each with the NV index
/// of its certificate (TCG EK Credential Profile 2.x, §2.2.1.4–5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EkKind {
    Rsa2048,
    EccP256,
    EccP384,
}

impl EkKind {
    const PREFERENCE: [Self; 3] = [Self::Rsa2048, Self::EccP256, Self::EccP384];

    const fn certificate_index(self) -> u32 {
        match self {
            Self::Rsa2048 => 0x01C0_0002,
            Self::EccP256 => 0x01C0_000A,
            Self::EccP384 => 0x01C0_0016,
        }
    }

    const fn selection(self) -> AsymmetricAlgorithmSelection {
        match self {
            Self::Rsa2048 => AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
            Self::EccP256 => AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
            Self::EccP384 => AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP384),
        }
    }

    /// The low-range templates (RSA-2048, P-256) clear userWithAuth: the EK is usable only
    /// through its policy, PolicySecret(endorsement). The high-range ones set it.
    const fn user_with_auth(self) -> bool {
        matches!(self, Self::EccP384)
    }
}

/// The EK found in this TPM.
#[derive(Debug, Clone)]
struct EkInfo {
    kind: EkKind,
    certificate: Option<Vec<u8>>,
    public: Vec<u8>,
}

/// The AK: its blobs (to reload it under the EK), its public area as plinth parses it,
/// and a saved context while one is valid.
struct AkState {
    private: Private,
    public: Public,
    verified: VerifiedPublic,
    saved: Option<TpmsContext>,
}

/// What the agent says in Hello: who this TPM is, and the AK it will attest with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmIdentity {
    /// The EK certificate from NV (DER, possibly followed by NV padding), when the TPM
    /// has one.
    pub ek_certificate: Option<Vec<u8>>,
    /// The EK's TPMT_PUBLIC.
    pub ek_public: Vec<u8>,
    /// The AK's TPMT_PUBLIC.
    pub ak_public: Vec<u8>,
    /// The AK's name (nameAlg ‖ H(TPMT_PUBLIC)) as the TPM reports it.
    pub ak_name: Vec<u8>,
}

/// One PCR value read alongside a quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrValue {
    /// The bank.
    pub bank: HashAlg,
    /// The PCR index.
    pub index: u8,
    /// The value.
    pub value: PcrDigest,
}

/// A TPM2_Quote and the PCR values it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The TPMS_ATTEST the AK signed.
    pub attest: Vec<u8>,
    /// The TPMT_SIGNATURE.
    pub signature: Vec<u8>,
    /// Every selected PCR, by bank then index; their digest is the quote's pcrDigest.
    pub pcrs: Vec<PcrValue>,
}

impl Quote {
    /// The PCR values in the form plinth-tpm's `verify_quote` takes.
    ///
    /// # Errors
    /// A plinth-tpm error when a value does not fit its bank (not for a quote made here).
    pub fn pcr_values(&self) -> Result<PcrValues, plinth_tpm::Error> {
        let mut values = PcrValues::default();
        for pcr in &self.pcrs {
            values.insert(pcr.bank, pcr.index, pcr.value.clone())?;
        }
        Ok(values)
    }
}

/// A key created in the TPM under the SRK, as blobs that reload it there. The private blob
/// is wrapped by the SRK: it is useless outside this TPM. `Debug` shows the public part.
#[derive(Clone)]
pub struct TpmKeyHandle {
    private: Private,
    public: Public,
    verified: VerifiedPublic,
    spki_der: Vec<u8>,
}

impl fmt::Debug for TpmKeyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TpmKeyHandle")
            .field("public", &self.verified)
            .finish_non_exhaustive()
    }
}

impl TpmKeyHandle {
    /// Rebuilds a handle from [`TpmKeyHandle::wrapped_private`] and
    /// [`TpmKeyHandle::public`], for example after an agent restart.
    ///
    /// # Errors
    /// [`Error::InvalidKeyBlob`] when either blob does not decode or the key is not one
    /// the collector can sign with.
    pub fn from_blobs(wrapped_private: &[u8], public: &[u8]) -> Result<Self, Error> {
        let private = Private::try_from(wrapped_private.to_vec())
            .map_err(|_| Error::InvalidKeyBlob("private blob"))?;
        let tss_public =
            Public::unmarshall(public).map_err(|_| Error::InvalidKeyBlob("TPMT_PUBLIC"))?;
        let verified =
            VerifiedPublic::from_tpmt(public).map_err(|_| Error::InvalidKeyBlob("TPMT_PUBLIC"))?;
        let spki_der = verified
            .public_key()
            .map_err(|_| Error::InvalidKeyBlob("public key"))?
            .spki_der()
            .to_vec();
        Ok(Self {
            private,
            public: tss_public,
            verified,
            spki_der,
        })
    }

    /// The key's TPMT_PUBLIC.
    pub fn public(&self) -> &[u8] {
        self.verified.as_bytes()
    }

    /// The key's SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The TPM2B_PRIVATE contents: the private key encrypted and integrity-protected by the
    /// SRK of the TPM that created it, for storing beside [`TpmKeyHandle::public`].
    pub fn wrapped_private(&self) -> &[u8] {
        self.private.value()
    }
}

/// The SVID key as created and certified by the TPM.
#[derive(Debug, Clone)]
pub struct CertifiedKey {
    /// The key's TPMT_PUBLIC (the public area the certification names).
    pub public: Vec<u8>,
    /// The key's SubjectPublicKeyInfo DER: the key an SVID is minted for.
    pub spki_der: Vec<u8>,
    /// The TPMS_ATTEST of TPM2_Certify, signed by the AK.
    pub attest: Vec<u8>,
    /// The AK's TPMT_SIGNATURE over `attest`.
    pub signature: Vec<u8>,
    /// The key, to sign with later.
    pub key: TpmKeyHandle,
}

/// A connection to a TPM and the keys the collector made in it.
pub struct TpmCollector {
    context: Context,
    ek: Option<EkInfo>,
    ak: Option<AkState>,
}

impl fmt::Debug for TpmCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TpmCollector")
            .field("ek", &self.ek.as_ref().map(|ek| ek.kind))
            .field("ak", &self.ak.as_ref().map(|ak| &ak.verified))
            .finish_non_exhaustive()
    }
}

impl TpmCollector {
    /// Connects to the TPM at `tcti`: [`DEFAULT_TCTI`], or for tests
    /// `swtpm:host=127.0.0.1,port=N` (tss-esapi 7.7 ignores `swtpm:path=`).
    ///
    /// # Errors
    /// [`Error::Tcti`] for a string tss-esapi does not understand; [`Error::Tpm`] when the
    /// TPM cannot be reached.
    pub fn open(tcti: &str) -> Result<Self, Error> {
        let conf = TctiNameConf::from_str(tcti).map_err(|source| Error::Tcti {
            tcti: tcti.to_owned(),
            source,
        })?;
        let context = Context::new(conf).map_err(Error::tpm("connecting to the TPM"))?;
        Ok(Self {
            context,
            ek: None,
            ak: None,
        })
    }

    /// The Hello material: the EK certificate (when NV holds one), the EK public area, and
    /// the AK public area and name. The AK is created on the first call and kept.
    ///
    /// # Errors
    /// [`Error::Tpm`] naming the step that failed; [`Error::SelfCheck`] or
    /// [`Error::NameMismatch`] when the AK's public area does not round-trip.
    pub fn identity(&mut self) -> Result<TpmIdentity, Error> {
        let ek = self.ek_info()?;
        let ak = self.ak_public()?;
        Ok(TpmIdentity {
            ek_certificate: ek.certificate,
            ek_public: ek.public,
            ak_public: ak.as_bytes().to_vec(),
            ak_name: ak.name(),
        })
    }

    /// TPM2_ActivateCredential of the server's challenge with the AK and the EK.
    ///
    /// `id_object` and `encrypted_secret` are the contents of TPM2B_ID_OBJECT and
    /// TPM2B_ENCRYPTED_SECRET, without their size prefix (as plinth-tpm's
    /// `CredentialChallenge` carries them). Returns the secret, wiped on drop.
    ///
    /// # Errors
    /// [`Error::Tpm`]: the TPM refuses a credential bound to another AK's name (integrity
    /// check) or sealed to another EK.
    pub fn activate_credential(
        &mut self,
        id_object: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let credential = IdObject::try_from(id_object.to_vec())
            .map_err(Error::tpm("decoding the credential blob"))?;
        let secret = EncryptedSecret::try_from(encrypted_secret.to_vec())
            .map_err(Error::tpm("decoding the encrypted secret"))?;
        let kind = self.ek_info()?.kind;
        let ak = self.load_ak()?;
        let ctx = &mut self.context;
        with_object(ctx, ak.into(), |ctx| {
            let ek = create_ek(ctx, kind)?;
            with_object(ctx, ek.into(), |ctx| {
                let ek_session = if kind.user_with_auth() {
                    AuthSession::Password
                } else {
                    start_endorsement_policy(ctx)?
                };
                let activated = ctx
                    .execute_with_sessions(
                        (Some(AuthSession::Password), Some(ek_session), None),
                        |ctx| ctx.activate_credential(ak, ek, credential, secret),
                    )
                    .map_err(Error::tpm("activating the credential"));
                let flushed = flush_session(ctx, ek_session);
                let digest = activated?;
                flushed?;
                Ok(Zeroizing::new(digest.value().to_vec()))
            })
        })
    }

    /// TPM2_Quote with the AK over `selection` (bank → PCR indices), qualifying data
    /// `nonce`, with the values of every selected PCR.
    ///
    /// The PCRs are read right after the quote, at most eight per TPM2_PCR_Read, and the
    /// quote is verified locally against them; if a PCR changed in between, the quote is
    /// taken once more.
    ///
    /// # Errors
    /// [`Error::InvalidPcrSelection`], [`Error::NonceTooLong`], [`Error::PcrUnavailable`]
    /// for a PCR of an inactive bank, [`Error::PcrsChanged`] when PCRs moved twice,
    /// [`Error::Tpm`] or [`Error::SelfCheck`].
    pub fn quote(
        &mut self,
        selection: &[(HashAlg, Vec<u8>)],
        nonce: &[u8],
    ) -> Result<Quote, Error> {
        let banks = normalize_selection(selection)?;
        let qualifying_data = qualifying_data(nonce)?;
        let list = selection_list(&banks)?;
        let ak_public = self.ak_public()?;
        let ak = self.load_ak()?;
        with_object(&mut self.context, ak.into(), |ctx| {
            for _attempt in 0..2 {
                let (attest, signature) = ctx
                    .execute_with_session(Some(AuthSession::Password), |ctx| {
                        ctx.quote(
                            ak,
                            qualifying_data.clone(),
                            SignatureScheme::Null,
                            list.clone(),
                        )
                    })
                    .map_err(Error::tpm("quoting PCRs"))?;
                let attest = attest
                    .marshall()
                    .map_err(Error::tpm("marshalling TPMS_ATTEST"))?;
                let signature = signature
                    .marshall()
                    .map_err(Error::tpm("marshalling TPMT_SIGNATURE"))?;
                let pcrs = read_pcrs(ctx, &banks)?;
                let quote = Quote {
                    attest,
                    signature,
                    pcrs,
                };
                let values = quote.pcr_values().map_err(|source| Error::SelfCheck {
                    what: "PCR values",
                    source,
                })?;
                match plinth_tpm::verify_quote(
                    &ak_public,
                    &quote.attest,
                    &quote.signature,
                    nonce,
                    &values,
                ) {
                    Ok(_verified) => return Ok(quote),
                    Err(plinth_tpm::Error::PcrDigestMismatch) => {}
                    Err(source) => {
                        return Err(Error::SelfCheck {
                            what: "quote",
                            source,
                        });
                    }
                }
            }
            Err(Error::PcrsChanged)
        })
    }

    /// Creates the node SVID key (ECC P-256, ECDSA-SHA256; fixedTPM, fixedParent,
    /// sensitiveDataOrigin, userWithAuth, sign, not restricted) under the SRK and has the
    /// AK certify it with TPM2_Certify, qualifying data `nonce`.
    ///
    /// # Errors
    /// [`Error::NonceTooLong`], [`Error::Tpm`] naming the step, or [`Error::SelfCheck`]
    /// when plinth-tpm's `verify_certify` rejects the result.
    pub fn create_certified_key(&mut self, nonce: &[u8]) -> Result<CertifiedKey, Error> {
        let qualifying_data = qualifying_data(nonce)?;
        let ak_public = self.ak_public()?;
        let ctx = &mut self.context;
        let srk = create_srk(ctx)?;
        let (private, public, key) = with_object(ctx, srk.into(), |ctx| {
            let created = ctx
                .execute_with_session(Some(AuthSession::Password), |ctx| {
                    ctx.create(srk, svid_key_template()?, None, None, None, None)
                })
                .map_err(Error::tpm("creating the SVID key"))?;
            let key = ctx
                .execute_with_session(Some(AuthSession::Password), |ctx| {
                    ctx.load(srk, created.out_private.clone(), created.out_public.clone())
                })
                .map_err(Error::tpm("loading the SVID key"))?;
            Ok((created.out_private, created.out_public, key))
        })?;
        let (attest, signature) = self.certify(key, &qualifying_data)?;
        let public_bytes = public
            .marshall()
            .map_err(Error::tpm("marshalling the SVID key's TPMT_PUBLIC"))?;
        let verified =
            plinth_tpm::verify_certify(&ak_public, &attest, &signature, &public_bytes, nonce)
                .map_err(|source| Error::SelfCheck {
                    what: "certification of the SVID key",
                    source,
                })?;
        let spki_der = verified.spki_der().to_vec();
        Ok(CertifiedKey {
            public: public_bytes,
            spki_der: spki_der.clone(),
            attest,
            signature,
            key: TpmKeyHandle {
                private,
                public,
                verified: verified.public().clone(),
                spki_der,
            },
        })
    }

    /// Signs a SHA-256 digest with `key` (TPM2_Sign, ECDSA), returning a DER
    /// `Ecdsa-Sig-Value`.
    ///
    /// # Errors
    /// [`Error::Tpm`] naming the step (a key from another TPM fails to load).
    pub fn sign_digest(&mut self, key: &TpmKeyHandle, digest: &[u8; 32]) -> Result<Vec<u8>, Error> {
        let ctx = &mut self.context;
        let srk = create_srk(ctx)?;
        let handle = with_object(ctx, srk.into(), |ctx| {
            ctx.execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.load(srk, key.private.clone(), key.public.clone())
            })
            .map_err(Error::tpm("loading the key"))
        })?;
        with_object(ctx, handle.into(), |ctx| {
            let validation = HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
                tag: TPM2_ST_HASHCHECK,
                hierarchy: TPM2_RH_NULL,
                digest: TPM2B_DIGEST::default(),
            })
            .map_err(Error::tpm("building a null hash-check ticket"))?;
            let digest =
                Digest::try_from(digest.to_vec()).map_err(Error::tpm("building the digest"))?;
            let signature = ctx
                .execute_with_session(Some(AuthSession::Password), |ctx| {
                    ctx.sign(handle, digest, SignatureScheme::Null, validation)
                })
                .map_err(Error::tpm("signing"))?;
            match signature {
                Signature::EcDsa(signature) => Ok(ecdsa_der_from_scalars(
                    signature.signature_r().value(),
                    signature.signature_s().value(),
                )?),
                _ => Err(Error::UnexpectedResponse("the signature is not ECDSA")),
            }
        })
    }

    /// How many transient objects the TPM holds right now (every command here flushes
    /// what it loaded, so outside a call this is what other clients left).
    ///
    /// # Errors
    /// [`Error::Tpm`].
    pub fn loaded_transient_objects(&mut self) -> Result<usize, Error> {
        const TRANSIENT_FIRST: u32 = 0x8000_0000;
        const MAX_HANDLES: u32 = 64;
        let (data, _more) = self
            .context
            .execute_without_session(|ctx| {
                ctx.get_capability(CapabilityType::Handles, TRANSIENT_FIRST, MAX_HANDLES)
            })
            .map_err(Error::tpm("listing transient objects"))?;
        match data {
            CapabilityData::Handles(handles) => Ok(handles
                .iter()
                .filter(|handle| matches!(handle, TpmHandle::Transient(_)))
                .count()),
            _ => Err(Error::UnexpectedResponse(
                "capability data is not a handle list",
            )),
        }
    }

    /// TPM2_Certify of the loaded `key` by the AK; flushes both.
    fn certify(
        &mut self,
        key: KeyHandle,
        qualifying_data: &Data,
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let ak = match self.load_ak() {
            Ok(ak) => ak,
            Err(error) => {
                let _flushed = self.context.flush_context(key.into());
                return Err(error);
            }
        };
        let ctx = &mut self.context;
        with_object(ctx, key.into(), |ctx| {
            with_object(ctx, ak.into(), |ctx| {
                let (attest, signature) = ctx
                    .execute_with_sessions(
                        (
                            Some(AuthSession::Password),
                            Some(AuthSession::Password),
                            None,
                        ),
                        |ctx| {
                            ctx.certify(
                                key.into(),
                                ak,
                                qualifying_data.clone(),
                                SignatureScheme::Null,
                            )
                        },
                    )
                    .map_err(Error::tpm("certifying the SVID key with the AK"))?;
                Ok((
                    attest
                        .marshall()
                        .map_err(Error::tpm("marshalling TPMS_ATTEST"))?,
                    signature
                        .marshall()
                        .map_err(Error::tpm("marshalling TPMT_SIGNATURE"))?,
                ))
            })
        })
    }

    /// Finds the EK certificate and recreates the matching EK (once per collector).
    fn ek_info(&mut self) -> Result<EkInfo, Error> {
        if let Some(ek) = &self.ek {
            return Ok(ek.clone());
        }
        let ctx = &mut self.context;
        let mut found = None;
        for kind in EkKind::PREFERENCE {
            if let Some(certificate) = read_nv_if_present(ctx, kind.certificate_index())? {
                found = Some((kind, Some(certificate)));
                break;
            }
        }
        let (kind, certificate) = found.unwrap_or((EkKind::Rsa2048, None));
        let handle = create_ek(ctx, kind)?;
        let (_public, public, _name) = with_object(ctx, handle.into(), |ctx| {
            read_public(ctx, handle, "reading the EK public area")
        })?;
        let ek = EkInfo {
            kind,
            certificate,
            public,
        };
        self.ek = Some(ek.clone());
        Ok(ek)
    }

    /// The AK's public area, creating the AK on first use.
    fn ak_public(&mut self) -> Result<VerifiedPublic, Error> {
        if let Some(ak) = &self.ak {
            return Ok(ak.verified.clone());
        }
        let kind = self.ek_info()?.kind;
        let ctx = &mut self.context;
        let ek = create_ek(ctx, kind)?;
        let (created, loaded) = with_object(ctx, ek.into(), |ctx| {
            let created = ak::create_ak(
                ctx,
                ek,
                HashingAlgorithm::Sha256,
                SignatureSchemeAlgorithm::EcDsa,
                None,
                DefaultKey,
            )
            .map_err(Error::tpm("creating the AK"))?;
            let loaded = ak::load_ak(
                ctx,
                ek,
                None,
                created.out_private.clone(),
                created.out_public.clone(),
            )
            .map_err(Error::tpm("loading the AK"))?;
            Ok((created, loaded))
        })?;
        let state = with_object(ctx, loaded.into(), |ctx| {
            let (public, bytes, name) = read_public(ctx, loaded, "reading the AK public area")?;
            let verified =
                VerifiedPublic::from_tpmt(&bytes).map_err(|source| Error::SelfCheck {
                    what: "AK public area",
                    source,
                })?;
            if verified.name() != name {
                return Err(Error::NameMismatch("AK"));
            }
            let saved = ctx
                .context_save(loaded.into())
                .map_err(Error::tpm("saving the AK context"))?;
            Ok(AkState {
                private: created.out_private,
                public,
                verified,
                saved: Some(saved),
            })
        })?;
        let verified = state.verified.clone();
        self.ak = Some(state);
        Ok(verified)
    }

    /// Loads the AK: from its saved context, or (when that fails, as after a TPM reset)
    /// under a recreated EK. The caller flushes it.
    fn load_ak(&mut self) -> Result<KeyHandle, Error> {
        let _public = self.ak_public()?;
        let kind = self.ek_info()?.kind;
        let Self {
            context: ctx,
            ak: Some(ak),
            ..
        } = self
        else {
            return Err(Error::UnexpectedResponse("no AK"));
        };
        if let Some(saved) = ak.saved.clone() {
            if let Ok(handle) = ctx.context_load(saved) {
                return Ok(KeyHandle::from(handle));
            }
            ak.saved = None;
        }
        let ek = create_ek(ctx, kind)?;
        let handle = with_object(ctx, ek.into(), |ctx| {
            ak::load_ak(ctx, ek, None, ak.private.clone(), ak.public.clone())
                .map_err(Error::tpm("loading the AK"))
        })?;
        // Only an optimisation: without a saved context the next use reloads under the EK.
        ak.saved = ctx.context_save(handle.into()).ok();
        Ok(handle)
    }
}

/// Runs `f`, then flushes `handle` whatever `f` returned.
fn with_object<T>(
    ctx: &mut Context,
    handle: ObjectHandle,
    f: impl FnOnce(&mut Context) -> Result<T, Error>,
) -> Result<T, Error> {
    let result = f(ctx);
    let flushed = ctx.flush_context(handle).map_err(Error::tpm(FLUSH));
    let value = result?;
    flushed?;
    Ok(value)
}

/// Flushes a policy or HMAC session (a password session is not a TPM object).
fn flush_session(ctx: &mut Context, session: AuthSession) -> Result<(), Error> {
    if session == AuthSession::Password {
        return Ok(());
    }
    ctx.flush_context(SessionHandle::from(session).into())
        .map_err(Error::tpm(FLUSH))
}

/// A policy session satisfying the low-range EK policy: PolicySecret(TPM_RH_ENDORSEMENT).
fn start_endorsement_policy(ctx: &mut Context) -> Result<AuthSession, Error> {
    let session = ctx
        .start_auth_session(
            None,
            None,
            None,
            SessionType::Policy,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )
        .map_err(Error::tpm("starting the EK policy session"))?
        .ok_or(Error::UnexpectedResponse("no policy session"))?;
    let applied = PolicySession::try_from(session)
        .and_then(|policy| {
            ctx.execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.policy_secret(
                    policy,
                    AuthHandle::Endorsement,
                    Nonce::default(),
                    Digest::default(),
                    Nonce::default(),
                    None,
                )
            })
        })
        .map_err(Error::tpm("PolicySecret(endorsement) for the EK"));
    if let Err(error) = applied {
        let _flushed = flush_session(ctx, session);
        return Err(error);
    }
    Ok(session)
}

/// Recreates the EK of `kind` from its TCG template.
fn create_ek(ctx: &mut Context, kind: EkKind) -> Result<KeyHandle, Error> {
    ek::create_ek_object_2(ctx, kind.selection(), DefaultKey).map_err(Error::tpm("creating the EK"))
}

/// Recreates the SRK: the TCG provisioning template for an ECC P-256 storage key.
fn create_srk(ctx: &mut Context) -> Result<KeyHandle, Error> {
    let template = srk_template().map_err(Error::tpm("building the SRK template"))?;
    ctx.execute_with_session(Some(AuthSession::Password), |ctx| {
        ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
    })
    .map(|created| created.key_handle)
    .map_err(Error::tpm("creating the SRK"))
}

fn srk_template() -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_restricted_decryption_key(
                SymmetricDefinitionObject::AES_128_CFB,
                EccCurve::NistP256,
            )
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

fn svid_key_template() -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_sign_encrypt(true)
        .with_decrypt(false)
        .with_restricted(false)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_unrestricted_signing_key(
                EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
                EccCurve::NistP256,
            )
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// The public area of a loaded key: tss-esapi's form, its marshalled TPMT_PUBLIC, and the
/// name the TPM reports.
fn read_public(
    ctx: &mut Context,
    key: KeyHandle,
    step: &'static str,
) -> Result<(Public, Vec<u8>, Vec<u8>), Error> {
    let (public, name, _qualified_name) = ctx
        .execute_without_session(|ctx| ctx.read_public(key))
        .map_err(Error::tpm(step))?;
    let bytes = public
        .marshall()
        .map_err(Error::tpm("marshalling TPMT_PUBLIC"))?;
    Ok((public, bytes, name.value().to_vec()))
}

/// Reads the NV index `index` if it is defined.
fn read_nv_if_present(ctx: &mut Context, index: u32) -> Result<Option<Vec<u8>>, Error> {
    let (data, _more) = ctx
        .execute_without_session(|ctx| ctx.get_capability(CapabilityType::Handles, index, 1))
        .map_err(Error::tpm("listing NV indices"))?;
    let CapabilityData::Handles(handles) = data else {
        return Err(Error::UnexpectedResponse(
            "capability data is not a handle list",
        ));
    };
    let present = handles
        .first()
        .is_some_and(|handle| u32::from(*handle) == index);
    if !present {
        return Ok(None);
    }
    let nv_index = NvIndexTpmHandle::new(index).map_err(Error::tpm("naming the NV index"))?;
    // tss-esapi's NV reader closes the ESYS handle of the index when it is done (ESYS hands
    // out one handle per TPM handle), so it is not closed again here.
    let object = ctx
        .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::NvIndex(nv_index)))
        .map_err(Error::tpm("opening the EK certificate NV index"))?;
    let certificate = ctx
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            nv::read_full(ctx, NvAuth::NvIndex(object.into()), nv_index)
        })
        .map_err(Error::tpm("reading the EK certificate"))?;
    Ok(Some(certificate))
}

/// Checks a selection and puts it in canonical form: banks in order, each listed once,
/// indices ascending and unique, empty banks dropped.
fn normalize_selection(selection: &[(HashAlg, Vec<u8>)]) -> Result<Vec<(HashAlg, Vec<u8>)>, Error> {
    let mut banks: Vec<(HashAlg, Vec<u8>)> = Vec::new();
    for (position, (bank, indices)) in selection.iter().enumerate() {
        if selection
            .iter()
            .skip(position.saturating_add(1))
            .any(|(other, _)| other == bank)
        {
            return Err(Error::InvalidPcrSelection("a bank is listed twice"));
        }
        if indices.iter().any(|&index| index > MAX_PCR_INDEX) {
            return Err(Error::InvalidPcrSelection("PCR index above 23"));
        }
        let mut indices = indices.clone();
        indices.sort_unstable();
        indices.dedup();
        if !indices.is_empty() {
            banks.push((*bank, indices));
        }
    }
    if banks.is_empty() {
        return Err(Error::InvalidPcrSelection("no PCR selected"));
    }
    banks.sort_by_key(|(bank, _)| *bank);
    Ok(banks)
}

const fn hashing_algorithm(bank: HashAlg) -> HashingAlgorithm {
    match bank {
        HashAlg::Sha1 => HashingAlgorithm::Sha1,
        HashAlg::Sha256 => HashingAlgorithm::Sha256,
        HashAlg::Sha384 => HashingAlgorithm::Sha384,
        HashAlg::Sha512 => HashingAlgorithm::Sha512,
    }
}

fn pcr_slot(index: u8) -> Result<PcrSlot, Error> {
    1_u32
        .checked_shl(u32::from(index))
        .ok_or(Error::InvalidPcrSelection("PCR index above 23"))
        .and_then(|bit| {
            PcrSlot::try_from(bit).map_err(|_| Error::InvalidPcrSelection("PCR index above 23"))
        })
}

fn slot_index(slot: PcrSlot) -> Result<u8, Error> {
    u8::try_from(u32::from(slot).trailing_zeros())
        .map_err(|_| Error::UnexpectedResponse("PCR slot out of range"))
}

/// One TPML_PCR_SELECTION for a normalized selection.
fn selection_list(banks: &[(HashAlg, Vec<u8>)]) -> Result<PcrSelectionList, Error> {
    let mut builder = PcrSelectionListBuilder::new();
    for (bank, indices) in banks {
        let slots = indices
            .iter()
            .map(|&index| pcr_slot(index))
            .collect::<Result<Vec<_>, _>>()?;
        builder = builder.with_selection(hashing_algorithm(*bank), &slots);
    }
    builder
        .build()
        .map_err(Error::tpm("building the PCR selection"))
}

/// Reads every PCR of a normalized selection, one bank and at most eight PCRs at a time.
fn read_pcrs(ctx: &mut Context, banks: &[(HashAlg, Vec<u8>)]) -> Result<Vec<PcrValue>, Error> {
    let mut values = Vec::new();
    for (bank, indices) in banks {
        for chunk in indices.chunks(PCRS_PER_READ) {
            let list = selection_list(&[(*bank, chunk.to_vec())])?;
            let (_update_counter, read, digests) = ctx
                .execute_without_session(|ctx| ctx.pcr_read(list))
                .map_err(Error::tpm("reading PCRs"))?;
            let mut got = Vec::new();
            for selection in read.get_selections() {
                if selection.hashing_algorithm() == hashing_algorithm(*bank) {
                    for slot in selection.selected() {
                        got.push(slot_index(slot)?);
                    }
                }
            }
            got.sort_unstable();
            if let Some(&index) = chunk.iter().find(|index| !got.contains(index)) {
                return Err(Error::PcrUnavailable { bank: *bank, index });
            }
            if got.len() != chunk.len() || digests.value().len() != chunk.len() {
                return Err(Error::UnexpectedResponse(
                    "PCR_Read returned other PCRs than asked",
                ));
            }
            for (&index, digest) in chunk.iter().zip(digests.value()) {
                let value = PcrDigest::new(*bank, digest.value())
                    .map_err(|_| Error::UnexpectedResponse("PCR value of the wrong length"))?;
                values.push(PcrValue {
                    bank: *bank,
                    index,
                    value,
                });
            }
        }
    }
    Ok(values)
}

fn qualifying_data(nonce: &[u8]) -> Result<Data, Error> {
    if nonce.len() > MAX_QUALIFYING_DATA {
        return Err(Error::NonceTooLong {
            len: nonce.len(),
            max: MAX_QUALIFYING_DATA,
        });
    }
    Data::try_from(nonce.to_vec()).map_err(Error::tpm("building the qualifying data"))
}

/// Reads the firmware's TCG event log (see [`DEFAULT_EVENT_LOG`]). The file is read up to
/// [`MAX_EVENT_LOG`] bytes (securityfs reports no size, so the budget is enforced while
/// reading). The bytes are not parsed here: the server verifies them against the quote.
///
/// # Errors
/// [`Error::EventLogRead`]; [`Error::EventLogTooLarge`] for a file over the budget.
pub fn read_event_log(path: &Path) -> Result<Vec<u8>, Error> {
    let read_error = |source| Error::EventLogRead {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let mut log = Vec::new();
    let _read = file
        .take(MAX_EVENT_LOG.saturating_add(1))
        .read_to_end(&mut log)
        .map_err(read_error)?;
    if u64::try_from(log.len()).map_or(true, |len| len > MAX_EVENT_LOG) {
        return Err(Error::EventLogTooLarge {
            path: path.to_owned(),
            max: MAX_EVENT_LOG,
        });
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_is_sorted_deduplicated_and_checked() {
        let banks = normalize_selection(&[
            (HashAlg::Sha256, vec![16, 0, 7, 7]),
            (HashAlg::Sha1, vec![]),
            (HashAlg::Sha1, vec![]),
        ]);
        assert!(matches!(banks, Err(Error::InvalidPcrSelection(_))));
        let banks = normalize_selection(&[
            (HashAlg::Sha384, vec![3]),
            (HashAlg::Sha256, vec![16, 0, 7, 7]),
            (HashAlg::Sha1, vec![]),
        ])
        .unwrap();
        assert_eq!(
            banks,
            vec![
                (HashAlg::Sha256, vec![0, 7, 16]),
                (HashAlg::Sha384, vec![3])
            ]
        );
    }

    #[test]
    fn rejects_pcr_above_23_with_invalid_pcr_selection() {
        assert!(matches!(
            normalize_selection(&[(HashAlg::Sha256, vec![24])]),
            Err(Error::InvalidPcrSelection(_))
        ));
        assert!(matches!(
            normalize_selection(&[(HashAlg::Sha256, vec![])]),
            Err(Error::InvalidPcrSelection("no PCR selected"))
        ));
    }

    /// The async agent moves the collector into `spawn_blocking`.
    #[test]
    fn collector_and_results_are_send() {
        fn send<T: Send + 'static>() {}
        send::<TpmCollector>();
        send::<TpmKeyHandle>();
        send::<CertifiedKey>();
        send::<Quote>();
        send::<Error>();
    }

    #[test]
    fn pcr_slots_round_trip() {
        for index in 0..=MAX_PCR_INDEX {
            assert_eq!(slot_index(pcr_slot(index).unwrap()).unwrap(), index);
        }
    }

    #[test]
    fn rejects_long_nonce_with_nonce_too_long() {
        assert!(qualifying_data(&[0; 64]).is_ok());
        assert!(matches!(
            qualifying_data(&[0; 65]),
            Err(Error::NonceTooLong { len: 65, max: 64 })
        ));
    }

    #[test]
    fn templates_build() {
        let srk = srk_template().unwrap().marshall().unwrap();
        let srk = VerifiedPublic::from_tpmt(&srk).unwrap();
        assert!(srk.attributes().restricted() && srk.attributes().decrypt());
        let key = svid_key_template().unwrap().marshall().unwrap();
        let key = VerifiedPublic::from_tpmt(&key).unwrap();
        let attributes = key.attributes();
        assert!(attributes.sign() && !attributes.restricted());
        assert!(attributes.fixed_tpm() && attributes.fixed_parent());
        assert!(attributes.sensitive_data_origin());
    }
}
