//! The CA directory: state, certificates and (software) keys on disk.
//!
//! ```text
//! <dir>/                      0700
//!   ca.json                   trust domain, algorithm, key backend, lifetimes, bundle
//!                             sequence, authorities and their rotation states
//!   authorities/<id>/         0700, one per authority not retired
//!     chain.pem               signing certificate first, trust anchor last
//!     x509.key, jwt.key       PKCS#8 DER, 0600 (software keys only; PKCS#11 keys stay
//!                             on the token, labelled "plinth <trust domain> <id> x509|jwt")
//!   retired/<id>/chain.pem    retired authorities' certificates, kept for audit
//! ```
//!
//! Opening the directory loads every key and checks it against its certificate; a key
//! file that group or others can access is refused.

use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use plinth_core::{SecureRandom, TrustDomain, UnixTime};
use plinth_x509::Certificate;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::authority::{self, Authority, AuthorityState, AuthorityTimes, Plan, Upstream};
use crate::pkcs11::{Pkcs11Config, Pkcs11Key};
use crate::signer::{SignatureAlgorithm, Signer, SoftwareKey};
use crate::{Ca, CaConfig, Error, pem};

const STATE_FILE: &str = "ca.json";
const STATE_VERSION: u32 = 1;
/// The largest state file read.
const MAX_STATE_LEN: u64 = 1 << 20;
/// The largest certificate file read.
const MAX_CHAIN_LEN: u64 = 1 << 20;

/// Where the CA's keys live.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyBackend {
    /// PKCS#8 files in the CA directory, mode 0600.
    Software,
    /// A PKCS#11 token.
    Pkcs11 {
        /// The PKCS#11 module (shared library).
        module: PathBuf,
        /// The token's label.
        token_label: String,
    },
}

/// How to create a CA.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InitOptions {
    /// The trust domain.
    pub trust_domain: TrustDomain,
    /// The algorithm of every CA key (default [`crate::ECDSA_P256_SHA256`]).
    pub algorithm: &'static SignatureAlgorithm,
    /// Where keys live (default software).
    pub backend: KeyBackend,
    /// Lifetime of each authority's certificates (default 365 days).
    pub ca_ttl: Duration,
    /// SVID lifetimes and bundle settings.
    pub config: CaConfig,
    /// Whether an intermediate below the root (or below the CA the upstream signs) signs
    /// the SVIDs. The key above it is used once, to sign the intermediate, and is not kept.
    pub intermediate: bool,
}

impl InitOptions {
    /// The defaults for `trust_domain`.
    pub fn new(trust_domain: TrustDomain) -> Self {
        Self {
            trust_domain,
            algorithm: &crate::ECDSA_P256_SHA256,
            backend: KeyBackend::Software,
            ca_ttl: Duration::from_secs(365 * 24 * 3600),
            config: CaConfig::default(),
            intermediate: false,
        }
    }

    fn check(&self) -> Result<(), Error> {
        let config = &self.config;
        let second = Duration::from_secs(1);
        let reason = if config.x509_svid_ttl < second || config.jwt_svid_ttl < second {
            "SVID lifetimes must be at least one second"
        } else if config.x509_svid_ttl > config.max_svid_ttl
            || config.jwt_svid_ttl > config.max_svid_ttl
        {
            "a default SVID lifetime exceeds the maximum"
        } else if self.ca_ttl < second {
            "the CA lifetime must be at least one second"
        } else {
            return Ok(());
        };
        Err(Error::InvalidConfig { reason })
    }
}

