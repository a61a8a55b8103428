//! The plugins' configuration: SPIRE's `plugin_data` block (HCL) or `plugin_data_file`
//! (JSON or HCL), plus the trust domain from SPIRE's core configuration.
//!
//! SPIRE hands the plugin the HCL v1 printer's rendering of the `plugin_data` body
//! (`policies = "/etc/plinth/policies"`), or the raw contents of `plugin_data_file`.
//! Text whose first non-blank character is `{` is read as JSON, anything else as HCL
//! (hcl-rs, a maintained serde-based HCL parser: flat attributes and lists are all this
//! configuration uses, and HCL v1 and v2 agree on them). Unknown keys are errors, so a
//! typo never silently disables a check.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use plinth_agent::Platform;
use plinth_core::TrustDomain;
use plinth_evidence::{Trust, Verifier};
use plinth_policy::Policy;
use serde::Deserialize;

use crate::Error;

/// How long a challenge stays answerable unless `nonce_ttl` says otherwise.
pub const DEFAULT_NONCE_TTL: Duration = Duration::from_secs(60);
/// The longest `nonce_ttl` accepted.
pub const MAX_NONCE_TTL: Duration = Duration::from_secs(600);
/// The most policy files or trust-anchor files one directory may hold.
const MAX_FILES: usize = 1024;
/// The largest trust-anchor file read.
const MAX_CERT_FILE: u64 = 1 << 20;
/// Where Linux exposes the firmware's TCG event log.
pub const DEFAULT_EVENT_LOG: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";
/// The kernel's TPM resource manager.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

/// One value or a list of them (`trust_anchors = "/etc/x"` or `["/a", "/b"]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

/// A duration as `"90s"`, `"5m"`, `"1h"` or a whole number of seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Ttl {
    Seconds(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServerConfig {
    policies: Option<String>,
    trust_anchors: Option<OneOrMany>,
    ek_intermediates: Option<OneOrMany>,
    ek_hashes: Option<Vec<String>>,
    nonce_ttl: Option<Ttl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgentConfig {
    platform: Option<String>,
    tcti: Option<String>,
    event_log: Option<String>,
    snp_vek_certificate: Option<String>,
}

/// The server plugin, configured: everything an `Attest` needs.
#[derive(Debug)]
pub struct ServerConfig {
    /// SPIRE's trust domain (agent IDs live in it).
    pub trust_domain: TrustDomain,
    /// Trust anchors and policies.
    pub verifier: Verifier,
    /// How long a challenge stays answerable.
    pub nonce_ttl: Duration,
}

/// The agent plugin, configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// The node's hardware: `tpm` (the default), `nitro` or `snp`.
    pub platform: Platform,
    /// The TPM to use (`device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=2321`).
    pub tcti: String,
    /// The event log to send, and whether its absence is an error (`true` when the path
    /// was configured explicitly).
    pub event_log: Option<(PathBuf, bool)>,
    /// SEV-SNP: the chip's VCEK/VLEK (DER), sent when the host provides no certificate
    /// table.
    pub snp_vek_certificate: Option<PathBuf>,
}

/// Decodes HCL or JSON into `T`.
fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| Error::Config(format!("JSON: {e}")))
    } else {
        hcl::from_str(text).map_err(|e| Error::Config(format!("HCL: {e}")))
    }
}

impl ServerConfig {
    /// Reads the configuration SPIRE sends: the core trust domain and the plugin data.
    ///
    /// # Errors
    /// [`Error::Config`] for a missing or invalid setting, [`Error::ConfigFile`],
    /// [`Error::Policy`] or [`Error::TrustAnchor`] for files that cannot be used.
    pub fn parse(trust_domain: &str, text: &str) -> Result<Self, Error> {
        let trust_domain = TrustDomain::new(trust_domain)
            .map_err(|e| Error::Config(format!("core trust_domain {trust_domain:?}: {e}")))?;
        let raw: RawServerConfig = decode(text)?;
        let policies_path = raw
            .policies
            .ok_or_else(|| Error::Config("`policies` (a directory or file) is required".into()))?;
        let policies = load_policies(Path::new(&policies_path))?;

        let mut trust = Trust::builtin().map_err(Error::BuiltinTrust)?;
        let roots = raw
            .trust_anchors
            .map(OneOrMany::into_vec)
            .unwrap_or_default();
        for der in certificates(&roots)? {
            trust
                .ek_roots
                .add_root_der(&der.1)
                .map_err(|source| Error::TrustAnchor {
                    path: der.0.clone(),
                    source,
                })?;
        }
        let intermediates = raw
            .ek_intermediates
            .map(OneOrMany::into_vec)
            .unwrap_or_default();
        for der in certificates(&intermediates)? {
            trust
                .ek_roots
                .add_intermediate_der(&der.1)
                .map_err(|source| Error::TrustAnchor {
                    path: der.0.clone(),
                    source,
                })?;
        }
        for hash in raw.ek_hashes.unwrap_or_default() {
            let bytes: [u8; 32] = hex::decode(hash.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    Error::Config(format!("ek_hashes: {hash:?} is not 64 hex digits"))
                })?;
            trust.ek_allow.add(bytes);
        }
        let nonce_ttl = match raw.nonce_ttl {
            None => DEFAULT_NONCE_TTL,
            Some(ttl) => parse_ttl(&ttl)?,
        };
        Ok(Self {
            trust_domain,
            verifier: Verifier::new(trust, policies),
            nonce_ttl,
        })
    }
}

