//! Workload attestation: the socket peer's kernel credentials and executable, as
//! selectors.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::sync::Mutex;

use plinth_core::HashAlg;
use plinth_crypto::Hasher;
use tokio::net::unix::UCred;

/// The largest executable hashed for a `unix:sha256` selector (256 MiB).
pub const MAX_EXECUTABLE_LEN: u64 = 256 * 1024 * 1024;

/// How many executables' hashes are remembered (the cache is emptied when full).
const MAX_CACHED: usize = 1024;

/// What identifies one version of a file: device, inode, size, modification and change
/// times (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileVersion {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// Why a caller could not be attested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttestError {
    /// The process exited, or its pid now names another process.
    ProcessChanged,
}

/// Turns peer credentials into selectors; remembers executable hashes.
#[derive(Debug, Default)]
pub(crate) struct Attestor {
    hashes: Mutex<HashMap<FileVersion, String>>,
}

impl Attestor {
    /// The selectors of the peer with `cred`: `unix:uid`, `unix:gid`, and when its process
    /// is visible in /proc, `unix:path` and `unix:sha256` of its executable. Blocking
    /// (reads /proc and maybe hashes a file).
    pub(crate) fn selectors(&self, cred: UCred) -> Result<Vec<String>, AttestError> {
        let mut selectors = vec![
            format!("unix:uid:{}", cred.uid()),
            format!("unix:gid:{}", cred.gid()),
        ];
        // pid 0 (or none): the peer is in a pid namespace this process cannot see.
        let Some(pid) = cred.pid().filter(|pid| *pid > 0) else {
            tracing::debug!(uid = cred.uid(), "workload peer has no visible pid");
            return Ok(selectors);
        };
        let before = start_time(pid).ok_or(AttestError::ProcessChanged)?;
        let executable = self.executable(pid);
        let after = start_time(pid).ok_or(AttestError::ProcessChanged)?;
        if before != after {
            return Err(AttestError::ProcessChanged);
        }
        if let Some((path, sha256)) = executable {
            selectors.push(format!("unix:path:{path}"));
            if let Some(sha256) = sha256 {
                selectors.push(format!("unix:sha256:{sha256}"));
            }
        }
        tracing::debug!(pid, ?selectors, "attested workload");
        Ok(selectors)
    }

    /// The executable's path and, within the budget, its SHA-256 (hex). The file is the
    /// one /proc/<pid>/exe opens (the inode the process runs, even if the path changed).
    fn executable(&self, pid: i32) -> Option<(String, Option<String>)> {
        let link = format!("/proc/{pid}/exe");
        let path = match std::fs::read_link(&link) {
            Ok(path) => path.to_string_lossy().into_owned(),
            Err(e) => {
                tracing::debug!(pid, error = %e, "cannot read the workload's executable path");
                return None;
            }
        };
        let file = match File::open(&link) {
            Ok(file) => file,
            Err(e) => {
                tracing::debug!(pid, error = %e, "cannot open the workload's executable");
                return Some((path, None));
            }
        };
        let metadata = file.metadata().ok()?;
        if metadata.len() > MAX_EXECUTABLE_LEN {
            tracing::warn!(
                pid,
                %path,
                len = metadata.len(),
                "workload executable too large to hash; no unix:sha256 selector"
            );
            return Some((path, None));
        }
        let version = FileVersion {
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.len(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
        };
        if let Some(hex) = self.cached(&version) {
            return Some((path, Some(hex)));
        }
        let hex = sha256_within(file, MAX_EXECUTABLE_LEN)?;
        if let Ok(mut hashes) = self.hashes.lock() {
            if hashes.len() >= MAX_CACHED {
                hashes.clear();
            }
            let _previous = hashes.insert(version, hex.clone());
        }
        Some((path, Some(hex)))
    }

    fn cached(&self, version: &FileVersion) -> Option<String> {
        self.hashes.lock().ok()?.get(version).cloned()
    }
}

/// SHA-256 (hex) of the file, None if it is longer than `max` or cannot be read.
fn sha256_within(file: File, max: u64) -> Option<String> {
    let mut hasher = Hasher::new(HashAlg::Sha256);
    let mut limited = file.take(max.saturating_add(1));
    let mut buffer = vec![0_u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = limited.read(&mut buffer).ok()?;
        if n == 0 {
            break;
        }
        total = total.saturating_add(u64::try_from(n).ok()?);
        if total > max {
            return None;
        }
        hasher.update(buffer.get(..n)?);
    }
    Some(hasher.finish().to_hex())
}

/// The process's start time (clock ticks since boot: field 22 of /proc/<pid>/stat).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything: count from
    // the last ')'; the field after it is field 3.
    let rest = stat.get(stat.rfind(')')?.checked_add(1)?..)?;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_this_process_is_stable() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let first = start_time(pid).unwrap();
        assert_eq!(start_time(pid), Some(first));
    }

    #[test]
    fn hashes_only_within_the_budget() {
        let dir = std::env::temp_dir().join(format!("plinth-attest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_within(File::open(&path).unwrap(), 3).as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(sha256_within(File::open(&path).unwrap(), 2), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
