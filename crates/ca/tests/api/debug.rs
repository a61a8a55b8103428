//! Pins the `Debug` output of every key-holding type: public material only.

use std::sync::atomic::{AtomicU8, Ordering};

use plinth_ca::{ECDSA_P256_SHA256, SoftwareKey};
use plinth_core::{RandomError, SecureRandom, SpiffeId};

use crate::support::{now, software_ca};

/// Fills with a counter: a deterministic key for pinning.
struct CountingRandom(AtomicU8);

impl SecureRandom for CountingRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        for b in dest {
            *b = self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The private scalar inside a PKCS#8 EC key (`ECPrivateKey.privateKey`, after
/// `INTEGER 1, OCTET STRING`).
fn scalar(pkcs8: &[u8], len: u8) -> Vec<u8> {
    let marker = [0x02, 0x01, 0x01, 0x04, len];
    let at = pkcs8.windows(5).position(|w| w == marker).unwrap() + 5;
    pkcs8[at..at + usize::from(len)].to_vec()
}

#[test]
fn software_key_debug_is_pinned() {
    // The scalar is 01 02 .. 20.
    let key = SoftwareKey::generate(&ECDSA_P256_SHA256, &CountingRandom(AtomicU8::new(1))).unwrap();
    assert_eq!(
        format!("{key:?}"),
        "SoftwareKey { algorithm: ecdsa-p256-sha256, public_key: \"3059301306072a8648ce3d02010608\
         2a8648ce3d03010703420004515c3d6eb9e396b904d3feca7f54fdcd0cc1e997bf375dca515ad0a6c3b403\
         5f4536be3a50f318fbf9a5475902a221502bef0d57e08c53b2cc0a56f17d9f9354\" }"
    );
    let scalar_hex = hex::encode((1_u8..=32).collect::<Vec<u8>>());
    assert!(!format!("{key:?}").contains(&scalar_hex));
    assert!(!format!("{key:#?}").contains(&scalar_hex));
}

#[test]
fn ca_debug_shows_no_private_key() {
    let ca = software_ca("example.org", |_| {});
    let debug = format!("{:?} {:#?}", ca.store, ca.store.ca());
    for name in ["x509.key", "jwt.key"] {
        let pkcs8 = std::fs::read(ca.ca_dir().join("authorities/1").join(name)).unwrap();
        let secret = hex::encode(scalar(&pkcs8, 32));
        assert!(!debug.contains(&secret), "{name} leaked into Debug");
    }
    let authority = ca.store.ca().active().unwrap();
    let x509_public = hex::encode(authority.x509_signer().public_key().spki_der());
    assert!(debug.contains(&x509_public));
    assert_eq!(
        format!("{:?}", authority.x509_signer()),
        format!("SoftwareKey {{ algorithm: ecdsa-p256-sha256, public_key: \"{x509_public}\" }}")
    );
}

#[test]
fn jwt_svid_debug_hides_the_token() {
    let ca = software_ca("example.org", |_| {});
    let id = SpiffeId::parse("spiffe://example.org/x").unwrap();
    let svid = ca
        .store
        .ca()
        .mint_jwt_svid(&id, &["a".to_owned()], None, now())
        .unwrap();
    let debug = format!("{svid:?}");
    assert_eq!(
        debug,
        format!(
            "JwtSvid {{ spiffe_id: \"spiffe://example.org/x\", audience: [\"a\"], expiry: {:?}, \
             key_id: {:?}, .. }}",
            svid.expiry(),
            svid.key_id()
        )
    );
    assert!(!debug.contains(svid.token().split('.').nth(2).unwrap()));
}
