//! Nitro attestation documents: COSE_Sign1 and CBOR payload parsing, every accessor of a
//! parsed document, and verification (chain, cache, signature, claims, freshness) at the
//! time of a real document.
//!
//! The first input byte picks the mode: even, the rest of the input is the document; odd,
//! the rest is a list of 3-byte patches (big-endian offset, new byte) applied to a real
//! document, optionally cut short, so that mutations reach deep into the payload and the
//! chain without a seed corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_core::UnixTime;
use plinth_nitro::{ChainCache, NitroTrust, ParsedDocument, verify_with_cache};

const DOC: &[u8] =
    include_bytes!("../../testdata/nitro/anjuna/attester/sample_attestation_doc_full.bin");
const DOC_TIME_MS: u64 = 1_706_120_065_635;

fn exercise(bytes: &[u8]) {
    if let Ok(parsed) = ParsedDocument::parse(bytes) {
        let doc = parsed.unverified_document();
        let _ = (doc.module_id(), doc.instance_id(), doc.enclave_id(), doc.timestamp());
        let _ = (doc.pcrs().len(), doc.pcr(0), doc.is_debug(), doc.digest_alg());
        let _ = (doc.certificate(), doc.cabundle(), doc.public_key(), doc.user_data(), doc.nonce());
    }
    let mut cache = ChainCache::new(2);
    let trust = NitroTrust::aws_root_g1();
    for now in [DOC_TIME_MS, DOC_TIME_MS + 1_000] {
        if let Ok(verified) = verify_with_cache(bytes, &trust, UnixTime::from_millis(now), &mut cache) {
            let _ = (verified.claims(), verified.bound_key(), verified.chain_source());
            let _ = verified.verify_nonce(b"Nonce\n");
            let _ = verified.verify_age(UnixTime::from_millis(now), 60_000, 1_000);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        exercise(rest);
        return;
    }
    let mut doc = DOC.to_vec();
    for patch in rest.chunks_exact(3) {
        let offset = usize::from(u16::from_be_bytes([patch[0], patch[1]])) % doc.len();
        doc[offset] = patch[2];
    }
    if mode & 2 != 0 {
        let keep = usize::from(mode >> 2).saturating_mul(doc.len()) / 64;
        doc.truncate(keep);
    }
    exercise(&doc);
});
