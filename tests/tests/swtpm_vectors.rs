//! The swtpm quotes committed under `testdata/tpm/swtpm-quotes` (made by
//! `scripts/bench-checkquote.sh`, used by the benchmarks) verify, and only with their nonce.
#![cfg(test)]

use std::path::PathBuf;

use plinth_core::{Digest, HashAlg};
use plinth_tpm::{Error, PcrValues, Public, VerifiedQuote, verify_quote};

fn dir(alg: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/tpm/swtpm-quotes"
    ))
    .join(alg)
}

fn read(alg: &str, name: &str) -> Vec<u8> {
    std::fs::read(dir(alg).join(name)).unwrap()
}

fn nonce(alg: &str) -> Vec<u8> {
    hex::decode(String::from_utf8(read(alg, "nonce.hex")).unwrap().trim()).unwrap()
}

fn pcrs(alg: &str) -> PcrValues {
    let json: serde_json::Value = serde_json::from_slice(&read(alg, "pcrs.json")).unwrap();
    assert_eq!(
        json["nonce_hex"].as_str().unwrap().as_bytes(),
        hex::encode(nonce(alg)).as_bytes()
    );
    let mut pcrs = PcrValues::default();
    for (bank, values) in json["pcrs"].as_object().unwrap() {
        let bank: HashAlg = bank.parse().unwrap();
        for (index, value) in values.as_object().unwrap() {
            let digest = Digest::from_hex(bank, value.as_str().unwrap()).unwrap();
            pcrs.insert(bank, index.parse().unwrap(), digest).unwrap();
        }
    }
    pcrs
}

fn verify(alg: &str, nonce: &[u8]) -> Result<VerifiedQuote, Error> {
    let ak = Public::from_tpmt(&read(alg, "ak_pub.tpmt_public.bin")).unwrap();
    assert_eq!(
        Public::from_tpm2b(&read(alg, "ak_pub.tpm2b_public.bin")).unwrap(),
        ak
    );
    verify_quote(
        &ak,
        &read(alg, "quote_sha256.tpms_attest.bin"),
        &read(alg, "quote_sha256.tpmt_signature.bin"),
        nonce,
        &pcrs(alg),
    )
}

#[test]
fn swtpm_quote_vectors_verify() {
    for alg in ["ecc", "rsa"] {
        let quote = verify(alg, &nonce(alg)).unwrap();
        assert_eq!(
            quote.pcrs().iter().count(),
            9,
            "{alg}: sha256 PCRs 0-7 and 16"
        );
        assert_ne!(
            quote.pcrs().get(HashAlg::Sha256, 16),
            Some(&Digest::zero(HashAlg::Sha256))
        );
    }
}

#[test]
fn rejects_swtpm_quote_vector_with_other_nonce_with_qualifying_data_mismatch() {
    for alg in ["ecc", "rsa"] {
        let mut other = nonce(alg);
        other[31] ^= 1;
        assert_eq!(
            verify(alg, &other).unwrap_err(),
            Error::QualifyingDataMismatch,
            "{alg}"
        );
    }
}
