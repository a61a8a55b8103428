//! Rotation: prepare → activate → retire keeps every SVID verifiable until it expires,
//! and only then drops the old authority from the bundle.

use plinth_ca::{AuthorityState, CaDir, Error};
use plinth_core::{SpiffeId, UnixTime};
use plinth_crypto::{Curve, SystemRandom};

use crate::jwt::spiffe_jwt_bundles;
use crate::support::{assert_openssl_accepts, now, openssl_verify, software_ca, workload};

fn later(t: UnixTime, secs: u64) -> UnixTime {
    UnixTime::from_millis(t.as_millis() + secs * 1000)
}

fn states(store: &CaDir) -> Vec<(u32, AuthorityState)> {
    store
        .ca()
        .authorities()
        .iter()
        .map(|a| (a.id(), a.state()))
        .collect()
}

#[test]
fn svids_stay_verifiable_through_rotation_and_not_after_retirement() {
    let test_ca = software_ca("example.org", |_| {});
    let ca_dir = test_ca.ca_dir();
    let mut store = test_ca.store;
    let w = workload(Curve::P256);
    let id = SpiffeId::parse("spiffe://example.org/rotating").unwrap();
    let audience = ["peer".to_owned()];

    // Before: authority 1 signs.
    let t0 = now();
    let old = store
        .ca()
        .mint_x509_svid(&id, &w.bound, None, t0, &SystemRandom)
        .unwrap();
    let old_jwt = store.ca().mint_jwt_svid(&id, &audience, None, t0).unwrap();
    assert_eq!(old.authority(), 1);

    // Prepare: authority 2 joins the bundle but does not sign yet.
    let t1 = later(t0, 1);
    assert_eq!(store.prepare(None, t1, &SystemRandom).unwrap(), 2);
    assert_eq!(
        states(&store),
        [(1, AuthorityState::Active), (2, AuthorityState::Prepared)]
    );
    let overlap = store.ca().bundle();
    assert_eq!(overlap.x509_authorities().len(), 2);
    assert_eq!(overlap.jwt_authorities().len(), 2);
    assert_eq!(overlap.sequence(), 2);
    assert_openssl_accepts(&overlap.x509_pem(), &old, t1);
    let still_old = store
        .ca()
        .mint_x509_svid(&id, &w.bound, None, t1, &SystemRandom)
        .unwrap();
    assert_eq!(still_old.authority(), 1);
    assert!(matches!(
        store.prepare(None, t1, &SystemRandom),
        Err(Error::AlreadyPrepared { id: 2 })
    ));

    // Activate: not before the new bundle has had one refresh hint (300 s) to spread.
    let too_early = store.activate(2, later(t1, 299));
    assert!(
        matches!(too_early, Err(Error::ActivateTooEarly { id: 2, earliest }) if earliest == later(t1, 300)),
        "{too_early:?}"
    );
    let t2 = later(t1, 300);
    store.activate(2, t2).unwrap();
    assert_eq!(
        states(&store),
        [(1, AuthorityState::Superseded), (2, AuthorityState::Active)]
    );
    let new = store
        .ca()
        .mint_x509_svid(&id, &w.bound, None, t2, &SystemRandom)
        .unwrap();
    assert_eq!(new.authority(), 2);
    // During the overlap the one bundle verifies both.
    let bundle = store.ca().bundle();
    assert_eq!(
        bundle.sequence(),
        2,
        "activation does not change the bundle"
    );
    assert_openssl_accepts(&bundle.x509_pem(), &old, t2);
    assert_openssl_accepts(&bundle.x509_pem(), &new, t2);
    let jwt_bundles = spiffe_jwt_bundles(&bundle);
    let _ok =
        spiffe::JwtSvid::parse_and_validate(old_jwt.token(), &jwt_bundles, &["peer"]).unwrap();

    // Retire: not while an SVID of authority 1 may still be valid (max TTL 24 h).
    let last = later(t2, 24 * 3600);
    let too_early = store.retire(1, UnixTime::from_millis(last.as_millis() - 1));
    assert!(
        matches!(too_early, Err(Error::RetireTooEarly { id: 1, earliest }) if earliest == last)
    );
    assert!(matches!(
        store.retire(2, last),
        Err(Error::InvalidRotation {
            id: 2,
            state: AuthorityState::Active,
            ..
        })
    ));

    // The state survives a restart.
    drop(store);
    let mut store = CaDir::open(&ca_dir, None, t2).unwrap();
    assert_eq!(
        states(&store),
        [(1, AuthorityState::Superseded), (2, AuthorityState::Active)]
    );
    store.retire(1, last).unwrap();
    assert_eq!(states(&store), [(2, AuthorityState::Active)]);

    // After retirement: authority 1 is gone from the bundle, and the old SVID no longer
    // verifies, even at a time within its own validity.
    let after = store.ca().bundle();
    assert_eq!(after.x509_authorities().len(), 1);
    assert_eq!(after.sequence(), 3);
    let refused = openssl_verify(&after.x509_pem(), &old, t1, "sslclient").unwrap_err();
    assert!(
        refused.contains("unable to get local issuer certificate"),
        "{refused}"
    );
    assert_openssl_accepts(&after.x509_pem(), &new, t2);
    let jwt_bundles = spiffe_jwt_bundles(&after);
    assert!(spiffe::JwtSvid::parse_and_validate(old_jwt.token(), &jwt_bundles, &["peer"]).is_err());

    // Its keys are destroyed; its certificates are kept for audit.
    assert!(!ca_dir.join("authorities/1").exists());
    assert!(ca_dir.join("retired/1/chain.pem").exists());
    assert!(!ca_dir.join("retired/1/x509.key").exists());
    assert!(!ca_dir.join("retired/1/jwt.key").exists());
    drop(store);
    let reopened = CaDir::open(&ca_dir, None, t2).unwrap();
    assert_eq!(reopened.ca().bundle(), after);
}
