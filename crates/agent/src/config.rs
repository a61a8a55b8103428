//! The agent's configuration: TOML, every key optional, `PLINTH_AGENT_*` variables over
//! the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Error;
use crate::collect::{EvidenceSource, Platform};

/// The agent configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// The plinth server (`PLINTH_AGENT_SERVER`). Default 127.0.0.1:8443.
    pub server: SocketAddr,
    /// The trust domain (`PLINTH_AGENT_TRUST_DOMAIN`). Default `example.org`.
    pub trust_domain: String,
    /// The server's SPIFFE ID. Default `spiffe://<trust_domain>/plinth/server`.
    pub server_id: Option<String>,
    /// The trust bundle to bootstrap from: PEM (`plinth bundle show`)
    /// (`PLINTH_AGENT_BUNDLE`). Default `bundle.pem`.
    pub bundle: PathBuf,
    /// The node's hardware (`PLINTH_AGENT_PLATFORM`): `tpm`, `nitro` or `snp`. Default
    /// `tpm`.
    pub platform: Platform,
    /// The TPM (`PLINTH_AGENT_TCTI`). Default `device:/dev/tpmrm0`.
    pub tcti: String,
    /// SEV-SNP: this chip's VCEK or VLEK (DER, from AMD's KDS), sent when the host provides
    /// no certificate table. Default none.
    pub snp_vek_certificate: Option<PathBuf>,
    /// The TCG event log sent with each quote; empty for none. Default the kernel's.
    pub event_log: Option<PathBuf>,
    /// The Workload API socket (`PLINTH_AGENT_SOCKET`, and what workloads find in
    /// `SPIFFE_ENDPOINT_SOCKET`). Default `/run/plinth/agent.sock`.
    pub socket: PathBuf,
    /// The socket's mode (octal). Default 0o600: only the agent's user.
    pub socket_mode: u32,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            server: SocketAddr::from(([127, 0, 0, 1], 8443)),
            trust_domain: "example.org".to_owned(),
            server_id: None,
            bundle: PathBuf::from("bundle.pem"),
            platform: Platform::Tpm,
            tcti: crate::collect::tpm::DEFAULT_TCTI.to_owned(),
            snp_vek_certificate: None,
            event_log: Some(PathBuf::from(crate::collect::tpm::DEFAULT_EVENT_LOG)),
            socket: PathBuf::from("/run/plinth/agent.sock"),
            socket_mode: 0o600,
        }
    }
}

impl AgentConfig {
    /// Reads `path` (if given), then applies `PLINTH_AGENT_*` variables from `env`.
    ///
    /// # Errors
    /// [`Error::Agent`] for an unreadable file, unknown keys or bad values.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, Error> {
        let mut config: Self = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Agent(format!("reading {}: {e}", path.display())))?;
                toml::from_str(&text)
                    .map_err(|e| Error::Agent(format!("{}: {e}", path.display())))?
            }
            None => Self::default(),
        };
        for (key, value) in env {
            match key.as_str() {
                "PLINTH_AGENT_SERVER" => {
                    config.server = value
                        .parse()
                        .map_err(|e| Error::Agent(format!("{key}={value}: {e}")))?;
                }
                "PLINTH_AGENT_TRUST_DOMAIN" => config.trust_domain = value,
                "PLINTH_AGENT_BUNDLE" => config.bundle = value.into(),
                "PLINTH_AGENT_TCTI" => config.tcti = value,
                "PLINTH_AGENT_PLATFORM" => {
                    config.platform = value
                        .parse()
                        .map_err(|e| Error::Agent(format!("{key}={value}: {e}")))?;
                }
                "PLINTH_AGENT_SOCKET" => config.socket = value.into(),
                _ => {}
            }
        }
        if config
            .event_log
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            config.event_log = None;
        }
        Ok(config)
    }

    /// Opens this platform's evidence source (blocking: it talks to the device).
    ///
    /// # Errors
    /// The device's error.
    pub fn open_evidence_source(&self) -> Result<Box<dyn EvidenceSource>, Error> {
        crate::collect::open(
            self.platform,
            &self.tcti,
            self.event_log.clone(),
            self.snp_vek_certificate.as_deref(),
        )
    }

    /// The server's SPIFFE ID.
    ///
    /// # Errors
    /// [`Error::Agent`] when it is not a SPIFFE ID.
    pub fn server_id(&self) -> Result<plinth_core::SpiffeId, Error> {
        let text = self
            .server_id
            .clone()
            .unwrap_or_else(|| format!("spiffe://{}/plinth/server", self.trust_domain));
        plinth_core::SpiffeId::parse(&text).map_err(|e| Error::Agent(format!("server_id: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn platform_from_file_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "platform = \"nitro\"\n").unwrap();
        let from_file = AgentConfig::load(Some(&path), env(&[])).unwrap();
        assert_eq!(from_file.platform, Platform::Nitro);
        let overridden =
            AgentConfig::load(Some(&path), env(&[("PLINTH_AGENT_PLATFORM", "snp")])).unwrap();
        assert_eq!(overridden.platform, Platform::Snp);
        assert_eq!(
            AgentConfig::load(None, env(&[])).unwrap().platform,
            Platform::Tpm
        );
    }

    #[test]
    fn rejects_unknown_platform_with_agent() {
        let error = AgentConfig::load(None, env(&[("PLINTH_AGENT_PLATFORM", "sgx")])).unwrap_err();
        assert!(
            matches!(&error, Error::Agent(message) if message.contains("PLINTH_AGENT_PLATFORM")),
            "{error}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "platform = \"sgx\"\n").unwrap();
        assert!(matches!(
            AgentConfig::load(Some(&path), env(&[])),
            Err(Error::Agent(_))
        ));
    }
}
