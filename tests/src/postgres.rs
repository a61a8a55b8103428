//! A private, throw-away PostgreSQL cluster for the HA datastore tests.
//!
//! [`PgCluster::start`] runs Debian's `initdb` and `pg_ctl` (from
//! `/usr/lib/postgresql/<version>/bin`, the newest installed) on a fresh temporary
//! directory: trust authentication, listening on 127.0.0.1 on a free port, its unix socket
//! inside that directory, fsync off (a test cluster need not survive power loss). It never
//! touches the system cluster Debian may have started on port 5432. PostgreSQL refuses to
//! run as root, so as root the directory is handed to the `postgres` system user and every
//! command runs through `runuser -u postgres --`. Dropping the cluster stops it
//! (`pg_ctl stop -m immediate`) and removes the directory.
//!
//! Missing binaries are an error naming the Debian package `postgresql`: the tests that
//! need a real database never skip.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};

use tempfile::TempDir;

use crate::HarnessError;

/// The Debian package that provides the server binaries.
const PACKAGE: &str = "postgresql";
/// Where Debian installs each major version's binaries.
const LIB_DIR: &str = "/usr/lib/postgresql";
/// How many ports to try when another process takes ours between probe and bind.
const PORT_ATTEMPTS: usize = 10;
/// How long `pg_ctl` waits for start-up, in seconds.
const START_TIMEOUT_SECS: &str = "60";

/// Serializes port selection and start-up within this process.
static START_LOCK: Mutex<()> = Mutex::new(());

/// A running PostgreSQL cluster; stopped and deleted on drop.
#[derive(Debug)]
pub struct PgCluster {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    as_postgres: bool,
}

impl PgCluster {
    /// Initializes and starts a cluster.
    ///
    /// # Errors
    /// [`HarnessError::MissingProgram`] naming `postgresql` when the binaries (or, as
    /// root, `runuser` and the `postgres` user) are missing; [`HarnessError::ToolFailed`]
    /// with the output of `initdb` or `pg_ctl`.
    pub fn start() -> Result<Self, HarnessError> {
        let bin = find_bin_dir()?;
        let as_postgres = running_as_root()?;
        if as_postgres {
            let _runuser = crate::require_program("runuser")?;
        }
        let dir = tempfile::Builder::new()
            .prefix("plinth-pg-")
            .tempdir()
            .map_err(HarnessError::io("creating the PostgreSQL directory"))?;
        fs::create_dir(dir.path().join("sock"))
            .map_err(HarnessError::io("creating the socket directory"))?;
        if as_postgres {
            let path = dir.path().display().to_string();
            let mut chown = Command::new("chown");
            let _chown = chown.args(["-R", "postgres:postgres", &path]);
            let _out =
                crate::run(chown, "chown", &["-R", "postgres:postgres", &path]).map_err(|e| {
                    if e.stderr().contains("invalid user") {
                        missing("postgres (system user)")
                    } else {
                        e
                    }
                })?;
        }
        let mut cluster = Self {
            bin,
            dir,
            port: 0,
            as_postgres,
        };
        let data = cluster.data_dir().display().to_string();
        let _out = cluster.pg_tool(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let _guard = START_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            cluster.port = free_port()?;
            match cluster.pg_ctl_start() {
                Ok(()) => return Ok(cluster),
                Err(e) => {
                    let log = fs::read_to_string(cluster.log_file()).unwrap_or_default();
                    if !log.contains("could not bind") && !log.contains("already in use") {
                        return Err(e);
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::Start("PostgreSQL did not start".into())))
    }

    /// The connection URL (database `postgres`, user `postgres`, no password).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The TCP port.
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's private directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn pg_ctl_start(&self) -> Result<(), HarnessError> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            self.port,
            self.dir.path().join("sock").display()
        );
        let data = self.data_dir().display().to_string();
        let log = self.log_file().display().to_string();
        self.pg_tool(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-l",
                &log,
                "-w",
                "-t",
                START_TIMEOUT_SECS,
                "-o",
                &options,
                "start",
            ],
        )
        .map(drop)
    }

    /// Runs one of the cluster's binaries, as `postgres` when we are root.
    fn pg_tool(&self, program: &str, args: &[&str]) -> Result<Vec<u8>, HarnessError> {
        let path = self.bin.join(program);
        let path_text = path.display().to_string();
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            let _ = command.args(["-u", "postgres", "--", &path_text]);
            command
        } else {
            Command::new(&path)
        };
        let _ = command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        crate::run(command, &path_text, args)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.port != 0 {
            let data = self.data_dir().display().to_string();
            // Nothing useful to do if it is already gone.
            let _stopped = self.pg_tool("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        }
    }
}

fn missing(program: &str) -> HarnessError {
    HarnessError::MissingProgram {
        program: program.to_owned(),
        package: PACKAGE,
    }
}

/// The `bin` directory of the newest PostgreSQL installed under `/usr/lib/postgresql`.
fn find_bin_dir() -> Result<PathBuf, HarnessError> {
    let entries = fs::read_dir(LIB_DIR).map_err(|_| missing("initdb"))?;
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .ok_or_else(|| missing("initdb"))
}

/// Whether this process runs as root (from `/proc/self/status`; no libc needed).
fn running_as_root() -> Result<bool, HarnessError> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(HarnessError::io("reading /proc/self/status"))?;
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .ok_or_else(|| HarnessError::Output {
            what: "/proc/self/status",
            detail: "no Uid line".into(),
        })?;
    Ok(euid == "0")
}

fn free_port() -> Result<u16, HarnessError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(HarnessError::io("probing for a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(HarnessError::io("reading the probed port"))?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_name_the_debian_package() {
        let error = missing("initdb");
        assert!(error.to_string().contains("`postgresql`"), "{error}");
        assert!(error.to_string().contains("never skip"));
    }
}
