//! The CA with its keys in SoftHSM2 (Debian package `softhsm2`), on a token this test
//! initialises in a temporary directory.
//!
//! SoftHSM2 reads its configuration from `SOFTHSM2_CONF` when the module is loaded, and
//! the environment of a running test process cannot be changed safely, so the test runs
//! itself again as a child process with that variable set.

use std::path::{Path, PathBuf};
use std::process::Command;

use plinth_ca::{
    AuthorityState, CaDir, ECDSA_P256_SHA256, Error, InitOptions, KeyBackend, Pkcs11Config,
    Pkcs11Key,
};
use plinth_core::{SpiffeId, TrustDomain, UnixTime};
use plinth_crypto::{Curve, SystemRandom};
use tempfile::TempDir;
use zeroize::Zeroizing;

use crate::jwt::spiffe_jwt_bundles;
use crate::mtls::assert_mutual_tls;
use crate::support::{
    assert_openssl_accepts, assert_spiffe_accepts, assert_svid_profile, now, workload,
};

const CHILD: &str = "PLINTH_TEST_SOFTHSM_DIR";
const TOKEN: &str = "plinth-test";
const USER_PIN: &str = "246810";

fn module() -> PathBuf {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("SoftHSM2 is installed (Debian package softhsm2; scripts/install-deps.sh)")
}

fn pin() -> Zeroizing<String> {
    Zeroizing::new(USER_PIN.to_owned())
}

#[test]
fn pkcs11_ca_in_softhsm_mints_svids_that_real_clients_accept() {
    let Some(dir) = std::env::var_os(CHILD).map(PathBuf::from) else {
        return run_in_child("pkcs11::pkcs11_ca_in_softhsm_mints_svids_that_real_clients_accept");
    };
    with_token(&dir);
    std::fs::write(dir.join("done"), "ok").unwrap();
}

/// Sets up a SoftHSM2 token directory, then runs `test` in a child process pointed at it.
fn run_in_child(test: &str) {
    let dir = TempDir::new().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let init = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--so-pin",
            "13579",
            "--pin",
            USER_PIN,
        ])
        .output()
        .expect("run softhsm2-util (Debian package softhsm2)");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env("SOFTHSM2_CONF", &conf)
        .env(CHILD, dir.path())
        .output()
        .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(child.status.success(), "child test failed:\n{output}");
    assert!(
        dir.path().join("done").exists(),
        "the child did not run the test:\n{output}"
    );
}

fn later(t: UnixTime, secs: u64) -> UnixTime {
    UnixTime::from_millis(t.as_millis() + secs * 1000)
}

fn with_token(dir: &Path) {
    let ca_dir = dir.join("ca");
    let mut options = InitOptions::new(TrustDomain::new("hsm.example").unwrap());
    options.backend = KeyBackend::Pkcs11 {
        module: module(),
        token_label: TOKEN.to_owned(),
    };
    options.intermediate = true;
    let store = CaDir::init(&ca_dir, &options, None, Some(pin()), now(), &SystemRandom).unwrap();

    // Nothing secret on disk: no key files, only certificates and state.
    let mut files: Vec<String> = std::fs::read_dir(ca_dir.join("authorities/1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["chain.pem"]);

    // X.509-SVIDs: spiffe, openssl, profile; JWT-SVIDs: spiffe; and mutual TLS.
    let ca = store.ca();
    let w = workload(Curve::P256);
    let id = SpiffeId::parse("spiffe://hsm.example/payments").unwrap();
    let svid = ca
        .mint_x509_svid(&id, &w.bound, None, now(), &SystemRandom)
        .unwrap();
    assert_spiffe_accepts(&svid, &w);
    assert_openssl_accepts(&ca.bundle().x509_pem(), &svid, now());
    assert_svid_profile(&svid, &w.bound, &ca.active().unwrap().certificates()[0]);
    let jwt = ca
        .mint_jwt_svid(&id, &["ledger".to_owned()], None, now())
        .unwrap();
    let _valid = spiffe::JwtSvid::parse_and_validate(
        jwt.token(),
        &spiffe_jwt_bundles(&ca.bundle()),
        &["ledger"],
    )
    .unwrap();
    assert_mutual_tls(ca);

    // The key's Debug: the token, the label, the public key; nothing else.
    let signer = ca.active().unwrap().x509_signer();
    assert_eq!(
        format!("{signer:?}"),
        format!(
            "Pkcs11Key {{ algorithm: ecdsa-p256-sha256, token: \"{TOKEN}\", label: \
             \"plinth hsm.example 1 x509\", public_key: \"{}\", .. }}",
            hex::encode(signer.public_key().spki_der())
        )
    );
    // The key cannot be created twice under one label.
    let config = Pkcs11Config::new(module(), TOKEN, pin());
    assert!(matches!(
        Pkcs11Key::generate(
            &config,
            "plinth hsm.example 1 x509",
            &ECDSA_P256_SHA256,
            true
        ),
        Err(Error::Pkcs11KeyExists { .. })
    ));
    drop(store);

    // Reopening needs the PIN, and the right one.
    assert!(matches!(
        CaDir::open(&ca_dir, None, now()),
        Err(Error::Pkcs11PinRequired)
    ));
    let wrong = Zeroizing::new("000000".to_owned());
    assert!(matches!(
        CaDir::open(&ca_dir, Some(wrong), now()),
        Err(Error::Pkcs11 {
            operation: "login",
            ..
        })
    ));
    let mut store = CaDir::open(&ca_dir, Some(pin()), now()).unwrap();

    // A whole rotation on the token; retiring destroys the old keys there.
    let t0 = now();
    let old = store
        .ca()
        .mint_x509_svid(&id, &w.bound, None, t0, &SystemRandom)
        .unwrap();
    assert_eq!(store.prepare(None, t0, &SystemRandom).unwrap(), 2);
    store.activate(2, later(t0, 300)).unwrap();
    let new = store
        .ca()
        .mint_x509_svid(&id, &w.bound, None, later(t0, 300), &SystemRandom)
        .unwrap();
    assert_openssl_accepts(&store.ca().bundle().x509_pem(), &old, later(t0, 300));
    assert_openssl_accepts(&store.ca().bundle().x509_pem(), &new, later(t0, 300));
    let retire_at = later(t0, 300 + 24 * 3600);
    store.retire(1, retire_at).unwrap();
    assert_eq!(
        store
            .ca()
            .authorities()
            .iter()
            .map(|a| (a.id(), a.state()))
            .collect::<Vec<_>>(),
        [(2, AuthorityState::Active)]
    );
    assert!(matches!(
        Pkcs11Key::open(&config, "plinth hsm.example 1 x509", &ECDSA_P256_SHA256),
        Err(Error::Pkcs11KeyNotFound { .. })
    ));
    drop(store);
    let reopened = CaDir::open(&ca_dir, Some(pin()), retire_at).unwrap();
    assert_eq!(reopened.ca().active().unwrap().id(), 2);
}
