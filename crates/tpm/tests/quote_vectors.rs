//! Real TPM evidence: GCE vTPM quotes (three banks, nonce 0x9009) and AK creation
//! attestations from an Infineon TPM and a Google vTPM, plus negatives on each check.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use plinth_core::{Digest, HashAlg};
use plinth_tpm::{Error, PcrValues, Public, verify_creation, verify_quote};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/tpm/quotes");
const NONCE: [u8; 2] = [0x90, 0x09];

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn gce_pcrs() -> PcrValues {
    let json: serde_json::Value = serde_json::from_slice(&read("gce-cos85/pcrs.json")).unwrap();
    let mut pcrs = PcrValues::default();
    for (bank, values) in json["pcrs"].as_object().unwrap() {
        let bank: HashAlg = bank.parse().unwrap();
        for (index, hex) in values.as_object().unwrap() {
            let digest = Digest::from_hex(bank, hex.as_str().unwrap()).unwrap();
            pcrs.insert(bank, index.parse().unwrap(), digest).unwrap();
        }
    }
    pcrs
}

struct GceQuote {
    ak: Public,
    attest: Vec<u8>,
    signature: Vec<u8>,
}

fn gce_quote(bank: &str) -> GceQuote {
    GceQuote {
        ak: Public::from_tpmt(&read("gce-cos85/ak_pub.tpmt_public.bin")).unwrap(),
        attest: read(&format!("gce-cos85/quote_{bank}.tpms_attest.bin")),
        signature: read(&format!("gce-cos85/quote_{bank}.tpmt_signature.bin")),
    }
}

#[test]
fn gce_quotes_verify_in_all_three_banks() {
    let pcrs = gce_pcrs();
    for (name, bank) in [
        ("sha1", HashAlg::Sha1),
        ("sha256", HashAlg::Sha256),
        ("sha384", HashAlg::Sha384),
    ] {
        let q = gce_quote(name);
        let verified = verify_quote(&q.ak, &q.attest, &q.signature, &NONCE, &pcrs).unwrap();
        assert_eq!(verified.signing_hash(), HashAlg::Sha256);
        assert_eq!(verified.qualifying_data(), NONCE);
        assert_eq!(verified.selection().len(), 1);
        assert_eq!(verified.selection()[0].bank, bank);
        assert_eq!(
            verified.selection()[0].indices,
            (0..24).collect::<Vec<u8>>()
        );
        // Only the quoted bank's values are carried as verified.
        assert_eq!(verified.pcrs().iter().count(), 24);
        assert!(verified.pcrs().iter().all(|(b, _, _)| b == bank));
        assert_eq!(verified.pcrs().get(bank, 0), pcrs.get(bank, 0));
    }
}

#[test]
fn gce_quote_clock_info_is_exposed() {
    let q = gce_quote("sha256");
    let verified = verify_quote(&q.ak, &q.attest, &q.signature, &NONCE, &gce_pcrs()).unwrap();
    let clock = verified.clock_info();
    assert!(clock.safe);
    assert_eq!(clock.clock, 0x0001_e9e6_6c00);
    assert_eq!((clock.reset_count, clock.restart_count), (10, 0));
}

#[test]
fn gce_quote_claims_carry_the_quoted_pcrs_only() {
    let q = gce_quote("sha384");
    let verified = verify_quote(&q.ak, &q.attest, &q.signature, &NONCE, &gce_pcrs()).unwrap();
    let claims = verified.claims();
    assert_eq!(claims.platform, plinth_core::Platform::Tpm);
    assert_eq!(claims.nonce.as_deref(), Some(&NONCE[..]));
    assert_eq!(claims.measurements.len(), 24);
    assert_eq!(claims.measurements[7].name, "sha384:pcr7");
    assert_eq!(
        Some(&claims.measurements[7].value),
        gce_pcrs().get(HashAlg::Sha384, 7)
    );
    assert!(claims.bound_key.is_none() && claims.hardware_id.is_none());
}

#[test]
fn rejects_wrong_nonce_with_qualifying_data_mismatch() {
    let q = gce_quote("sha256");
    for nonce in [&[0x90, 0x08][..], &[0x90], &[0x90, 0x09, 0x00], &[]] {
        assert_eq!(
            verify_quote(&q.ak, &q.attest, &q.signature, nonce, &gce_pcrs()),
            Err(Error::QualifyingDataMismatch)
        );
    }
}