/// An upstream CA, given as files: its certificate chain (PEM or DER: the upstream CA's
/// certificate first, its self-signed root last) and its PKCS#8 key (mode 0600).
#[derive(Debug, Clone)]
pub struct UpstreamFiles {
    /// The certificate chain.
    pub certificates: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum BackendState {
    Software,
    Pkcs11 {
        module: PathBuf,
        token_label: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorityRecord {
    id: u32,
    state: String,
    prepared_at_ms: u64,
    activated_at_ms: Option<u64>,
    superseded_at_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    version: u32,
    trust_domain: String,
    algorithm: String,
    backend: BackendState,
    intermediate: bool,
    upstream: bool,
    ca_ttl_secs: u64,
    x509_svid_ttl_secs: u64,
    jwt_svid_ttl_secs: u64,
    max_svid_ttl_secs: u64,
    refresh_hint_secs: u64,
    sequence: u64,
    authorities: Vec<AuthorityRecord>,
}

/// An authority's X.509 and JWT signers.
type SignerPair = (Box<dyn Signer>, Box<dyn Signer>);

/// How the CA directory is set up: where things are and how keys are made.
struct Settings {
    dir: PathBuf,
    algorithm: &'static SignatureAlgorithm,
    backend: KeyBackend,
    ca_ttl: Duration,
    intermediate: bool,
    upstream: bool,
    pin: Option<Zeroizing<String>>,
}

/// A CA kept in a directory (see the module documentation).
pub struct CaDir {
    settings: Settings,
    ca: Ca,
}

impl std::fmt::Debug for CaDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaDir")
            .field("dir", &self.settings.dir)
            .field("backend", &self.settings.backend)
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn create_private_dir(path: &Path) -> Result<(), Error> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io(path))
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    let mut contents = Vec::new();
    let _read = fs::File::open(path)
        .map_err(io(path))?
        .take(limit)
        .read_to_end(&mut contents)
        .map_err(io(path))?;
    Ok(contents)
}

/// Reads certificates from a PEM file (every CERTIFICATE block) or a DER file (one).
fn read_certificates(path: &Path) -> Result<Vec<Certificate>, Error> {
    let bytes = read_limited(path, MAX_CHAIN_LEN)?;
    let what = || path.display().to_string();
    // A DER certificate starts with a SEQUENCE tag; anything else is read as PEM.
    let parsed = if bytes.first() == Some(&0x30) {
        Certificate::from_der(&bytes).map(|c| vec![c])
    } else {
        plinth_x509::certificates_from_pem(&bytes)
    };
    parsed.map_err(|source| Error::Certificate {
        what: what(),
        source,
    })
}

fn from_secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

impl CaDir {
    /// Creates a CA in `dir` (created if missing, mode 0700; it must not hold a CA yet)
    /// with one active authority, signed by `upstream` when given, else self-signed.
    /// `pin` is the PKCS#11 user PIN, for a PKCS#11 backend.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`], [`Error::Pkcs11PinRequired`], the key and certificate
    /// errors of creating and checking the authority, [`Error::Io`].
    pub fn init(
        dir: &Path,
        options: &InitOptions,
        upstream: Option<&UpstreamFiles>,
        pin: Option<Zeroizing<String>>,
        now: UnixTime,
        rng: &dyn SecureRandom,
    ) -> Result<Self, Error> {
        let state_path = dir.join(STATE_FILE);
        if state_path.exists() {
            return Err(Error::AlreadyExists { path: state_path });
        }
        options.check()?;
        if matches!(options.backend, KeyBackend::Pkcs11 { .. }) && pin.is_none() {
            return Err(Error::Pkcs11PinRequired);
        }
        create_private_dir(dir)?;
        let settings = Settings {
            dir: dir.to_owned(),
            algorithm: options.algorithm,
            backend: options.backend.clone(),
            ca_ttl: options.ca_ttl,
            intermediate: options.intermediate,
            upstream: upstream.is_some(),
            pin,
        };
        let mut authority =
            settings.create_authority(&options.trust_domain, 1, upstream, now, rng)?;
        authority.set_state(AuthorityState::Active, now);
        let ca = Ca::new(
            options.trust_domain.clone(),
            options.config,
            1,
            vec![authority],
        )?;
        let store = Self { settings, ca };
        store.save()?;
        Ok(store)
    }