impl AgentConfig {
    /// Reads the agent plugin's data.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid setting.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let raw: RawAgentConfig = if text.trim().is_empty() {
            RawAgentConfig {
                platform: None,
                tcti: None,
                event_log: None,
                snp_vek_certificate: None,
            }
        } else {
            decode(text)?
        };
        let tcti = raw.tcti.unwrap_or_else(|| DEFAULT_TCTI.to_owned());
        if tcti.trim().is_empty() {
            return Err(Error::Config("`tcti` is empty".into()));
        }
        let event_log = match raw.event_log {
            None => Some((PathBuf::from(DEFAULT_EVENT_LOG), false)),
            Some(path) if path.is_empty() => None,
            Some(path) => Some((PathBuf::from(path), true)),
        };
        let platform = match raw.platform.as_deref() {
            None => Platform::Tpm,
            Some(text) => text
                .parse()
                .map_err(|e| Error::Config(format!("`platform` {text:?}: {e}")))?,
        };
        Ok(Self {
            platform,
            tcti,
            event_log,
            snp_vek_certificate: raw.snp_vek_certificate.map(PathBuf::from),
        })
    }
}

fn parse_ttl(ttl: &Ttl) -> Result<Duration, Error> {
    let duration = match ttl {
        Ttl::Seconds(secs) => Some(Duration::from_secs(*secs)),
        Ttl::Text(text) => {
            let text = text.trim();
            let (number, unit) = text
                .find(|c: char| !c.is_ascii_digit())
                .map_or((text, "s"), |i| text.split_at(i));
            let multiplier = match unit {
                "s" => Some(1),
                "m" => Some(60),
                "h" => Some(3600),
                _ => None,
            };
            number
                .parse::<u64>()
                .ok()
                .zip(multiplier)
                .and_then(|(n, m)| n.checked_mul(m))
                .map(Duration::from_secs)
        }
    };
    match duration {
        Some(d) if !d.is_zero() && d <= MAX_NONCE_TTL => Ok(d),
        _ => Err(Error::Config(format!(
            "nonce_ttl must be between 1s and {}s (\"90s\", \"5m\" or seconds)",
            MAX_NONCE_TTL.as_secs()
        ))),
    }
}