#[test]
fn rejects_changed_pcr_with_pcr_digest_mismatch() {
    let mut pcrs = gce_pcrs();
    let mut bytes = pcrs.get(HashAlg::Sha256, 7).unwrap().as_bytes().to_vec();
    bytes[0] ^= 1;
    pcrs.insert(
        HashAlg::Sha256,
        7,
        Digest::new(HashAlg::Sha256, &bytes).unwrap(),
    )
    .unwrap();
    let q = gce_quote("sha256");
    assert_eq!(
        verify_quote(&q.ak, &q.attest, &q.signature, &NONCE, &pcrs),
        Err(Error::PcrDigestMismatch)
    );
    // The other banks are untouched, so their quotes still verify.
    let q = gce_quote("sha1");
    assert!(verify_quote(&q.ak, &q.attest, &q.signature, &NONCE, &pcrs).is_ok());
}

#[test]
fn rejects_unsupplied_pcr_with_missing_pcr_value() {
    let full = gce_pcrs();
    let mut pcrs = PcrValues::default();
    for (bank, index, value) in full.iter().filter(|(_, index, _)| *index != 23) {
        pcrs.insert(bank, index, value.clone()).unwrap();
    }
    let q = gce_quote("sha384");
    assert_eq!(
        verify_quote(&q.ak, &q.attest, &q.signature, &NONCE, &pcrs),
        Err(Error::MissingPcrValue {
            bank: HashAlg::Sha384,
            index: 23
        })
    );
}

#[test]
fn rejects_flipped_signature_bit_with_signature_invalid() {
    let mut q = gce_quote("sha256");
    let last = q.signature.len() - 1;
    q.signature[last] ^= 0x01;
    assert_eq!(
        verify_quote(&q.ak, &q.attest, &q.signature, &NONCE, &gce_pcrs()),
        Err(Error::SignatureInvalid)
    );
}

#[test]
fn rejects_flipped_attest_bit_with_signature_invalid() {
    let mut q = gce_quote("sha256");
    q.attest[0x2d] ^= 0x01; // inside extraData
    assert_eq!(
        verify_quote(&q.ak, &q.attest, &q.signature, &NONCE, &gce_pcrs()),
        Err(Error::SignatureInvalid)
    );
}

#[test]
fn rejects_other_key_with_signature_invalid() {
    let q = gce_quote("sha256");
    let mut raw = read("gce-cos85/ak_pub.tpmt_public.bin");
    let last = raw.len() - 1;
    raw[last] ^= 0x02; // another (odd) modulus: a different RSA key, same scheme
    let other = Public::from_tpmt(&raw).unwrap();
    assert_eq!(
        verify_quote(&other, &q.attest, &q.signature, &NONCE, &gce_pcrs()),
        Err(Error::SignatureInvalid)
    );
}

#[test]
fn rejects_key_with_other_fixed_scheme_with_signature_scheme_mismatch() {
    // The Infineon AK fixes RSASSA/SHA-1; the GCE quote is signed RSASSA/SHA-256.
    let q = gce_quote("sha256");
    let other = Public::from_tpmt(&read("ak-certify/infineon_rsa2048_Public.bin")).unwrap();
    assert_eq!(
        verify_quote(&other, &q.attest, &q.signature, &NONCE, &gce_pcrs()),
        Err(Error::SignatureSchemeMismatch)
    );
}

#[test]
fn rejects_truncated_structures_with_truncated() {
    let q = gce_quote("sha256");
    for len in [0, 1, 5, 40, q.attest.len() - 1] {
        let err =
            verify_quote(&q.ak, &q.attest[..len], &q.signature, &NONCE, &gce_pcrs()).unwrap_err();
        assert_eq!(
            err,
            Error::Truncated {
                structure: "TPMS_ATTEST"
            },
            "attest cut at {len}"
        );
    }
    for len in [0, 3, q.signature.len() - 1] {
        let err =
            verify_quote(&q.ak, &q.attest, &q.signature[..len], &NONCE, &gce_pcrs()).unwrap_err();
        assert_eq!(
            err,
            Error::Truncated {
                structure: "TPMT_SIGNATURE"
            },
            "signature cut at {len}"
        );
    }
}

