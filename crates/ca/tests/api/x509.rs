//! X.509-SVIDs, checked by the `spiffe` crate, by `openssl verify -x509_strict`, and
//! field by field against the SPIFFE profile.

use std::process::Command;
use std::time::Duration;

use plinth_ca::{CaDir, ECDSA_P384_SHA384, InitOptions, UpstreamFiles, X509Svid};
use plinth_core::{BoundKey, SpiffeId, TrustDomain};
use plinth_crypto::{Curve, SystemRandom};
use plinth_x509::Certificate;
use tempfile::TempDir;

use crate::support::{
    TestCa, Workload, assert_openssl_accepts, assert_spiffe_accepts, assert_svid_profile, now,
    software_ca, workload,
};

fn mint(ca: &TestCa, id: &str, workload: &Workload) -> X509Svid {
    let id = SpiffeId::parse(id).unwrap();
    ca.store
        .ca()
        .mint_x509_svid(&id, &workload.bound, None, now(), &SystemRandom)
        .unwrap()
}

/// Every check on one SVID: `spiffe` parse, OpenSSL strict verification for client and
/// server use, the profile, and the chain shape.
fn check(ca: &CaDir, svid: &X509Svid, workload: &Workload, intermediates: usize) {
    let bundle = ca.ca().bundle();
    assert_spiffe_accepts(svid, workload);
    assert_openssl_accepts(&bundle.x509_pem(), svid, now());
    assert_eq!(svid.intermediates_der().len(), intermediates);
    let authority = ca.ca().active().unwrap();
    let signer = &authority.certificates()[0];
    assert_svid_profile(svid, &workload.bound, signer);
}

#[test]
fn p256_svids_pass_spiffe_and_openssl_strict() {
    let ca = software_ca("example.org", |_| {});
    for (id, curve) in [
        ("spiffe://example.org/workload/a", Curve::P256),
        ("spiffe://example.org/ns/prod/sa/db", Curve::P384),
    ] {
        let w = workload(curve);
        let svid = mint(&ca, id, &w);
        check(&ca.store, &svid, &w, 0);
        // Default lifetime: one hour.
        let leaf = Certificate::from_der(svid.leaf_der()).unwrap();
        let validity = leaf.validity();
        assert_eq!(
            validity.not_after().as_secs() - validity.not_before().as_secs(),
            3600 + 10
        );
    }
}

