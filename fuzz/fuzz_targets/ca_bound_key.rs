//! Minting an X.509-SVID for arbitrary "bound key" bytes: the SubjectPublicKeyInfo that
//! evidence carries (a Nitro document's `public_key`, for one) reaches the CA's key parser.
//! Whatever the bytes, minting must not panic, and a minted leaf certifies exactly them.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use plinth_ca::{CaDir, InitOptions};
use plinth_core::{BoundKey, SpiffeId, TrustDomain, UnixTime};
use plinth_crypto::SystemRandom;

/// 2026-01-01T00:00:00Z: the CA is made and minted from at this fixed time.
const NOW: UnixTime = UnixTime::from_secs(1_767_225_600);

fn ca() -> &'static (CaDir, SpiffeId) {
    static CA: OnceLock<(CaDir, SpiffeId)> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("plinth-fuzz-ca-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let options = InitOptions::new(TrustDomain::new("fuzz.example").unwrap());
        let store = CaDir::init(&dir, &options, None, None, NOW, &SystemRandom).unwrap();
        (
            store,
            SpiffeId::parse("spiffe://fuzz.example/workload").unwrap(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let (store, id) = ca();
    let key = BoundKey::from_spki_der(data.to_vec());
    if let Ok(svid) = store
        .ca()
        .mint_x509_svid(id, &key, None, NOW, &SystemRandom)
    {
        let leaf =
            plinth_x509::Certificate::from_der(svid.leaf_der()).expect("a minted leaf parses");
        assert_eq!(
            leaf.spki_der(),
            data,
            "the leaf certifies exactly the bound key"
        );
    }
});
