//! End-to-end harness: a real TPM 2.0 (swtpm) driven by tpm2-tools.
//!
//! Each [`Swtpm`] is a private, freshly manufactured TPM: its own temporary directory, its
//! own local CA (so its EK certificates chain to a root only this instance knows), its own
//! state and its own pair of TCP ports. swtpm serves one client at a time and libtpms holds
//! only three loaded objects, so sharing an instance between tests would make them wait on
//! each other or run out of slots; one instance per test avoids both.
//!
//! ```text
//!  Swtpm::start ─► swtpm_setup (EK RSA-2048 + ECC P-384, EK certs from the local CA)
//!               └► swtpm socket on 127.0.0.1:N (TPM) and N+1 (control) ─► TCTI string
//!  Swtpm::tool("tpm2_quote", [...]) ─► stdout, or HarnessError::ToolFailed with stderr
//! ```
//!
//! The flows the tests share (EK, AK, credential activation, quote, certify) are in
//! [`flows`]; the tpm2-tools file formats in [`formats`].
//!
//! Nothing here skips: when swtpm or tpm2-tools is missing the harness fails with
//! [`HarnessError::MissingProgram`], naming the Debian package to install.

pub mod fleet;
pub mod flows;
pub mod formats;
pub mod node;
pub mod postgres;
pub mod server;

use std::fs;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long swtpm may take to bind its ports and write its pid file.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How many port pairs to try before giving up (another process may grab a port between
/// our probe and swtpm's bind).
const PORT_ATTEMPTS: usize = 20;
/// PCR banks to activate, when `swtpm_setup` supports choosing them.
const PCR_BANKS: &str = "sha1,sha256,sha384";

/// Serializes port selection and swtpm start-up within this process, so that two tests
/// never pick the same free ports at the same moment.
static START_LOCK: Mutex<()> = Mutex::new(());

/// Everything that can go wrong driving swtpm and tpm2-tools.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// A program the harness needs is not installed.
    #[error(
        "`{program}` not found: install the Debian package `{package}` (the TPM tests need a real TPM and never skip)"
    )]
    MissingProgram {
        /// The program.
        program: String,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// A program ran and failed.
    #[error("`{command}` failed ({status}):\n{stderr}")]
    ToolFailed {
        /// The command line.
        command: String,
        /// Exit status as text (code or signal).
        status: String,
        /// What the program wrote to stderr.
        stderr: String,
    },
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The TPM answered a raw command with an error code.
    #[error("{command} returned TPM_RC {rc:#x}")]
    TpmResponse {
        /// The command.
        command: &'static str,
        /// The response code.
        rc: u32,
    },
    /// swtpm did not come up.
    #[error("swtpm did not start: {0}")]
    Start(String),
    /// A tool's output could not be understood.
    #[error("unexpected output from {what}: {detail}")]
    Output {
        /// What was being read.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl HarnessError {
    /// The stderr of a failed tool, or "" for other errors.
    pub fn stderr(&self) -> &str {
        match self {
            Self::ToolFailed { stderr, .. } => stderr,
            _ => "",
        }
    }

    fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// The Debian package providing `program`, for error messages.
fn package_of(program: &str) -> &'static str {
    if program.starts_with("tpm2_") {
        "tpm2-tools"
    } else if program == "swtpm" {
        "swtpm"
    } else if program.starts_with("swtpm") {
        "swtpm-tools"
    } else {
        "(unknown)"
    }
}

/// Finds `program` on `PATH`.
///
/// # Errors
/// [`HarnessError::MissingProgram`] when it is not there.
pub fn require_program(program: &str) -> Result<PathBuf, HarnessError> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| HarnessError::MissingProgram {
            program: program.to_owned(),
            package: package_of(program),
        })
}