    /// Opens the CA in `dir`, loading every key and checking it against its certificate.
    ///
    /// # Errors
    /// [`Error::State`] for a missing or malformed `ca.json`, [`Error::Pkcs11PinRequired`],
    /// [`Error::KeyFilePermissions`], [`Error::KeyRejected`],
    /// [`Error::KeyDoesNotMatchCertificate`], [`Error::Certificate`], [`Error::Io`], or a
    /// PKCS#11 error.
    pub fn open(dir: &Path, pin: Option<Zeroizing<String>>, now: UnixTime) -> Result<Self, Error> {
        let state_path = dir.join(STATE_FILE);
        let bad = |reason: String| Error::State {
            path: state_path.clone(),
            reason,
        };
        let bytes = read_limited(&state_path, MAX_STATE_LEN)?;
        let state: State = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if state.version != STATE_VERSION {
            return Err(bad(format!("unsupported version {}", state.version)));
        }
        let trust_domain = TrustDomain::new(&state.trust_domain).map_err(|e| bad(e.to_string()))?;
        let algorithm = SignatureAlgorithm::from_name(&state.algorithm)
            .ok_or_else(|| bad(format!("unknown algorithm {:?}", state.algorithm)))?;
        let backend = match state.backend {
            BackendState::Software => KeyBackend::Software,
            BackendState::Pkcs11 {
                module,
                token_label,
            } => {
                if pin.is_none() {
                    return Err(Error::Pkcs11PinRequired);
                }
                KeyBackend::Pkcs11 {
                    module,
                    token_label,
                }
            }
        };
        let config = CaConfig {
            x509_svid_ttl: from_secs(state.x509_svid_ttl_secs),
            jwt_svid_ttl: from_secs(state.jwt_svid_ttl_secs),
            max_svid_ttl: from_secs(state.max_svid_ttl_secs),
            refresh_hint: from_secs(state.refresh_hint_secs),
        };
        let settings = Settings {
            dir: dir.to_owned(),
            algorithm,
            backend,
            ca_ttl: from_secs(state.ca_ttl_secs),
            intermediate: state.intermediate,
            upstream: state.upstream,
            pin,
        };
        let mut authorities = Vec::with_capacity(state.authorities.len());
        for record in &state.authorities {
            let authority_state = AuthorityState::from_name(&record.state)
                .ok_or_else(|| bad(format!("unknown authority state {:?}", record.state)))?;
            let times = AuthorityTimes {
                prepared_at: UnixTime::from_millis(record.prepared_at_ms),
                activated_at: record.activated_at_ms.map(UnixTime::from_millis),
                superseded_at: record.superseded_at_ms.map(UnixTime::from_millis),
            };
            let (x509, jwt) = settings.open_signers(&trust_domain, record.id)?;
            let path = read_certificates(&settings.authority_dir(record.id).join("chain.pem"))?;
            authorities.push(Authority::new(
                record.id,
                authority_state,
                times,
                x509,
                path,
                jwt,
                now,
            )?);
        }
        let ca = Ca::new(trust_domain, config, state.sequence, authorities)?;
        Ok(Self { settings, ca })
    }

    /// The CA.
    pub const fn ca(&self) -> &Ca {
        &self.ca
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.settings.dir
    }

    /// Where the keys live.
    pub const fn backend(&self) -> &KeyBackend {
        &self.settings.backend
    }

    /// The algorithm of the CA's keys.
    pub const fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.settings.algorithm
    }

    /// Whether an intermediate signs the SVIDs.
    pub const fn has_intermediate(&self) -> bool {
        self.settings.intermediate
    }

    /// Whether an upstream CA signs the CA.
    pub const fn has_upstream(&self) -> bool {
        self.settings.upstream
    }

    /// Rotation step 1: creates the next authority and adds it to the bundle as prepared
    /// ([`Ca::prepare`]). A CA under an upstream CA needs the upstream's files again.
    ///
    /// # Errors
    /// [`Error::AlreadyPrepared`], [`Error::UpstreamRequired`],
    /// [`Error::UpstreamNotExpected`], the errors of creating an authority, [`Error::Io`].
    pub fn prepare(
        &mut self,
        upstream: Option<&UpstreamFiles>,
        now: UnixTime,
        rng: &dyn SecureRandom,
    ) -> Result<u32, Error> {
        if let Some(prepared) = self
            .ca
            .authorities()
            .iter()
            .find(|a| a.state() == AuthorityState::Prepared)
        {
            return Err(Error::AlreadyPrepared { id: prepared.id() });
        }
        match (self.settings.upstream, upstream.is_some()) {
            (true, false) => return Err(Error::UpstreamRequired),
            (false, true) => return Err(Error::UpstreamNotExpected),
            _ => {}
        }
        let id = self.ca.next_id();
        let trust_domain = self.ca.trust_domain().clone();
        let authority = self
            .settings
            .create_authority(&trust_domain, id, upstream, now, rng)?;
        self.ca.prepare(authority, now)?;
        self.save()?;
        Ok(id)
    }

    /// Rotation step 2 ([`Ca::activate`]), saved.
    ///
    /// # Errors
    /// As [`Ca::activate`], [`Error::Io`].
    pub fn activate(&mut self, id: u32, now: UnixTime) -> Result<(), Error> {
        self.ca.activate(id, now)?;
        self.save()
    }

