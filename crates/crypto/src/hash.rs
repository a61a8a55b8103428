use aws_lc_rs::{digest as lc_digest, hmac as lc_hmac};
use plinth_core::{Digest, HashAlg};

fn digest_algorithm(alg: HashAlg) -> &'static lc_digest::Algorithm {
    match alg {
        HashAlg::Sha1 => &lc_digest::SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => &lc_digest::SHA256,
        HashAlg::Sha384 => &lc_digest::SHA384,
        HashAlg::Sha512 => &lc_digest::SHA512,
    }
}

fn hmac_algorithm(alg: HashAlg) -> lc_hmac::Algorithm {
    match alg {
        HashAlg::Sha1 => lc_hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => lc_hmac::HMAC_SHA256,
        HashAlg::Sha384 => lc_hmac::HMAC_SHA384,
        HashAlg::Sha512 => lc_hmac::HMAC_SHA512,
    }
}

#[expect(
    clippy::expect_used,
    reason = "invariant: the provider outputs the algorithm's length"
)]
fn to_digest(alg: HashAlg, out: &lc_digest::Digest) -> Digest {
    Digest::new(alg, out.as_ref()).expect("digest length matches its algorithm")
}

/// Hashes `data` in one call.
pub fn digest(alg: HashAlg, data: &[u8]) -> Digest {
    to_digest(alg, &lc_digest::digest(digest_algorithm(alg), data))
}

/// An incremental hash: for PCR extension, event-log replay and digests over many parts.
#[derive(Clone)]
pub struct Hasher {
    alg: HashAlg,
    context: lc_digest::Context,
}

impl Hasher {
    /// Starts a hash.
    pub fn new(alg: HashAlg) -> Self {
        Self {
            alg,
            context: lc_digest::Context::new(digest_algorithm(alg)),
        }
    }

    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.context.update(data);
    }

    /// Finishes the hash.
    pub fn finish(self) -> Digest {
        to_digest(self.alg, &self.context.finish())
    }
}

/// HMAC of `data` under `key`.
pub fn hmac(alg: HashAlg, key: &[u8], data: &[&[u8]]) -> Vec<u8> {
    let key = lc_hmac::Key::new(hmac_algorithm(alg), key);
    let mut context = lc_hmac::Context::with_key(&key);
    for part in data {
        context.update(part);
    }
    context.sign().as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(
            digest(HashAlg::Sha256, b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Hasher::new(HashAlg::Sha1);
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(
            h.finish().to_hex(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hex::encode(hmac(
                HashAlg::Sha256,
                b"Jefe",
                &[b"what do ya want ", b"for nothing?"]
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
