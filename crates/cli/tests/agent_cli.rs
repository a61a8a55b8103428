//! `plinth agent` on a machine without the configured hardware: exit 1 with one clear
//! line naming the missing device, before any socket is created.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::path::Path;
use std::process::{Command, Output};

fn plinth(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plinth"));
    let _ = command.current_dir(dir).args(args);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("PLINTH_")) {
        let _ = command.env_remove(name);
    }
    let _ = command.envs(env.iter().copied());
    command.output().unwrap()
}

fn agent_on(platform: &str) -> (String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let init = plinth(
        dir.path(),
        &["ca", "init", "--dir", "ca", "--trust-domain", "example.org"],
        &[],
    );
    assert!(init.status.success(), "{init:?}");
    let bundle = plinth(dir.path(), &["bundle", "show", "--dir", "ca"], &[]);
    assert!(bundle.status.success());
    std::fs::write(dir.path().join("bundle.pem"), &bundle.stdout).unwrap();
    let socket = dir.path().join("agent.sock");
    let output = plinth(
        dir.path(),
        &["agent"],
        &[
            ("PLINTH_AGENT_PLATFORM", platform),
            ("PLINTH_AGENT_BUNDLE", "bundle.pem"),
            ("PLINTH_AGENT_SOCKET", socket.to_str().unwrap()),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    (String::from_utf8(output.stderr).unwrap(), socket.exists())
}

#[test]
fn agent_without_an_nsm_device_names_it_once_and_exits_1() {
    let (stderr, socket) = agent_on("nitro");
    assert_eq!(
        stderr.matches("opening the NSM device /dev/nsm").count(),
        1,
        "{stderr}"
    );
    assert!(!socket, "no Workload API socket without an identity source");
}

#[test]
fn agent_without_configfs_tsm_says_why_and_exits_1() {
    let (stderr, socket) = agent_on("snp");
    assert!(stderr.contains("not an SEV-SNP guest"), "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    assert!(!socket);
}

#[test]
fn agent_with_an_unknown_platform_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let output = plinth(dir.path(), &["agent"], &[("PLINTH_AGENT_PLATFORM", "sgx")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("PLINTH_AGENT_PLATFORM=sgx"), "{stderr}");
}