    /// Rotation step 3 ([`Ca::retire`]), saved; then the authority's keys are destroyed
    /// (key files deleted, PKCS#11 objects destroyed) and its certificates moved to
    /// `retired/<id>/`.
    ///
    /// # Errors
    /// As [`Ca::retire`], [`Error::Io`], or a PKCS#11 error.
    pub fn retire(&mut self, id: u32, now: UnixTime) -> Result<(), Error> {
        let retired = self.ca.retire(id, now)?;
        self.save()?;
        drop(retired.into_signers());
        let settings = &self.settings;
        let authority_dir = settings.authority_dir(id);
        match &settings.backend {
            KeyBackend::Software => {
                for name in ["x509.key", "jwt.key"] {
                    let path = authority_dir.join(name);
                    fs::remove_file(&path).map_err(io(&path))?;
                }
            }
            KeyBackend::Pkcs11 { .. } => {
                let config = settings.pkcs11_config()?;
                for purpose in ["x509", "jwt"] {
                    let label = key_label(self.ca.trust_domain(), id, purpose);
                    Pkcs11Key::open(&config, &label, settings.algorithm)?.destroy()?;
                }
            }
        }
        let retired_dir = settings.dir.join("retired");
        create_private_dir(&retired_dir)?;
        let target = retired_dir.join(id.to_string());
        fs::rename(&authority_dir, &target).map_err(io(&target))
    }

    fn save(&self) -> Result<(), Error> {
        let config = self.ca.config();
        let state = State {
            version: STATE_VERSION,
            trust_domain: self.ca.trust_domain().to_string(),
            algorithm: self.settings.algorithm.name().to_owned(),
            backend: match &self.settings.backend {
                KeyBackend::Software => BackendState::Software,
                KeyBackend::Pkcs11 {
                    module,
                    token_label,
                } => BackendState::Pkcs11 {
                    module: module.clone(),
                    token_label: token_label.clone(),
                },
            },
            intermediate: self.settings.intermediate,
            upstream: self.settings.upstream,
            ca_ttl_secs: self.settings.ca_ttl.as_secs(),
            x509_svid_ttl_secs: config.x509_svid_ttl.as_secs(),
            jwt_svid_ttl_secs: config.jwt_svid_ttl.as_secs(),
            max_svid_ttl_secs: config.max_svid_ttl.as_secs(),
            refresh_hint_secs: config.refresh_hint.as_secs(),
            sequence: self.ca.sequence(),
            authorities: self
                .ca
                .authorities()
                .iter()
                .map(|a| {
                    let times = a.times();
                    AuthorityRecord {
                        id: a.id(),
                        state: a.state().name().to_owned(),
                        prepared_at_ms: times.prepared_at.as_millis(),
                        activated_at_ms: times.activated_at.map(UnixTime::as_millis),
                        superseded_at_ms: times.superseded_at.map(UnixTime::as_millis),
                    }
                })
                .collect(),
        };
        let path = self.settings.dir.join(STATE_FILE);
        let json = serde_json::to_vec_pretty(&state).map_err(|e| Error::State {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        // Write beside, then rename over: the state file is always whole.
        let temporary = self.settings.dir.join(format!("{STATE_FILE}.tmp"));
        let _stale = fs::remove_file(&temporary);
        write_new(&temporary, &json, 0o600)?;
        fs::rename(&temporary, &path).map_err(io(&path))?;
        fs::File::open(&self.settings.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.settings.dir))
    }
}

impl Settings {
    fn authority_dir(&self, id: u32) -> PathBuf {
        self.dir.join("authorities").join(id.to_string())
    }

    fn pkcs11_config(&self) -> Result<Pkcs11Config, Error> {
        let KeyBackend::Pkcs11 {
            module,
            token_label,
        } = &self.backend
        else {
            return Err(Error::Pkcs11PinRequired);
        };
        let pin = self.pin.as_ref().ok_or(Error::Pkcs11PinRequired)?;
        Ok(Pkcs11Config::new(
            module.clone(),
            token_label.clone(),
            pin.clone(),
        ))
    }

    fn open_signers(&self, trust_domain: &TrustDomain, id: u32) -> Result<SignerPair, Error> {
        let open = |purpose: &str| -> Result<Box<dyn Signer>, Error> {
            match &self.backend {
                KeyBackend::Software => {
                    let path = self.authority_dir(id).join(format!("{purpose}.key"));
                    Ok(Box::new(SoftwareKey::load_file(&path, self.algorithm)?))
                }
                KeyBackend::Pkcs11 { .. } => {
                    let label = key_label(trust_domain, id, purpose);
                    Ok(Box::new(Pkcs11Key::open(
                        &self.pkcs11_config()?,
                        &label,
                        self.algorithm,
                    )?))
                }
            }
        };
        Ok((open("x509")?, open("jwt")?))
    }

