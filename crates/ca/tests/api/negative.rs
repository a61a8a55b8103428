//! Refusals, each with its specific error.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use plinth_ca::{CaDir, ECDSA_P384_SHA384, Error, InitOptions, KeyBackend, SoftwareKey};
use plinth_core::{BoundKey, SpiffeId, TrustDomain, UnixTime};
use plinth_crypto::{Curve, SystemRandom};
use tempfile::TempDir;

use crate::support::{now, software_ca, workload};

/// Every rule of the SPIFFE ID specification (SPIFFE-ID.md §2) is enforced by
/// `plinth_core::SpiffeId` before an ID can reach the CA, each with its own message; the
/// CA adds two rules of its own (its trust domain; a path, X.509-SVID §2).
#[test]
fn rejects_invalid_spiffe_ids_with_spiffe_id_errors() {
    let long_path = format!("/{}", "p".repeat(2048 - "spiffe://td/".len() + 1));
    for (bad, rule) in [
        ("http://example.org/x", "scheme must be spiffe://"),
        ("spiffe:example.org/x", "scheme must be spiffe://"),
        ("SPIFFE://example.org/x", "scheme must be lower-case spiffe"),
        ("spiffe:///x", "trust domain is empty"),
        ("spiffe://Example.org/x", "trust domain may hold only"),
        ("spiffe://exa%41mple.org/x", "trust domain may hold only"),
        ("spiffe://ex ample.org/x", "trust domain may hold only"),
        ("spiffe://example.org:8443/x", "a port is not allowed"),
        ("spiffe://user@example.org/x", "userinfo is not allowed"),
        ("spiffe://example.org/x?q=1", "query and fragment"),
        ("spiffe://example.org/x#frag", "query and fragment"),
        (
            "spiffe://example.org/",
            "path has an empty segment or a trailing '/'",
        ),
        ("spiffe://example.org/a//b", "path has an empty segment"),
        ("spiffe://example.org/a/./b", "'.' and '..'"),
        ("spiffe://example.org/a/../b", "'.' and '..'"),
        ("spiffe://example.org/a%2Fb", "path segments may hold only"),
        (
            "spiffe://example.org/caf\u{e9}",
            "path segments may hold only",
        ),
        (
            &format!("spiffe://{}/x", "a".repeat(256)),
            "trust domain is longer than 255 bytes",
        ),
        (
            &format!("spiffe://td{long_path}"),
            "SPIFFE ID is longer than 2048 bytes",
        ),
    ] {
        match SpiffeId::parse(bad) {
            Err(plinth_core::Error::SpiffeId(message)) => {
                assert!(message.contains(rule), "{bad}: {message}");
            }
            other => panic!("{bad} gave {other:?}"),
        }
    }

    let ca = software_ca("example.org", |_| {});
    let w = workload(Curve::P256);
    let mint = |id: &str| {
        let id = SpiffeId::parse(id).unwrap();
        ca.store
            .ca()
            .mint_x509_svid(&id, &w.bound, None, now(), &SystemRandom)
    };
    assert!(matches!(
        mint("spiffe://other.org/x"),
        Err(Error::ForeignTrustDomain { .. })
    ));
    assert!(matches!(
        mint("spiffe://example.org"),
        Err(Error::SpiffeIdWithoutPath { .. })
    ));
    let id = SpiffeId::parse("spiffe://example.org").unwrap();
    assert!(matches!(
        ca.store
            .ca()
            .mint_jwt_svid(&id, &["a".to_owned()], None, now()),
        Err(Error::SpiffeIdWithoutPath { .. })
    ));
}

#[test]
fn rejects_ttl_past_the_ca_expiry_with_ttl_beyond_ca_expiry() {
    let ca = software_ca("example.org", |o| o.ca_ttl = Duration::from_secs(1800));
    let w = workload(Curve::P256);
    let id = SpiffeId::parse("spiffe://example.org/x").unwrap();
    let t = now();
    let ca_not_after = ca.store.ca().active().unwrap().not_after();
    // The default hour outlives a half-hour CA.
    let x509 = ca
        .store
        .ca()
        .mint_x509_svid(&id, &w.bound, None, t, &SystemRandom);
    assert!(
        matches!(x509, Err(Error::TtlBeyondCaExpiry { not_after, ca_not_after: limit })
            if limit == ca_not_after && not_after.as_secs() == t.as_secs() + 3600),
        "{x509:?}"
    );
    let jwt =
        ca.store
            .ca()
            .mint_jwt_svid(&id, &["a".to_owned()], Some(Duration::from_secs(3600)), t);
    assert!(
        matches!(jwt, Err(Error::TtlBeyondCaExpiry { .. })),
        "{jwt:?}"
    );
    // Later in the CA's life even a short TTL runs past it.
    let late = UnixTime::from_secs(ca_not_after.as_secs() - 30);
    let x509 = ca.store.ca().mint_x509_svid(
        &id,
        &w.bound,
        Some(Duration::from_secs(60)),
        late,
        &SystemRandom,
    );
    assert!(
        matches!(x509, Err(Error::TtlBeyondCaExpiry { .. })),
        "{x509:?}"
    );
}