#[test]
fn rejects_trailing_bytes_with_trailing_bytes() {
    let q = gce_quote("sha256");
    let mut attest = q.attest.clone();
    attest.push(0);
    assert_eq!(
        verify_quote(&q.ak, &attest, &q.signature, &NONCE, &gce_pcrs()),
        Err(Error::TrailingBytes {
            structure: "TPMS_ATTEST",
            extra: 1
        })
    );
    let mut signature = q.signature.clone();
    signature.extend_from_slice(&[0, 0]);
    assert_eq!(
        verify_quote(&q.ak, &q.attest, &signature, &NONCE, &gce_pcrs()),
        Err(Error::TrailingBytes {
            structure: "TPMT_SIGNATURE",
            extra: 2
        })
    );
}

#[test]
fn rejects_overlong_size_field_with_too_large() {
    let q = gce_quote("sha256");
    // extraData's TPM2B size sits at offset 0x2a..0x2c (after magic, type, 34-byte name).
    let mut attest = q.attest.clone();
    attest[0x2a..0x2c].copy_from_slice(&100_u16.to_be_bytes());
    assert_eq!(
        verify_quote(&q.ak, &attest, &q.signature, &NONCE, &gce_pcrs()),
        Err(Error::TooLarge {
            field: "extraData",
            len: 100,
            max: 64
        })
    );
    let mut signature = q.signature.clone();
    signature[4..6].copy_from_slice(&0x0201_u16.to_be_bytes());
    assert_eq!(
        verify_quote(&q.ak, &q.attest, &signature, &NONCE, &gce_pcrs()),
        Err(Error::TooLarge {
            field: "RSA signature",
            len: 0x201,
            max: 512
        })
    );
}

#[test]
fn rejects_unrestricted_ak_with_ak_attributes() {
    let mut raw = read("gce-cos85/ak_pub.tpmt_public.bin");
    raw[5] &= !0x01; // clear `restricted` (bit 16 of objectAttributes at offset 4..8)
    let ak = Public::from_tpmt(&raw).unwrap();
    let q = gce_quote("sha256");
    assert_eq!(
        verify_quote(&ak, &q.attest, &q.signature, &NONCE, &gce_pcrs()),
        Err(Error::AkAttributes("not restricted"))
    );
}

fn creation(prefix: &str) -> Result<plinth_tpm::VerifiedCreation, Error> {
    let public = read(&format!("ak-certify/{prefix}_Public.bin"));
    let ak = Public::from_tpmt(&public).unwrap();
    verify_creation(
        &ak,
        &read(&format!("ak-certify/{prefix}_CreateAttestation.bin")),
        &read(&format!("ak-certify/{prefix}_CreateSignature.bin")),
        &public,
        &read(&format!("ak-certify/{prefix}_CreateData.bin")),
        &[],
    )
}

#[test]
fn ak_creation_attestations_verify() {
    for prefix in ["infineon_rsa2048", "ecc_p256"] {
        let verified = creation(prefix).unwrap_or_else(|e| panic!("{prefix}: {e}"));
        assert!(verified.public().attributes().restricted(), "{prefix}");
    }
}

#[test]
fn rejects_wrong_creation_data_with_creation_hash_mismatch() {
    let public = read("ak-certify/ecc_p256_Public.bin");
    let ak = Public::from_tpmt(&public).unwrap();
    let mut data = read("ak-certify/ecc_p256_CreateData.bin");
    data[3] ^= 1;
    assert_eq!(
        verify_creation(
            &ak,
            &read("ak-certify/ecc_p256_CreateAttestation.bin"),
            &read("ak-certify/ecc_p256_CreateSignature.bin"),
            &public,
            &data,
            &[],
        )
        .map(|_| ()),
        Err(Error::CreationHashMismatch)
    );
}

#[test]
fn rejects_quote_as_creation_with_wrong_attest_type() {
    let q = gce_quote("sha256");
    let public = read("gce-cos85/ak_pub.tpmt_public.bin");
    assert_eq!(
        verify_creation(&q.ak, &q.attest, &q.signature, &public, &[], &NONCE).map(|_| ()),
        Err(Error::WrongAttestType {
            expected: "creation",
            found: 0x8018
        })
    );
}
