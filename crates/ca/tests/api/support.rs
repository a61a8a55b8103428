//! Shared test helpers: CAs in temporary directories, workload keys, and the independent
//! checkers (OpenSSL's `verify`, the `spiffe` crate).

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use plinth_ca::{CaDir, InitOptions, X509Svid};
use plinth_core::{BoundKey, TrustDomain, UnixTime};
use plinth_crypto::{Curve, EcdsaSigningKey, SystemRandom};
use plinth_x509::{Certificate, oids};
use tempfile::TempDir;
use zeroize::Zeroizing;

/// The tests mint with the real time: the `spiffe` crate validates JWT-SVIDs against the
/// system clock.
pub(crate) fn now() -> UnixTime {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    UnixTime::from_millis(u64::try_from(elapsed.as_millis()).unwrap())
}

/// A CA in its own temporary directory.
pub(crate) struct TestCa {
    pub(crate) dir: TempDir,
    pub(crate) store: CaDir,
}

impl TestCa {
    pub(crate) fn ca_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("ca")
    }
}

pub(crate) fn software_ca(trust_domain: &str, tweak: impl FnOnce(&mut InitOptions)) -> TestCa {
    let dir = TempDir::new().unwrap();
    let mut options = InitOptions::new(TrustDomain::new(trust_domain).unwrap());
    tweak(&mut options);
    let store = CaDir::init(
        &dir.path().join("ca"),
        &options,
        None,
        None,
        now(),
        &SystemRandom,
    )
    .unwrap();
    TestCa { dir, store }
}

/// A workload: its key pair (as the hardware would hold it) and the bound public key.
pub(crate) struct Workload {
    pub(crate) bound: BoundKey,
    pub(crate) pkcs8: Zeroizing<Vec<u8>>,
}

pub(crate) fn workload(curve: Curve) -> Workload {
    let key = EcdsaSigningKey::generate(curve, &SystemRandom).unwrap();
    Workload {
        bound: BoundKey::from_spki_der(key.public_key().spki_der().to_vec()),
        pkcs8: key.to_pkcs8().unwrap(),
    }
}

/// `openssl verify -x509_strict` of the SVID against the bundle (PEM) at `at`, with the
/// SVID's intermediates as untrusted certificates; `purpose` is `sslclient` or
/// `sslserver`. Ok with OpenSSL's output, or Err with it.
pub(crate) fn openssl_verify(
    bundle_pem: &str,
    svid: &X509Svid,
    at: UnixTime,
    purpose: &str,
) -> Result<String, String> {
    let dir = TempDir::new().unwrap();
    let bundle = dir.path().join("bundle.pem");
    let leaf = dir.path().join("leaf.pem");
    std::fs::write(&bundle, bundle_pem).unwrap();
    std::fs::write(&leaf, plinth_ca::pem_encode("CERTIFICATE", svid.leaf_der())).unwrap();
    let mut command = Command::new("openssl");
    let _ = command
        .arg("verify")
        .arg("-x509_strict")
        .args(["-purpose", purpose])
        .args(["-attime", &at.as_secs().to_string()])
        .arg("-CAfile")
        .arg(&bundle);
    if !svid.intermediates_der().is_empty() {
        let untrusted = dir.path().join("untrusted.pem");
        let pem: String = svid
            .intermediates_der()
            .iter()
            .map(|der| plinth_ca::pem_encode("CERTIFICATE", der))
            .collect();
        std::fs::write(&untrusted, pem).unwrap();
        let _ = command.arg("-untrusted").arg(&untrusted);
    }
    let output = command
        .arg(&leaf)
        .output()
        .expect("run openssl (Debian package openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Both purposes pass `openssl verify -x509_strict`.
pub(crate) fn assert_openssl_accepts(bundle_pem: &str, svid: &X509Svid, at: UnixTime) {
    for purpose in ["sslclient", "sslserver"] {
        if let Err(output) = openssl_verify(bundle_pem, svid, at, purpose) {
            panic!("openssl verify ({purpose}) rejected the SVID: {output}");
        }
    }
}

/// Parses the SVID with the `spiffe` crate (leaf and signing-certificate rules).
pub(crate) fn assert_spiffe_accepts(svid: &X509Svid, workload: &Workload) {
    let parsed = spiffe::X509Svid::parse_from_der(&svid.chain_der(), &workload.pkcs8)
        .unwrap_or_else(|e| panic!("spiffe rejected the SVID: {e}"));
    assert_eq!(parsed.spiffe_id().to_string(), svid.spiffe_id().to_string());
    assert_eq!(
        parsed.cert_chain().len(),
        1 + svid.intermediates_der().len()
    );
}

/// The checks of the X.509-SVID profile that the `spiffe` crate leaves out (SPIFFE-SPIRE
/// facts §6): criticality, EKU, key identifiers, serial, the bound key itself.
pub(crate) fn assert_svid_profile(svid: &X509Svid, bound: &BoundKey, signer: &Certificate) {
    let leaf = Certificate::from_der(svid.leaf_der()).unwrap();
    assert_eq!(
        leaf.spki_der(),
        bound.spki_der(),
        "certifies exactly the bound key"
    );
    assert_eq!(leaf.version(), 3);
    let bc = leaf.basic_constraints().expect("basicConstraints present");
    assert!(!bc.ca());
    assert!(leaf.extension(&oids::BASIC_CONSTRAINTS).unwrap().critical());
    let ku = leaf.key_usage().expect("keyUsage present");
    assert_eq!(ku.flags(), 1, "digitalSignature only");
    assert!(
        leaf.extension(&oids::KEY_USAGE).unwrap().critical(),
        "X4: keyUsage critical"
    );
    let eku: Vec<&str> = leaf
        .extended_key_usage()
        .unwrap()
        .iter()
        .map(plinth_x509::Oid::as_str)
        .collect();
    assert_eq!(
        eku,
        ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
        "serverAuth + clientAuth"
    );
    assert!(leaf.subject().is_empty());
    assert!(
        leaf.extension(&oids::SUBJECT_ALT_NAME).unwrap().critical(),
        "X2: empty subject"
    );
    assert_eq!(
        leaf.authority_key_id(),
        signer.subject_key_id(),
        "AKI = issuer's SKI"
    );
    assert_eq!(leaf.subject_key_id().map(<[u8]>::len), Some(20));
    // A positive INTEGER of 128 random bits: 16 bytes, 17 with a leading zero octet,
    // fewer when the random high octets are zero (12 or fewer: probability 2^-32).
    assert!(
        matches!(leaf.serial().len(), 12..=17),
        "serial {:x?}",
        leaf.serial()
    );
    assert_eq!(leaf.issuer().der(), signer.subject().der());
    leaf.verify_signed_by(&signer.public_key().unwrap())
        .unwrap();
}