#[test]
fn rejects_bad_ttls_with_specific_errors() {
    let ca = software_ca("example.org", |_| {});
    let w = workload(Curve::P256);
    let id = SpiffeId::parse("spiffe://example.org/x").unwrap();
    let mint = |ttl| {
        ca.store
            .ca()
            .mint_x509_svid(&id, &w.bound, Some(ttl), now(), &SystemRandom)
    };
    assert!(matches!(
        mint(Duration::from_millis(999)),
        Err(Error::TtlTooShort)
    ));
    assert!(matches!(
        mint(Duration::from_secs(24 * 3600 + 1)),
        Err(Error::TtlTooLong { max, .. }) if max == Duration::from_secs(24 * 3600)
    ));
    let before = UnixTime::from_secs(now().as_secs() - 3600);
    assert!(matches!(
        ca.store
            .ca()
            .mint_x509_svid(&id, &w.bound, None, before, &SystemRandom),
        Err(Error::CaNotYetValid { .. })
    ));
}

#[test]
fn rejects_unsupported_or_ca_bound_keys() {
    let ca = software_ca("example.org", |_| {});
    let id = SpiffeId::parse("spiffe://example.org/x").unwrap();
    let mint = |key: BoundKey| {
        ca.store
            .ca()
            .mint_x509_svid(&id, &key, None, now(), &SystemRandom)
    };
    assert!(matches!(
        mint(BoundKey::from_spki_der(vec![0x30, 0x00])),
        Err(Error::UnsupportedSubjectKey)
    ));
    // A valid key with trailing bytes is not the key's SubjectPublicKeyInfo.
    let mut trailing = workload(Curve::P256).bound.spki_der().to_vec();
    trailing.push(0);
    assert!(matches!(
        mint(BoundKey::from_spki_der(trailing)),
        Err(Error::UnsupportedSubjectKey)
    ));
    // The CA's own keys are never certified as a workload's.
    let authority = ca.store.ca().active().unwrap();
    for own in [
        authority.x509_signer().public_key(),
        authority.jwt_public_key(),
    ] {
        let bound = BoundKey::from_spki_der(own.spki_der().to_vec());
        assert!(matches!(mint(bound), Err(Error::SubjectKeyIsCaKey)));
    }
}

#[test]
fn rejects_ca_key_not_matching_its_certificate_with_key_does_not_match_certificate() {
    let ca = software_ca("example.org", |_| {});
    let dir = ca.ca_dir();
    drop(ca.store);
    let key = dir.join("authorities/1/x509.key");
    std::fs::remove_file(&key).unwrap();
    let _other =
        SoftwareKey::create_file(&key, &plinth_ca::ECDSA_P256_SHA256, &SystemRandom).unwrap();
    let opened = CaDir::open(&dir, None, now());
    assert!(
        matches!(&opened, Err(Error::KeyDoesNotMatchCertificate { what }) if what == "authority 1 X.509 CA key"),
        "{opened:?}"
    );

    // The same with the certificate swapped instead of the key.
    let ca = software_ca("example.org", |_| {});
    let other = software_ca("example.org", |_| {});
    let dir = ca.ca_dir();
    drop(ca.store);
    let _bytes = std::fs::copy(
        other.ca_dir().join("authorities/1/chain.pem"),
        dir.join("authorities/1/chain.pem"),
    )
    .unwrap();
    assert!(matches!(
        CaDir::open(&dir, None, now()),
        Err(Error::KeyDoesNotMatchCertificate { .. })
    ));
}

#[test]
fn rejects_key_file_with_loose_permissions_with_key_file_permissions() {
    let ca = software_ca("example.org", |_| {});
    let dir = ca.ca_dir();
    drop(ca.store);
    for (name, mode) in [("x509.key", 0o640), ("jwt.key", 0o604), ("x509.key", 0o660)] {
        let key = dir.join("authorities/1").join(name);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        let opened = CaDir::open(&dir, None, now());
        assert!(
            matches!(&opened, Err(Error::KeyFilePermissions { path, mode: m }) if *path == key && *m == mode),
            "{opened:?}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let _reopened = CaDir::open(&dir, None, now()).unwrap();
    // Keys are written 0600 whatever the umask.
    let mode = std::fs::metadata(dir.join("authorities/1/x509.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn rejects_a_key_of_another_algorithm_with_key_rejected() {
    let ca = software_ca("example.org", |_| {});
    let dir = ca.ca_dir();
    drop(ca.store);
    let key = dir.join("authorities/1/jwt.key");
    std::fs::remove_file(&key).unwrap();
    let _p384 = SoftwareKey::create_file(&key, &ECDSA_P384_SHA384, &SystemRandom).unwrap();
    assert!(matches!(
        CaDir::open(&dir, None, now()),
        Err(Error::KeyRejected {
            algorithm: "ecdsa-p256-sha256",
            ..
        })
    ));
}

#[test]
fn rejects_a_second_init_and_a_missing_pin() {
    let ca = software_ca("example.org", |_| {});
    let options = InitOptions::new(TrustDomain::new("example.org").unwrap());
    assert!(matches!(
        CaDir::init(&ca.ca_dir(), &options, None, None, now(), &SystemRandom),
        Err(Error::AlreadyExists { .. })
    ));
    let dir = TempDir::new().unwrap();
    let mut options = options;
    options.backend = KeyBackend::Pkcs11 {
        module: "/usr/lib/softhsm/libsofthsm2.so".into(),
        token_label: "none".to_owned(),
    };
    assert!(matches!(
        CaDir::init(dir.path(), &options, None, None, now(), &SystemRandom),
        Err(Error::Pkcs11PinRequired)
    ));
}