/// Runs `command`, returning stdout, or [`HarnessError::ToolFailed`] with its stderr.
fn run(mut command: Command, program: &str, args: &[&str]) -> Result<Vec<u8>, HarnessError> {
    let output = command.output().map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            HarnessError::MissingProgram {
                program: program.to_owned(),
                package: package_of(program),
            }
        } else {
            HarnessError::Io {
                context: format!("running {program}"),
                source,
            }
        }
    })?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(HarnessError::ToolFailed {
            command: std::iter::once(program)
                .chain(args.iter().copied())
                .collect::<Vec<_>>()
                .join(" "),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// A running, manufactured swtpm instance. Killed, and its directory removed, on drop.
#[derive(Debug)]
pub struct Swtpm {
    child: Child,
    dir: TempDir,
    port: u16,
    tcti: String,
}

impl Swtpm {
    /// Manufactures a TPM (EK certificates for the RSA-2048 and ECC P-384 EKs, PCR banks
    /// sha1, sha256 and sha384 when supported) and starts it on two free ports.
    ///
    /// # Errors
    /// [`HarnessError::MissingProgram`] when swtpm or tpm2-tools is not installed; any
    /// failure of `swtpm_setup` or swtpm, with its output.
    pub fn start() -> Result<Self, HarnessError> {
        for program in ["swtpm", "swtpm_setup", "swtpm_localca", "tpm2_getcap"] {
            let _path = require_program(program)?;
        }
        let dir = tempfile::Builder::new()
            .prefix("plinth-swtpm-")
            .tempdir()
            .map_err(HarnessError::io("creating the swtpm directory"))?;
        let setup_conf = write_localca_config(dir.path())?;
        manufacture(dir.path(), &setup_conf)?;

        let (child, port) = {
            let _guard = START_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
            launch(dir.path())?
        };
        let swtpm = Self {
            child,
            dir,
            port,
            tcti: format!("swtpm:host=127.0.0.1,port={port}"),
        };
        // Waits until the TPM answers a command, not just until the socket is open.
        let _caps = swtpm.tool("tpm2_getcap", &["properties-fixed"])?;
        Ok(swtpm)
    }

    /// The TCTI configuration string for tpm2-tools and tpm2-tss.
    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    /// The TPM command port (the control port is the next one).
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// This instance's private working directory (tools run in it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside [`Swtpm::dir`].
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The directory holding this instance's local CA: the root certificate
    /// (`swtpm-localca-rootca-cert.pem`) and the issuer of the EK certificates
    /// (`issuercert.pem`).
    pub fn localca_dir(&self) -> PathBuf {
        self.dir.path().join("localca")
    }

    /// The local CA's self-signed root certificate, PEM.
    pub fn root_ca_pem(&self) -> PathBuf {
        self.localca_dir().join("swtpm-localca-rootca-cert.pem")
    }

    /// The intermediate that signed the EK certificates, PEM.
    pub fn issuer_cert_pem(&self) -> PathBuf {
        self.localca_dir().join("issuercert.pem")
    }

    /// Runs a tpm2-tools program against this TPM (in [`Swtpm::dir`]), then flushes the
    /// transient objects it left loaded: without a resource manager tpm2-tools leave every
    /// object they load in one of the TPM's three slots. Saved contexts, sessions and
    /// persistent objects stay usable.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`] with the tool's stderr.
    pub fn tool(&self, program: &str, args: &[&str]) -> Result<Vec<u8>, HarnessError> {
        let result = self.tool_keep_loaded(program, args);
        let flushed = self.flush_transient();
        let stdout = result?;
        flushed?;
        Ok(stdout)
    }

    /// Runs a tpm2-tools program without flushing anything afterwards.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`] with the tool's stderr.
    pub fn tool_keep_loaded(&self, program: &str, args: &[&str]) -> Result<Vec<u8>, HarnessError> {
        let mut command = Command::new(program);
        let _command = command
            .args(args)
            .env("TPM2TOOLS_TCTI", &self.tcti)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        run(command, program, args)
    }

    /// Flushes every loaded transient object.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`].
    pub fn flush_transient(&self) -> Result<(), HarnessError> {
        self.tool_keep_loaded("tpm2_flushcontext", &["--transient-object"])
            .map(drop)
    }

    /// Flushes every transient object, loaded session and saved session.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`].
    pub fn flush_all(&self) -> Result<(), HarnessError> {
        for class in ["--transient-object", "--loaded-session", "--saved-session"] {
            let _stdout = self.tool_keep_loaded("tpm2_flushcontext", &[class])?;
        }
        Ok(())
    }

    /// Reads a file from [`Swtpm::dir`].
    ///
    /// # Errors
    /// [`HarnessError::Io`].
    pub fn read(&self, name: &str) -> Result<Vec<u8>, HarnessError> {
        let path = self.path(name);
        fs::read(&path).map_err(HarnessError::io(format!("reading {}", path.display())))
    }

    /// Writes a file into [`Swtpm::dir`] and returns its path.
    ///
    /// # Errors
    /// [`HarnessError::Io`].
    pub fn write(&self, name: &str, contents: &[u8]) -> Result<PathBuf, HarnessError> {
        let path = self.path(name);
        fs::write(&path, contents)
            .map_err(HarnessError::io(format!("writing {}", path.display())))?;
        Ok(path)
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        // The process may already be gone; there is nothing useful to do with an error here.
        let _killed = self.child.kill();
        let _status = self.child.wait();
    }
}

/// Writes a private `swtpm_localca` configuration (copying the system options file when
/// present) whose state, signing key and issuer live under `dir/localca`, and the
/// `swtpm_setup` configuration that uses it. Returns the `swtpm_setup` configuration path.
fn write_localca_config(dir: &Path) -> Result<PathBuf, HarnessError> {
    let localca = dir.join("localca");
    fs::create_dir_all(&localca).map_err(HarnessError::io("creating localca directory"))?;
    let ca = localca.display();
    let conf = localca.join("swtpm-localca.conf");
    let options = localca.join("swtpm-localca.options");
    let setup = localca.join("swtpm_setup.conf");
    let localca_conf = format!(
        "statedir = {ca}\nsigningkey = {ca}/signkey.pem\nissuercert = {ca}/issuercert.pem\n\
         certserial = {ca}/certserial\n"
    );
    fs::write(&conf, localca_conf).map_err(HarnessError::io("writing swtpm-localca.conf"))?;
    let system_options = fs::read("/etc/swtpm-localca.options").unwrap_or_else(|_| {
        b"--platform-manufacturer plinth\n--platform-version 2.1\n--platform-model swtpm\n".to_vec()
    });
    fs::write(&options, system_options)
        .map_err(HarnessError::io("writing swtpm-localca.options"))?;
    let localca_tool = require_program("swtpm_localca")?;
    let setup_conf = format!(
        "create_certs_tool = {}\ncreate_certs_tool_config = {}\ncreate_certs_tool_options = {}\n\
         active_pcr_banks = sha256\n",
        localca_tool.display(),
        conf.display(),
        options.display()
    );
    fs::write(&setup, setup_conf).map_err(HarnessError::io("writing swtpm_setup.conf"))?;
    Ok(setup)
}

/// Whether this `swtpm_setup` accepts `--pcr-banks` (0.7 does; older releases do not).
fn setup_supports_pcr_banks() -> Result<bool, HarnessError> {
    let mut command = Command::new("swtpm_setup");
    let _command = command.arg("--help").stdin(Stdio::null());
    let help = run(command, "swtpm_setup", &["--help"])?;
    Ok(String::from_utf8_lossy(&help).contains("--pcr-banks"))
}

/// Runs `swtpm_setup`: EKs, their certificates, a platform certificate, NV locked.
fn manufacture(dir: &Path, setup_conf: &Path) -> Result<(), HarnessError> {
    let state = dir.join("state");
    fs::create_dir_all(&state).map_err(HarnessError::io("creating the TPM state directory"))?;
    let state = state.display().to_string();
    let config = setup_conf.display().to_string();
    let mut args = vec![
        "--tpm2",
        "--tpmstate",
        &state,
        "--create-ek-cert",
        "--create-platform-cert",
        "--lock-nvram",
        "--config",
        &config,
        "--overwrite",
    ];
    if setup_supports_pcr_banks()? {
        args.extend(["--pcr-banks", PCR_BANKS]);
    }
    let mut command = Command::new("swtpm_setup");
    let _command = command.args(&args).current_dir(dir).stdin(Stdio::null());
    run(command, "swtpm_setup", &args).map(drop)
}

/// Where [`free_port_pair`] looks: below Linux's default ephemeral range (32768–60999),
/// so that the thousands of client sockets a load run leaves in TIME_WAIT, which hold
/// ephemeral ports for a minute, never occupy the pair.
const PORT_PAIR_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// Picks a port `n` such that `n` and `n + 1` are both free right now.
fn free_port_pair() -> Result<u16, HarnessError> {
    use plinth_core::SecureRandom as _;
    for _ in 0..PORT_ATTEMPTS {
        let mut bytes = [0_u8; 2];
        plinth_crypto::SystemRandom
            .fill(&mut bytes)
            .map_err(|e| HarnessError::Start(format!("choosing a port: {e}")))?;
        let span = PORT_PAIR_RANGE.end - PORT_PAIR_RANGE.start;
        let port = PORT_PAIR_RANGE.start + u16::from_be_bytes(bytes) % span;
        let free = |port: u16| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok();
        if free(port) && port.checked_add(1).is_some_and(free) {
            return Ok(port);
        }
    }
    Err(HarnessError::Start(format!(
        "no free pair of adjacent ports after {PORT_ATTEMPTS} tries"
    )))
}

/// Starts `swtpm socket` on a free port pair and waits for its pid file, which swtpm writes
/// only after binding both sockets: so the ports are ours, not some other process's.
/// Retries with new ports when swtpm loses a race for one.
fn launch(dir: &Path) -> Result<(Child, u16), HarnessError> {
    let state = dir.join("state");
    let pid_file = dir.join("swtpm.pid");
    let mut last_error = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port_pair()?;
        let ctrl = port
            .checked_add(1)
            .ok_or_else(|| HarnessError::Start("port overflow".into()))?;
        let log = dir.join(format!("swtpm-{port}.log"));
        let log_file =
            fs::File::create(&log).map_err(HarnessError::io("creating the swtpm log"))?;
        let log_err = log_file
            .try_clone()
            .map_err(HarnessError::io("cloning the swtpm log"))?;
        let mut child = Command::new("swtpm")
            .arg("socket")
            .arg("--tpm2")
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"))
            .arg("--tpmstate")
            .arg(format!("dir={}", state.display()))
            .arg("--pid")
            .arg(format!("file={}", pid_file.display()))
            .arg("--flags")
            .arg("not-need-init,startup-clear")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|source| {
                if source.kind() == io::ErrorKind::NotFound {
                    HarnessError::MissingProgram {
                        program: "swtpm".into(),
                        package: "swtpm",
                    }
                } else {
                    HarnessError::Io {
                        context: "spawning swtpm".into(),
                        source,
                    }
                }
            })?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child
                .try_wait()
                .map_err(HarnessError::io("waiting for swtpm"))?
            {
                last_error = format!(
                    "swtpm exited ({status}): {}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
                break;
            }
            let pid = fs::read_to_string(&pid_file).unwrap_or_default();
            if pid.trim().parse::<u32>().ok() == Some(child.id()) {
                return Ok((child, port));
            }
            if Instant::now() > deadline {
                let _killed = child.kill();
                let _status = child.wait();
                return Err(HarnessError::Start(format!(
                    "no pid file after {START_TIMEOUT:?}: {}",
                    fs::read_to_string(&log).unwrap_or_default()
                )));
            }
            thread::sleep(Duration::from_millis(5));
        }
        // Lost a race for a port (or another start-up failure): only the former is worth
        // retrying.
        if !last_error.contains("Address already in use") {
            return Err(HarnessError::Start(last_error));
        }
    }
    Err(HarnessError::Start(format!(
        "gave up after {PORT_ATTEMPTS} port pairs: {last_error}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_names_its_debian_package() {
        let error = require_program("tpm2_plinth_no_such_tool").unwrap_err();
        assert!(
            matches!(
                &error,
                HarnessError::MissingProgram {
                    package: "tpm2-tools",
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("never skip"));
    }
}
