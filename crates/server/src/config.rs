//! The server's configuration: TOML, every key optional with a documented default, and
//! `PLINTH_*` environment variables over the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::Error;

/// The server configuration. `plinth server` with no file uses every default: a CA and a
/// SQLite database in `./plinth-data`, the policies in `./firmware-policies`, the API on
/// 127.0.0.1:8443, metrics on 127.0.0.1:9464, the admin socket in the data directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Trust domain of the SVIDs (`PLINTH_TRUST_DOMAIN`). Default `example.org`.
    pub trust_domain: String,
    /// Data directory: CA, SQLite database, admin socket (`PLINTH_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The attestation API's TLS address (`PLINTH_LISTEN`).
    pub listen: SocketAddr,
    /// Prometheus `/metrics` address; empty to disable (`PLINTH_METRICS_LISTEN`).
    pub metrics_listen: Option<SocketAddr>,
    /// The admin API's unix socket (`PLINTH_ADMIN_SOCKET`). Default `<data_dir>/admin.sock`.
    pub admin_socket: Option<PathBuf>,
    /// Database URL: `sqlite://...` or `postgres://...` (`PLINTH_DATABASE_URL`). Default
    /// SQLite in the data directory.
    pub database_url: Option<String>,
    /// Directory of `*.toml` policies (`PLINTH_POLICIES`).
    pub policies: PathBuf,
    /// TPM EK/AK roots and intermediates: PEM or DER files, or directories of them.
    pub tpm_roots: Vec<PathBuf>,
    /// SHA-256 (hex) of EK public keys admitted without a certificate.
    pub tpm_ek_allow: Vec<String>,
    /// How long a challenge may be answered, in seconds. Default 60.
    pub nonce_ttl_seconds: u64,
    /// The server's own SVID lifetime, in seconds. Default 86400.
    pub server_svid_ttl_seconds: u64,
    /// Workload SVID lifetime when the registration sets none, in seconds. Default 300.
    pub workload_svid_ttl_seconds: u64,
    /// SPIFFE IDs whose SVIDs may call the admin API over TLS.
    pub admin_ids: Vec<String>,
    /// Refuse nodes that no registration matches, instead of granting the policy's
    /// SPIFFE ID. Default false.
    pub require_registration: bool,
    /// Sign an audit checkpoint when this many records are unsigned. Default 64.
    pub checkpoint_every_records: u64,
    /// …or when the oldest unsigned record is this old, in seconds. Default 60.
    pub checkpoint_every_seconds: u64,
    /// How long shutdown waits for in-flight attestations, in seconds. Default 30.
    pub shutdown_grace_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            trust_domain: "example.org".to_owned(),
            data_dir: PathBuf::from("plinth-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            admin_socket: None,
            database_url: None,
            policies: PathBuf::from("firmware-policies"),
            tpm_roots: Vec::new(),
            tpm_ek_allow: Vec::new(),
            nonce_ttl_seconds: 60,
            server_svid_ttl_seconds: 86_400,
            workload_svid_ttl_seconds: 300,
            admin_ids: Vec::new(),
            require_registration: false,
            checkpoint_every_records: 64,
            checkpoint_every_seconds: 60,
            shutdown_grace_seconds: 30,
        }
    }
}

/// The longest a challenge may live: evidence over an old nonce proves little freshness.
const MAX_NONCE_TTL_SECONDS: u64 = 600;

impl Config {
    /// Reads `path` (if given), then applies `PLINTH_*` variables from `env`.
    ///
    /// # Errors
    /// [`Error::Config`] for an unreadable file, unknown keys, bad values.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, Error> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
                toml::from_str(&text)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
            }
            None => Self::default(),
        };
        for (key, value) in env {
            config.apply_env(&key, value)?;
        }
        config.check()?;
        Ok(config)
    }

    fn apply_env(&mut self, key: &str, value: String) -> Result<(), Error> {
        let addr = |v: &str| {
            v.parse::<SocketAddr>()
                .map_err(|e| Error::Config(format!("{key}={v}: {e}")))
        };
        match key {
            "PLINTH_TRUST_DOMAIN" => self.trust_domain = value,
            "PLINTH_DATA_DIR" => self.data_dir = value.into(),
            "PLINTH_LISTEN" => self.listen = addr(&value)?,
            "PLINTH_METRICS_LISTEN" if value.is_empty() => self.metrics_listen = None,
            "PLINTH_METRICS_LISTEN" => self.metrics_listen = Some(addr(&value)?),
            "PLINTH_ADMIN_SOCKET" => self.admin_socket = Some(value.into()),
            "PLINTH_DATABASE_URL" => self.database_url = Some(value),
            "PLINTH_POLICIES" => self.policies = value.into(),
            _ => {}
        }
        Ok(())
    }

    fn check(&self) -> Result<(), Error> {
        let _valid = plinth_core::TrustDomain::new(&self.trust_domain)
            .map_err(|e| Error::Config(format!("trust_domain: {e}")))?;
        if self.nonce_ttl_seconds == 0 || self.nonce_ttl_seconds > MAX_NONCE_TTL_SECONDS {
            return Err(Error::Config(format!(
                "nonce_ttl_seconds must be 1..={MAX_NONCE_TTL_SECONDS}"
            )));
        }
        for id in &self.admin_ids {
            let _valid = plinth_core::SpiffeId::parse(id)
                .map_err(|e| Error::Config(format!("admin_ids: {id}: {e}")))?;
        }
        Ok(())
    }

    /// The admin socket path.
    pub fn admin_socket_path(&self) -> PathBuf {
        self.admin_socket
            .clone()
            .unwrap_or_else(|| self.data_dir.join("admin.sock"))
    }

    /// The challenge lifetime.
    pub const fn nonce_ttl(&self) -> Duration {
        Duration::from_secs(self.nonce_ttl_seconds)
    }
}