/// The files of `path`: the file itself, or the regular files of a directory whose names
/// end in one of `extensions`, sorted by name.
fn files(path: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>, Error> {
    let meta = std::fs::metadata(path).map_err(|source| Error::ConfigFile {
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut found = Vec::new();
    let entries = std::fs::read_dir(path).map_err(|source| Error::ConfigFile {
        path: path.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::ConfigFile {
            path: path.to_owned(),
            source,
        })?;
        let file = entry.path();
        let wanted = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.contains(&e));
        if wanted && file.is_file() {
            found.push(file);
        }
        if found.len() > MAX_FILES {
            return Err(Error::Config(format!(
                "{} holds more than {MAX_FILES} files",
                path.display()
            )));
        }
    }
    found.sort();
    Ok(found)
}

fn read(path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|source| Error::ConfigFile {
        path: path.to_owned(),
        source,
    })?;
    let mut bytes = Vec::new();
    let _read = file
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| Error::ConfigFile {
            path: path.to_owned(),
            source,
        })?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max {
        return Err(Error::Config(format!(
            "{} is larger than {max} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

fn load_policies(path: &Path) -> Result<Vec<Policy>, Error> {
    let max = u64::try_from(plinth_policy::MAX_POLICY_LEN).unwrap_or(u64::MAX);
    let mut policies = Vec::new();
    for file in files(path, &["toml"])? {
        let bytes = read(&file, max)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::Config(format!("{} is not UTF-8", file.display())))?;
        let policy =
            Policy::parse(&file.display().to_string(), &text).map_err(|source| Error::Policy {
                path: file.clone(),
                source,
            })?;
        policies.push(policy);
    }
    if policies.is_empty() {
        return Err(Error::Config(format!(
            "no policy (*.toml) in {}",
            path.display()
        )));
    }
    Ok(policies)
}

/// Every certificate in the given files and directories (PEM `CERTIFICATE` blocks, or one
/// DER certificate per file), with the file it came from.
fn certificates(paths: &[String]) -> Result<Vec<(PathBuf, Vec<u8>)>, Error> {
    let mut certs = Vec::new();
    for path in paths {
        for file in files(Path::new(path), &["pem", "crt", "cer", "der"])? {
            let bytes = read(&file, MAX_CERT_FILE)?;
            if bytes.starts_with(b"-----") || bytes.windows(11).any(|w| w == b"-----BEGIN ") {
                let text = String::from_utf8_lossy(&bytes);
                let blocks = pem_certificates(&text);
                if blocks.is_empty() {
                    return Err(Error::Config(format!(
                        "{} holds no PEM CERTIFICATE block",
                        file.display()
                    )));
                }
                certs.extend(blocks.into_iter().map(|der| (file.clone(), der)));
            } else {
                certs.push((file, bytes));
            }
        }
    }
    Ok(certs)
}

fn pem_certificates(text: &str) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(b64) = body.take()
                && let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64)
            {
                blocks.push(der);
            }
        } else if let Some(b64) = body.as_mut() {
            b64.push_str(line);
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_accepts_units_and_seconds() {
        assert_eq!(
            parse_ttl(&Ttl::Text("90s".into())).unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            parse_ttl(&Ttl::Text("5m".into())).unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse_ttl(&Ttl::Seconds(30)).unwrap(),
            Duration::from_secs(30)
        );
        for bad in ["0s", "11m", "1d", "", "s"] {
            assert!(
                matches!(parse_ttl(&Ttl::Text(bad.into())), Err(Error::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn agent_config_from_hcl_and_json() {
        let hcl = AgentConfig::parse("tcti = \"swtpm:port=2321\"\nevent_log = \"\"\n").unwrap();
        assert_eq!(hcl.tcti, "swtpm:port=2321");
        assert_eq!(hcl.event_log, None);
        let json = AgentConfig::parse(r#"{"tcti": "device:/dev/tpm0"}"#).unwrap();
        assert_eq!(json.tcti, "device:/dev/tpm0");
        assert_eq!(
            json.event_log,
            Some((PathBuf::from(DEFAULT_EVENT_LOG), false))
        );
        assert_eq!(AgentConfig::parse("").unwrap().tcti, DEFAULT_TCTI);
        assert_eq!(AgentConfig::parse("").unwrap().platform, Platform::Tpm);
        assert_eq!(
            AgentConfig::parse("platform = \"snp\"\n").unwrap().platform,
            Platform::Snp
        );
        assert_eq!(
            AgentConfig::parse(r#"{"platform": "nitro"}"#)
                .unwrap()
                .platform,
            Platform::Nitro
        );
    }

    #[test]
    fn rejects_unknown_platform_with_config() {
        assert!(matches!(
            AgentConfig::parse("platform = \"sgx\"\n"),
            Err(Error::Config(message)) if message.contains("platform")
        ));
    }

    #[test]
    fn rejects_unknown_keys_with_config() {
        assert!(matches!(
            AgentConfig::parse("tcti = \"x\"\ntypo = 1\n"),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            ServerConfig::parse("example.org", "policies = \"/x\"\nnonce_tll = \"5s\"\n"),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn rejects_bad_trust_domain_and_missing_policies_with_config() {
        assert!(matches!(
            ServerConfig::parse("Example.ORG", "policies = \"/x\""),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            ServerConfig::parse("example.org", ""),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            ServerConfig::parse("example.org", "policies = \"/nonexistent/plinth\""),
            Err(Error::ConfigFile { .. })
        ));
    }
}