#[test]
fn p384_ca_with_an_intermediate() {
    let ca = software_ca("example.org", |o| {
        o.algorithm = &ECDSA_P384_SHA384;
        o.intermediate = true;
    });
    let w = workload(Curve::P256);
    let svid = mint(&ca, "spiffe://example.org/svc", &w);
    check(&ca.store, &svid, &w, 1);
    // The bundle holds the root only; the intermediate travels with the SVID.
    let bundle = ca.store.ca().bundle();
    assert_eq!(bundle.x509_authorities().len(), 1);
    let root = Certificate::from_der(&bundle.x509_authorities()[0]).unwrap();
    assert_eq!(root.basic_constraints().unwrap().path_len(), Some(1));
    let intermediate = Certificate::from_der(&svid.intermediates_der()[0]).unwrap();
    assert_eq!(
        intermediate.basic_constraints().unwrap().path_len(),
        Some(0)
    );
    // The root key was used once and not kept: only the intermediate's key is on disk.
    let mut files: Vec<String> = std::fs::read_dir(ca.ca_dir().join("authorities/1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["chain.pem", "jwt.key", "x509.key"]);
}

/// Runs `openssl` in `dir` with whitespace-separated arguments.
fn openssl(dir: &std::path::Path, args: &str) {
    let args: Vec<&str> = args.split_whitespace().collect();
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(&args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An upstream RSA root and P-256 issuing CA made by OpenSSL; returns the files for the
/// CA (chain issuing-CA-first, its key 0600).
fn openssl_upstream(dir: &std::path::Path) -> UpstreamFiles {
    std::fs::write(
        dir.join("ext.cnf"),
        "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    openssl(
        dir,
        "req -x509 -newkey rsa:3072 -nodes -keyout root.key -out root.pem -days 3650 \
         -subj /C=DE/O=UpstreamCorp/CN=UpstreamRoot -config ext.cnf -extensions ca",
    );
    openssl(
        dir,
        "req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout issuing.key \
         -out issuing.csr -subj /C=DE/O=UpstreamCorp/OU=PKI/CN=UpstreamIssuingCA",
    );
    openssl(
        dir,
        "x509 -req -in issuing.csr -CA root.pem -CAkey root.key -CAcreateserial -days 1825 \
         -out issuing.pem -extfile ext.cnf -extensions ca",
    );
    let chain = [
        std::fs::read_to_string(dir.join("issuing.pem")).unwrap(),
        std::fs::read_to_string(dir.join("root.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    let key = dir.join("issuing.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    UpstreamFiles {
        certificates: dir.join("chain.pem"),
        key,
    }
}

#[test]
fn svids_under_an_upstream_ca_made_by_openssl() {
    let upstream_dir = TempDir::new().unwrap();
    let upstream = openssl_upstream(upstream_dir.path());
    for intermediate in [false, true] {
        let dir = TempDir::new().unwrap();
        let mut options = InitOptions::new(TrustDomain::new("corp.example").unwrap());
        options.intermediate = intermediate;
        let store = CaDir::init(
            &dir.path().join("ca"),
            &options,
            Some(&upstream),
            None,
            now(),
            &SystemRandom,
        )
        .unwrap();
        let w = workload(Curve::P256);
        let id = SpiffeId::parse("spiffe://corp.example/billing").unwrap();
        let svid = store
            .ca()
            .mint_x509_svid(&id, &w.bound, None, now(), &SystemRandom)
            .unwrap();
        // Chain: [our intermediate,] our CA, the upstream issuing CA; the bundle is the
        // upstream root.
        check(&store, &svid, &w, 2 + usize::from(intermediate));
        let root_pem = std::fs::read(upstream_dir.path().join("root.pem")).unwrap();
        let root = plinth_x509::certificates_from_pem(&root_pem)
            .unwrap()
            .remove(0);
        let bundle = store.ca().bundle();
        assert_eq!(bundle.x509_authorities(), [root.der().to_vec()]);
        // The RSA root's JWK in the SPIFFE bundle.
        let jwks: serde_json::Value = serde_json::from_str(&bundle.to_spiffe_jwks()).unwrap();
        let x509 = &jwks["keys"][0];
        assert_eq!(x509["use"], "x509-svid");
        assert_eq!(x509["kty"], "RSA");
        assert_eq!(x509["e"], "AQAB");
        assert_eq!(
            x509["n"].as_str().unwrap().len(),
            512,
            "3072-bit modulus, base64url"
        );
        // Reopening checks the chain again, and the reopened CA mints too.
        drop(store);
        let reopened = CaDir::open(&dir.path().join("ca"), None, now()).unwrap();
        let svid = reopened
            .ca()
            .mint_x509_svid(&id, &w.bound, None, now(), &SystemRandom)
            .unwrap();
        check(&reopened, &svid, &w, 2 + usize::from(intermediate));
    }
}

#[test]
fn rsa_bound_key_made_by_openssl_is_certified() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    openssl(
        d,
        "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem",
    );
    openssl(d, "pkey -in rsa.pem -pubout -outform DER -out rsa.spki");
    openssl(
        d,
        "pkcs8 -topk8 -nocrypt -in rsa.pem -outform DER -out rsa.p8",
    );
    let w = Workload {
        bound: BoundKey::from_spki_der(std::fs::read(dir.path().join("rsa.spki")).unwrap()),
        pkcs8: zeroize::Zeroizing::new(std::fs::read(dir.path().join("rsa.p8")).unwrap()),
    };
    let ca = software_ca("example.org", |_| {});
    let svid = mint(&ca, "spiffe://example.org/legacy", &w);
    check(&ca.store, &svid, &w, 0);
}

#[test]
fn ttl_is_configurable_and_bounded_by_the_ca() {
    let ca = software_ca("example.org", |o| o.ca_ttl = Duration::from_secs(7200));
    let w = workload(Curve::P256);
    let id = SpiffeId::parse("spiffe://example.org/short").unwrap();
    let t = now();
    let svid = ca
        .store
        .ca()
        .mint_x509_svid(
            &id,
            &w.bound,
            Some(Duration::from_secs(60)),
            t,
            &SystemRandom,
        )
        .unwrap();
    assert_eq!(svid.not_after().as_secs(), t.as_secs() + 60);
    // Up to the CA's own notAfter is fine.
    let ca_not_after = ca.store.ca().active().unwrap().not_after();
    let longest = Duration::from_secs(ca_not_after.as_secs() - t.as_secs());
    let svid = ca
        .store
        .ca()
        .mint_x509_svid(&id, &w.bound, Some(longest), t, &SystemRandom)
        .unwrap();
    assert_eq!(svid.not_after(), ca_not_after);
    check(&ca.store, &svid, &w, 0);
}

/// Fills every buffer with one fixed pattern (the serial is the only random input of a
/// mint).
struct FixedRandom(Vec<u8>);

impl plinth_core::SecureRandom for FixedRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), plinth_core::RandomError> {
        for (b, p) in dest.iter_mut().zip(self.0.iter().cycle()) {
            *b = *p;
        }
        Ok(())
    }
}

#[test]
fn serial_is_the_leafs_serial_value() {
    let ca = software_ca("example.org", |_| {});
    let w = workload(Curve::P256);
    let id = SpiffeId::parse("spiffe://example.org/workload/a").unwrap();
    // A sign byte in the DER (high bit set), leading zero bytes dropped by DER, and
    // neither.
    for (pattern, value, len) in [
        (vec![0xff, 0x01], vec![0xff, 0x01], 16),
        (
            vec![0x00, 0x00, 0x07, 0x80],
            vec![0x07, 0x80, 0x00, 0x00, 0x07],
            14,
        ),
        (vec![0x12, 0x34], vec![0x12, 0x34], 16),
    ] {
        let svid = ca
            .store
            .ca()
            .mint_x509_svid(&id, &w.bound, None, now(), &FixedRandom(pattern))
            .unwrap();
        let leaf = Certificate::from_der(svid.leaf_der()).unwrap();
        let in_der = leaf.serial();
        let start = in_der.iter().position(|&b| b != 0).unwrap();
        assert_eq!(svid.serial(), &in_der[start..]);
        assert!(svid.serial().starts_with(&value));
        assert_eq!(svid.serial().len(), len);
    }
}