    fn create_signer(
        &self,
        trust_domain: &TrustDomain,
        id: u32,
        purpose: &str,
        rng: &dyn SecureRandom,
    ) -> Result<Box<dyn Signer>, Error> {
        match &self.backend {
            KeyBackend::Software => {
                let path = self.authority_dir(id).join(format!("{purpose}.key"));
                Ok(Box::new(SoftwareKey::create_file(
                    &path,
                    self.algorithm,
                    rng,
                )?))
            }
            KeyBackend::Pkcs11 { .. } => {
                let label = key_label(trust_domain, id, purpose);
                Ok(Box::new(Pkcs11Key::generate(
                    &self.pkcs11_config()?,
                    &label,
                    self.algorithm,
                    true,
                )?))
            }
        }
    }

    /// A key used once, kept nowhere: in memory, or a PKCS#11 session object.
    fn create_ephemeral_signer(
        &self,
        trust_domain: &TrustDomain,
        id: u32,
        rng: &dyn SecureRandom,
    ) -> Result<Box<dyn Signer>, Error> {
        match &self.backend {
            KeyBackend::Software => Ok(Box::new(SoftwareKey::generate(self.algorithm, rng)?)),
            KeyBackend::Pkcs11 { .. } => {
                let label = key_label(trust_domain, id, "root");
                Ok(Box::new(Pkcs11Key::generate(
                    &self.pkcs11_config()?,
                    &label,
                    self.algorithm,
                    false,
                )?))
            }
        }
    }

    /// Creates the keys and certificates of authority `id`, in state prepared. On failure,
    /// what was created is removed again.
    fn create_authority(
        &self,
        trust_domain: &TrustDomain,
        id: u32,
        upstream: Option<&UpstreamFiles>,
        now: UnixTime,
        rng: &dyn SecureRandom,
    ) -> Result<Authority, Error> {
        let dir = self.authority_dir(id);
        if dir.exists() {
            return Err(Error::AlreadyExists { path: dir });
        }
        create_private_dir(&dir)?;
        let created = self.create_authority_in(trust_domain, id, upstream, now, rng);
        if created.is_err() {
            // Best effort: the original error is the one to report.
            let _removed = fs::remove_dir_all(&dir);
            if let (KeyBackend::Pkcs11 { .. }, Ok(config)) = (&self.backend, self.pkcs11_config()) {
                for purpose in ["x509", "jwt"] {
                    let label = key_label(trust_domain, id, purpose);
                    if let Ok(key) = Pkcs11Key::open(&config, &label, self.algorithm) {
                        let _destroyed = key.destroy();
                    }
                }
            }
        }
        created
    }

    fn create_authority_in(
        &self,
        trust_domain: &TrustDomain,
        id: u32,
        upstream: Option<&UpstreamFiles>,
        now: UnixTime,
        rng: &dyn SecureRandom,
    ) -> Result<Authority, Error> {
        let upstream = match upstream {
            Some(files) => {
                let chain = read_certificates(&files.certificates)?;
                let key = SoftwareKey::load_file_any_curve(&files.key)?;
                Some((chain, key))
            }
            None => None,
        };
        let x509 = self.create_signer(trust_domain, id, "x509", rng)?;
        let jwt = self.create_signer(trust_domain, id, "jwt", rng)?;
        let top = if self.intermediate {
            Some(self.create_ephemeral_signer(trust_domain, id, rng)?)
        } else {
            None
        };
        let skew = UnixTime::from_secs(
            now.as_secs()
                .saturating_sub(crate::x509::NOT_BEFORE_SKEW_SECS),
        );
        let not_after = UnixTime::from_secs(now.as_secs().saturating_add(self.ca_ttl.as_secs()));
        let plan = Plan {
            trust_domain,
            id,
            not_before: skew,
            not_after,
            top: top.as_deref().unwrap_or(x509.as_ref()),
            intermediate: top.as_ref().map(|_| x509.as_ref()),
            upstream: upstream
                .as_ref()
                .map(|(chain, key)| Upstream { signer: key, chain }),
        };
        let path = authority::issue_path(&plan, rng)?;
        drop(top);
        let chain_pem: String = path
            .iter()
            .map(|c| pem::encode("CERTIFICATE", c.der()))
            .collect();
        write_new(
            &self.authority_dir(id).join("chain.pem"),
            chain_pem.as_bytes(),
            0o644,
        )?;
        let times = AuthorityTimes {
            prepared_at: now,
            activated_at: None,
            superseded_at: None,
        };
        Authority::new(id, AuthorityState::Prepared, times, x509, path, jwt, now)
    }
}

fn key_label(trust_domain: &TrustDomain, id: u32, purpose: &str) -> String {
    format!("plinth {trust_domain} {id} {purpose}")
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io(path))?;
    file.write_all(contents).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}
