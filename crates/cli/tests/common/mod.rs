//! `plinth server` as a child process, shared by the CLI tests that run one: the command
//! without the variables that would override a test's configuration, free ports, and a
//! process handle that writes the configuration, waits for the "listening" line, and
//! stops (SIGTERM), kills (SIGKILL) or connects to the server.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses its own part of this module"
)]

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use plinth_core::{SpiffeId, UnixTime};

/// The shipped firmware policies.
pub const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../firmware-policies");

/// Environment variables that would override a test's configuration.
const OVERRIDES: [&str; 9] = [
    "PLINTH_TRUST_DOMAIN",
    "PLINTH_DATA_DIR",
    "PLINTH_LISTEN",
    "PLINTH_METRICS_LISTEN",
    "PLINTH_ADMIN_SOCKET",
    "PLINTH_DATABASE_URL",
    "PLINTH_POLICIES",
    "PLINTH_PKCS11_PIN",
    "RUST_LOG",
];

/// `plinth <args>` with none of the overriding variables set.
pub fn plinth_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plinth"));
    let _args = command.args(args);
    for name in OVERRIDES {
        let _removed = command.env_remove(name);
    }
    command
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The system clock, for opening the CA directory.
pub fn now() -> UnixTime {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    UnixTime::from_millis(u64::try_from(millis).unwrap())
}

/// A `plinth server` child process (killed on drop if still running).
pub struct ServerProcess {
    child: Option<Child>,
    addr: SocketAddr,
    metrics_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    first_line: String,
}

impl ServerProcess {
    /// Writes `dir/server.toml` — `data_dir = dir/data`, `listen` and `metrics_listen` on
    /// fresh loopback ports, then the lines of `config` — starts `plinth server` with its
    /// stderr in `dir/<log>`, and returns once it printed its "listening" line.
    pub fn start(dir: &Path, config: &str, log: &str) -> Self {
        let data_dir = dir.join("data");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let metrics_port = free_port();
        let path = dir.join("server.toml");
        std::fs::write(
            &path,
            format!(
                "data_dir = {data:?}\nlisten = \"{addr}\"\n\
                 metrics_listen = \"127.0.0.1:{metrics_port}\"\n{config}",
                data = data_dir.display().to_string(),
            ),
        )
        .unwrap();
        let log = dir.join(log);
        let mut child = plinth_command(&["server", "--config", path.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start plinth server");
        let mut first_line = String::new();
        let _read = BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        if first_line.is_empty() {
            let status = child.wait().unwrap();
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("plinth server exited ({status}) before listening: {log}");
        }
        assert!(
            first_line.contains(&format!("listening on {addr}")),
            "{first_line}"
        );
        Self {
            child: Some(child),
            addr,
            metrics_port,
            data_dir,
            log,
            first_line,
        }
    }

    /// The attestation API's address.
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `/metrics` port.
    pub const fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The line the server printed when it started listening.
    pub fn first_line(&self) -> &str {
        &self.first_line
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// Sends SIGTERM and waits (up to 20 s) for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _killed = child.kill();
                panic!("plinth server did not exit within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`: no drain, no final checkpoint, connections reset.
    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "{status}");
    }

    /// A TLS channel authenticating the server by its SPIFFE ID against the bundle of the
    /// CA in its data directory (the CA survives restarts).
    pub async fn channel(&self) -> tonic::transport::Channel {
        let ca = plinth_ca::CaDir::open(&self.data_dir.join("ca"), None, now()).unwrap();
        let bundle = ca.ca().bundle().x509_authorities().to_vec();
        let server_id = SpiffeId::parse("spiffe://example.org/plinth/server").unwrap();
        let trust = plinth_client::ServerTrust::new(&bundle, server_id).unwrap();
        let config = plinth_client::client_config(trust, None, None).unwrap();
        plinth_client::connect(self.addr, Arc::new(config))
            .await
            .unwrap()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _killed = child.kill();
            let _waited = child.wait();
        }
    }
}
