//! plinth-nitro against real Nitro attestation documents (testdata/nitro, see
//! testdata/PROVENANCE.md) and negatives derived from them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use base64::Engine as _;
use ciborium::value::Value;
use coset::{CborSerializable, CoseSign1};
use plinth_core::{HashAlg, Platform, UnixTime};
use plinth_nitro::{
    AWS_NITRO_ROOT_G1_SHA256, ChainCache, ChainSource, Error, MAX_DOCUMENT_LEN, NitroTrust,
    ParsedDocument, Part, VerifiedDocument, verify, verify_with_cache,
};

/// One real document and the facts SOURCES.md records for it.
struct Vector {
    path: &'static str,
    module_id: &'static str,
    timestamp_ms: u64,
    debug: bool,
    nonce_len: Option<usize>,
    user_data: bool,
    public_key: bool,
}

const VECTORS: [Vector; 7] = [
    Vector {
        path: "evervault/valid-attestation-doc-bytes",
        module_id: "i-020b6af9246d90e92-enc0183d09086c24190",
        timestamp_ms: 1_665_651_482_136,
        debug: false,
        nonce_len: Some(256),
        user_data: false,
        public_key: false,
    },
    Vector {
        path: "evervault/debug-mode-attestation-doc-bytes",
        module_id: "i-03ad7cdb817437eeb-enc0183cc7569b3f6e1",
        timestamp_ms: 1_665_582_606_081,
        debug: true,
        nonce_len: None,
        user_data: true,
        public_key: true,
    },
    Vector {
        path: "evervault/valid-attestation-doc-base64",
        module_id: "i-0918f6c55e3b61d89-enc018aa8b8e2285d13",
        timestamp_ms: 1_695_049_410_860,
        debug: true,
        nonce_len: Some(256),
        user_data: true,
        public_key: false,
    },
    Vector {
        path: "anjuna/attestdoc/sample_prod_doc.bin",
        module_id: "i-078824548edcf6519-enc01784234ec227b58",
        timestamp_ms: 1_616_018_515_685,
        debug: false,
        nonce_len: None,
        user_data: false,
        public_key: false,
    },
    Vector {
        path: "anjuna/attestdoc/sample_prod_doc_with_publickey.bin",
        module_id: "i-0a6d65e7122308898-enc017846bcd2f820da",
        timestamp_ms: 1_616_602_241_734,
        debug: false,
        nonce_len: None,
        user_data: false,
        public_key: true,
    },
    Vector {
        path: "anjuna/attester/sample_prod_doc.bin",
        module_id: "i-07ceff4b3ab54305f-enc018aba0189375080",
        timestamp_ms: 1_695_337_797_673,
        debug: false,
        nonce_len: None,
        user_data: true,
        public_key: false,
    },
    Vector {
        path: "anjuna/attester/sample_attestation_doc_full.bin",
        module_id: "i-0e4fe5de7ee5abe78-enc018d3cadd7d66279",
        timestamp_ms: 1_706_120_065_635,
        debug: true,
        nonce_len: Some(6),
        user_data: true,
        public_key: true,
    },
];

/// The date these tests were written: every Nitro chain in testdata has long expired.
const TODAY: &str = "2026-11-23T00:00:00Z";

fn testdata(path: &str) -> Vec<u8> {
    let full = format!("{}/../../testdata/nitro/{path}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    if path.ends_with("base64") {
        let text: String = String::from_utf8(bytes)
            .unwrap()
            .split_whitespace()
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap()
    } else {
        bytes
    }
}

fn vector(path: &str) -> (&'static Vector, Vec<u8>) {
    let v = VECTORS.iter().find(|v| v.path == path).unwrap();
    (v, testdata(v.path))
}

fn at(v: &Vector) -> UnixTime {
    UnixTime::from_millis(v.timestamp_ms)
}

fn trust() -> NitroTrust {
    NitroTrust::aws_root_g1()
}

/// The sample production document, verified at its own timestamp: the base of most negatives.
fn base() -> (&'static Vector, Vec<u8>) {
    vector("anjuna/attestdoc/sample_prod_doc.bin")
}

fn verify_base(bytes: &[u8]) -> Result<VerifiedDocument, Error> {
    verify(bytes, &trust(), at(base().0))
}

/// Re-wraps `doc` with its payload map changed by `edit`, keeping the protected header and
/// signature (which no longer match: these negatives must fail before the signature).
fn with_payload(doc: &[u8], edit: impl FnOnce(&mut Vec<(Value, Value)>)) -> Vec<u8> {
    let mut sign1 = CoseSign1::from_slice(doc).unwrap();
    let payload: Value = ciborium::de::from_reader(sign1.payload.as_deref().unwrap()).unwrap();
    let Value::Map(mut entries) = payload else {
        panic!("payload is not a map")
    };
    edit(&mut entries);
    let mut encoded = Vec::new();
    ciborium::ser::into_writer(&Value::Map(entries), &mut encoded).unwrap();
    sign1.payload = Some(encoded);
    sign1.to_vec().unwrap()
}

fn set_field(entries: &mut [(Value, Value)], name: &str, value: Value) {
    let slot = entries
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some(name))
        .unwrap();
    slot.1 = value;
}

fn field_mut<'a>(entries: &'a mut [(Value, Value)], name: &str) -> &'a mut Value {
    &mut entries
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some(name))
        .unwrap()
        .1
}

// ---------------------------------------------------------------------------------------
// Real documents.

#[test]
fn every_vector_verifies_at_its_own_timestamp() {
    for v in &VECTORS {
        let bytes = testdata(v.path);
        let verified = verify(&bytes, &trust(), at(v))
            .unwrap_or_else(|e| panic!("{} does not verify: {e}", v.path));
        let doc = verified.document();
        assert_eq!(doc.module_id(), v.module_id, "{}", v.path);
        assert_eq!(doc.timestamp(), at(v), "{}", v.path);
        assert_eq!(verified.is_debug(), v.debug, "{}", v.path);
        assert_eq!(doc.nonce().map(<[u8]>::len), v.nonce_len, "{}", v.path);
        assert_eq!(doc.user_data().is_some(), v.user_data, "{}", v.path);
        assert_eq!(doc.public_key().is_some(), v.public_key, "{}", v.path);
        assert_eq!(doc.pcrs().len(), 16, "{}", v.path);
        assert!(
            doc.pcrs().values().all(|p| p.alg() == HashAlg::Sha384),
            "{}",
            v.path
        );
        assert_eq!(doc.cabundle().len(), 4, "{}", v.path);
        assert_eq!(verified.chain_source(), ChainSource::Verified);
        let instance = v.module_id.split("-enc").next().unwrap();
        assert_eq!(doc.instance_id(), Some(instance), "{}", v.path);
        assert_eq!(
            doc.enclave_id().map(|e| e.starts_with("enc")),
            Some(true),
            "{}",
            v.path
        );
    }
}

#[test]
fn every_vector_rejects_today_with_expired_certificate() {
    let today = UnixTime::parse(TODAY).unwrap();
    for v in &VECTORS {
        match verify(&testdata(v.path), &trust(), today) {
            Err(Error::Chain {
                reason: plinth_x509::Error::Expired { now, .. },
            }) => {
                assert_eq!(now, today, "{}", v.path);
            }
            other => panic!("{}: expected an expiry error, got {other:?}", v.path),
        }
    }
}

#[test]
fn debug_documents_are_reported_as_debug() {
    for v in &VECTORS {
        let verified = verify(&testdata(v.path), &trust(), at(v)).unwrap();
        let zero = verified
            .document()
            .pcr(0)
            .unwrap()
            .as_bytes()
            .iter()
            .all(|&b| b == 0);
        assert_eq!(zero, v.debug, "{}", v.path);
        assert_eq!(verified.claims().debug, v.debug, "{}", v.path);
    }
}

#[test]
fn pinned_fingerprint_is_the_shipped_aws_root() {
    // The zip as AWS publishes it, with the digest AWS states for it.
    let zip = testdata("aws-root/AWS_NitroEnclaves_Root-G1.zip");
    assert_eq!(
        plinth_crypto::digest(HashAlg::Sha256, &zip).to_hex(),
        "8cf60e2b2efca96c6a9e71e851d00c1b6991cc09eadbe64a6a1d1b1eb9faff7c"
    );
    let pem = testdata("aws-root/root.pem");
    let roots = plinth_x509::certificates_from_pem(&pem).unwrap();
    assert_eq!(roots.len(), 1);
    let root = &roots[0];
    assert_eq!(root.fingerprint().as_bytes(), AWS_NITRO_ROOT_G1_SHA256);
    assert_eq!(root.subject().common_name(), Some("aws.nitro-enclaves"));
    for v in &VECTORS {
        let parsed = ParsedDocument::parse(&testdata(v.path)).unwrap();
        assert_eq!(
            parsed.unverified_document().cabundle()[0],
            root.der(),
            "{}",
            v.path
        );
    }
    assert_eq!(
        NitroTrust::from_hex(
            "64:1A:03:21:A3:E2:44:EF:E4:56:46:31:95:D6:06:31:7E:D7:CD:CC:3C:17:56:E0:98:93:F3:C6:8F:79:BB:5B"
        ),
        Ok(NitroTrust::default())
    );
    assert_eq!(NitroTrust::from_hex("641a03"), Err(Error::FingerprintHex));
}

#[test]
fn claims_carry_pcrs_module_nonce_and_time() {
    let (v, bytes) = vector("anjuna/attester/sample_attestation_doc_full.bin");
    let verified = verify(&bytes, &trust(), at(v)).unwrap();
    let claims = verified.claims();
    assert_eq!(claims.platform, Platform::Nitro);
    assert_eq!(claims.hardware_id.as_deref(), Some(v.module_id));
    assert_eq!(claims.measurements.len(), 16);
    assert_eq!(claims.measurements[0].name, "pcr0");
    assert_eq!(
        &claims.measurements[8].value,
        verified.document().pcr(8).unwrap()
    );
    assert_eq!(claims.nonce.as_deref(), verified.document().nonce());
    assert_eq!(claims.produced_at, Some(at(v)));
    assert!(claims.debug);
    let bound = claims.bound_key.unwrap();
    assert_eq!(bound.spki_der(), verified.document().public_key().unwrap());
}

#[test]
fn bound_key_is_the_public_key_as_spki() {
    let (v, bytes) = vector("anjuna/attestdoc/sample_prod_doc_with_publickey.bin");
    let verified = verify(&bytes, &trust(), at(v)).unwrap();
    let key = verified.bound_key().unwrap();
    let parsed = plinth_crypto::PublicKey::from_spki_der(key.spki_der()).unwrap();
    assert_eq!(parsed.kind(), plinth_crypto::KeyKind::Rsa { bits: 2048 });
}

#[test]
fn rejects_public_key_that_is_not_spki_with_public_key_not_spki() {
    // Evervault's debug document carries the text "my super secret key" as public_key.
    let (v, bytes) = vector("evervault/debug-mode-attestation-doc-bytes");
    let verified = verify(&bytes, &trust(), at(v)).unwrap();
    assert_eq!(verified.bound_key(), Err(Error::PublicKeyNotSpki));
    assert_eq!(verified.claims().bound_key, None);
}

#[test]
fn rejects_absent_public_key_with_public_key_missing() {
    let (_, bytes) = base();
    assert_eq!(
        verify_base(&bytes).unwrap().bound_key(),
        Err(Error::PublicKeyMissing)
    );
}

#[test]
fn accepts_tagged_cose_sign1() {
    let (_, bytes) = base();
    let mut tagged = vec![0xd2];
    tagged.extend_from_slice(&bytes);
    let verified = verify_base(&tagged).unwrap();
    assert_eq!(verified.document(), verify_base(&bytes).unwrap().document());
}

// ---------------------------------------------------------------------------------------
// Trust and signature negatives.

#[test]
fn rejects_wrong_pinned_root_with_root_not_pinned() {
    let (v, bytes) = base();
    let mut pin = AWS_NITRO_ROOT_G1_SHA256;
    pin[31] ^= 1;
    let result = verify(&bytes, &NitroTrust::pinned_root_sha256(pin), at(v));
    assert_eq!(
        result.unwrap_err(),
        Error::RootNotPinned {
            found: hex::encode(AWS_NITRO_ROOT_G1_SHA256),
            pinned: hex::encode(pin),
        }
    );
}

#[test]
fn rejects_tampered_payload_byte_with_signature_invalid() {
    let (_, bytes) = base();
    // Change one hex digit of the module id inside the signed payload: still well formed.
    let needle = b"enc01784234ec227b58";
    let at_id = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let mut tampered = bytes.clone();
    tampered[at_id + needle.len() - 1] = b'9';
    assert_eq!(verify_base(&tampered).unwrap_err(), Error::SignatureInvalid);
}

#[test]
fn rejects_tampered_pcr_with_signature_invalid() {
    let (_, bytes) = base();
    let parsed = ParsedDocument::parse(&bytes).unwrap();
    let pcr0 = parsed
        .unverified_document()
        .pcr(0)
        .unwrap()
        .as_bytes()
        .to_vec();
    let offset = bytes.windows(pcr0.len()).position(|w| w == pcr0).unwrap();
    let mut tampered = bytes.clone();
    tampered[offset] ^= 0x01;
    assert_eq!(verify_base(&tampered).unwrap_err(), Error::SignatureInvalid);
}

#[test]
fn rejects_tampered_signature_with_signature_invalid() {
    let (_, mut bytes) = base();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    assert_eq!(verify_base(&bytes).unwrap_err(), Error::SignatureInvalid);
}

#[test]
fn rejects_tampered_protected_header_with_signature_invalid() {
    // {1: -35} re-encoded with a non-minimal integer (39 00 22 instead of 38 22): the same
    // header to a decoder, other bytes to the signature. A verifier that re-encoded the
    // header would accept this document.
    let (_, bytes) = base();
    assert_eq!(&bytes[..6], [0x84, 0x44, 0xa1, 0x01, 0x38, 0x22]);
    let mut tampered = vec![0x84, 0x45, 0xa1, 0x01, 0x39, 0x00, 0x22];
    tampered.extend_from_slice(&bytes[6..]);
    let parsed = ParsedDocument::parse(&tampered).unwrap();
    assert_eq!(
        parsed.unverified_document(),
        verify_base(&bytes).unwrap().document()
    );
    assert_eq!(verify_base(&tampered).unwrap_err(), Error::SignatureInvalid);
}

#[test]
fn rejects_extra_protected_parameter_with_unexpected_header_parameter() {
    // {1: -35, 4: h'00'}: a kid next to alg.
    let (_, bytes) = base();
    let mut tampered = vec![0x84, 0x47, 0xa2, 0x01, 0x38, 0x22, 0x04, 0x41, 0x00];
    tampered.extend_from_slice(&bytes[6..]);
    assert_eq!(
        verify_base(&tampered).unwrap_err(),
        Error::UnexpectedHeaderParameter {
            label: "4 (kid)".into(),
            which: "protected"
        }
    );
}

#[test]
fn rejects_unprotected_parameter_with_unexpected_header_parameter() {
    // Unprotected {4: h'00'} instead of {}.
    let (_, bytes) = base();
    assert_eq!(bytes[6], 0xa0);
    let mut tampered = bytes[..6].to_vec();
    tampered.extend_from_slice(&[0xa1, 0x04, 0x41, 0x00]);
    tampered.extend_from_slice(&bytes[7..]);
    assert_eq!(
        verify_base(&tampered).unwrap_err(),
        Error::UnexpectedHeaderParameter {
            label: "4 (kid)".into(),
            which: "unprotected"
        }
    );
}

#[test]
fn rejects_alg_es512_with_algorithm_not_es384() {
    let (_, bytes) = base();
    let mut tampered = bytes.clone();
    tampered[5] = 0x23; // -36: ES512
    assert_eq!(
        verify_base(&tampered).unwrap_err(),
        Error::AlgorithmNotEs384 {
            found: "-36".into()
        }
    );
}

#[test]
fn rejects_missing_alg_with_algorithm_not_es384() {
    // Protected header = empty bstr.
    let (_, bytes) = base();
    let mut tampered = vec![0x84, 0x40];
    tampered.extend_from_slice(&bytes[6..]);
    assert_eq!(
        verify_base(&tampered).unwrap_err(),
        Error::AlgorithmNotEs384 {
            found: "absent".into()
        }
    );
}

// ---------------------------------------------------------------------------------------
// Structure negatives.

#[test]
fn rejects_truncated_cbor_with_truncated() {
    let (_, bytes) = base();
    for cut in [1, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        assert_eq!(
            verify_base(&bytes[..cut]).unwrap_err(),
            Error::Truncated {
                part: Part::CoseSign1
            },
            "cut at {cut}"
        );
    }
}

#[test]
fn rejects_truncated_payload_with_truncated() {
    let (_, bytes) = base();
    let mut sign1 = CoseSign1::from_slice(&bytes).unwrap();
    let payload = sign1.payload.as_mut().unwrap();
    payload.truncate(payload.len() - 10);
    let rewrapped = sign1.to_vec().unwrap();
    assert_eq!(
        verify_base(&rewrapped).unwrap_err(),
        Error::Truncated {
            part: Part::Payload
        }
    );
}

#[test]
fn rejects_trailing_bytes_with_trailing_data() {
    let (_, bytes) = base();
    let mut padded = bytes.clone();
    padded.extend_from_slice(&[0x00, 0x00]);
    assert_eq!(
        verify_base(&padded).unwrap_err(),
        Error::TrailingData {
            part: Part::CoseSign1,
            len: 2
        }
    );
}

#[test]
fn rejects_trailing_bytes_in_payload_with_trailing_data() {
    let (_, bytes) = base();
    let mut sign1 = CoseSign1::from_slice(&bytes).unwrap();
    sign1.payload.as_mut().unwrap().push(0xf6);
    let rewrapped = sign1.to_vec().unwrap();
    assert_eq!(
        verify_base(&rewrapped).unwrap_err(),
        Error::TrailingData {
            part: Part::Payload,
            len: 1
        }
    );
}

#[test]
fn rejects_other_tag_with_unexpected_tag() {
    let (_, bytes) = base();
    let mut tagged = vec![0xd1]; // tag 17: COSE_Mac0
    tagged.extend_from_slice(&bytes);
    assert_eq!(
        verify_base(&tagged).unwrap_err(),
        Error::UnexpectedTag { tag: 17 }
    );
}

#[test]
fn rejects_oversize_document_with_document_too_large() {
    let big = vec![0x84; MAX_DOCUMENT_LEN + 1];
    assert_eq!(
        verify_base(&big).unwrap_err(),
        Error::DocumentTooLarge {
            len: MAX_DOCUMENT_LEN + 1,
            max: MAX_DOCUMENT_LEN
        }
    );
}

#[test]
fn rejects_detached_payload_with_payload_missing() {
    let (_, bytes) = base();
    let mut sign1 = CoseSign1::from_slice(&bytes).unwrap();
    sign1.payload = None;
    assert_eq!(
        verify_base(&sign1.to_vec().unwrap()).unwrap_err(),
        Error::PayloadMissing
    );
}

#[test]
fn rejects_short_signature_with_signature_length() {
    let (_, bytes) = base();
    let mut sign1 = CoseSign1::from_slice(&bytes).unwrap();
    sign1.signature.truncate(64);
    assert_eq!(
        verify_base(&sign1.to_vec().unwrap()).unwrap_err(),
        Error::SignatureLength { len: 64 }
    );
}

// ---------------------------------------------------------------------------------------
// Payload negatives.

#[test]
fn rejects_unknown_field_with_unknown_field() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        m.push((Value::Text("debug".into()), Value::Bool(false)));
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::UnknownField {
            name: "debug".into()
        }
    );
}

#[test]
fn rejects_duplicate_field_with_duplicate_field() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        m.push((Value::Text("nonce".into()), Value::Null));
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::DuplicateField {
            name: "nonce".into()
        }
    );
}

#[test]
fn rejects_missing_field_with_missing_field() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        m.retain(|(k, _)| k.as_text() != Some("cabundle"));
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::MissingField { name: "cabundle" }
    );
}

#[test]
fn rejects_mistyped_timestamp_with_field_type() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        set_field(m, "timestamp", Value::Text("1616018515685".into()));
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::FieldType {
            field: "timestamp",
            expected: "an unsigned integer"
        }
    );
}

#[test]
fn rejects_mistyped_nonce_with_field_type() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| set_field(m, "nonce", Value::Text("abc".into())));
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::FieldType {
            field: "nonce",
            expected: "a byte string or null"
        }
    );
}

#[test]
fn rejects_non_text_key_with_key_not_text() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| m.push((Value::Integer(1.into()), Value::Null)));
    assert_eq!(verify_base(&doc).unwrap_err(), Error::KeyNotText);
}

#[test]
fn rejects_other_digest_with_digest_not_sha384() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        set_field(m, "digest", Value::Text("SHA256".into()));
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::DigestNotSha384 {
            found: "SHA256".into()
        }
    );
}

#[test]
fn rejects_zero_timestamp_with_timestamp_zero() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        set_field(m, "timestamp", Value::Integer(0.into()));
    });
    assert_eq!(verify_base(&doc).unwrap_err(), Error::TimestampZero);
}

#[test]
fn rejects_pcr_of_wrong_length_with_pcr_length() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        let Value::Map(pcrs) = field_mut(m, "pcrs") else {
            panic!()
        };
        pcrs[5].1 = Value::Bytes(vec![0; 47]);
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::PcrLength { index: 5, len: 47 }
    );
}

#[test]
fn rejects_pcr_index_over_31_with_pcr_index() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        let Value::Map(pcrs) = field_mut(m, "pcrs") else {
            panic!()
        };
        pcrs[15].0 = Value::Integer(32.into());
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::PcrIndex { index: 32 }
    );
}

#[test]
fn accepts_pcr_index_31_and_all_pcr_lengths() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        let Value::Map(pcrs) = field_mut(m, "pcrs") else {
            panic!()
        };
        pcrs[13] = (Value::Integer(31.into()), Value::Bytes(vec![1; 32]));
        pcrs[14].1 = Value::Bytes(vec![2; 64]);
    });
    let parsed = ParsedDocument::parse(&doc).unwrap();
    assert_eq!(
        parsed.unverified_document().pcr(31).unwrap().alg(),
        HashAlg::Sha256
    );
    assert_eq!(
        parsed.unverified_document().pcr(14).unwrap().alg(),
        HashAlg::Sha512
    );
    // Parsed, but the signature covers the original payload.
    assert_eq!(verify_base(&doc).unwrap_err(), Error::SignatureInvalid);
}

#[test]
fn rejects_duplicate_pcr_with_duplicate_pcr() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        let Value::Map(pcrs) = field_mut(m, "pcrs") else {
            panic!()
        };
        pcrs[15].0 = Value::Integer(3.into());
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::DuplicatePcr { index: 3 }
    );
}

#[test]
fn rejects_missing_pcr0_with_missing_pcr() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        let Value::Map(pcrs) = field_mut(m, "pcrs") else {
            panic!()
        };
        let _pcr0 = pcrs.remove(0);
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::MissingPcr { index: 0 }
    );
}

#[test]
fn rejects_oversize_user_data_with_field_size() {
    let (_, bytes) = base();
    let ok = with_payload(&bytes, |m| {
        set_field(m, "user_data", Value::Bytes(vec![7; 512]));
    });
    assert!(ParsedDocument::parse(&ok).is_ok());
    let doc = with_payload(&bytes, |m| {
        set_field(m, "user_data", Value::Bytes(vec![7; 513]));
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::FieldSize {
            field: "user_data",
            len: 513,
            min: 0,
            max: 512
        }
    );
}

#[test]
fn rejects_oversize_nonce_with_field_size() {
    let (_, bytes) = base();
    let ok = with_payload(&bytes, |m| {
        set_field(m, "nonce", Value::Bytes(vec![7; 512]));
    });
    assert!(ParsedDocument::parse(&ok).is_ok());
    let doc = with_payload(&bytes, |m| {
        set_field(m, "nonce", Value::Bytes(vec![7; 513]));
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::FieldSize {
            field: "nonce",
            len: 513,
            min: 0,
            max: 512
        }
    );
}

#[test]
fn rejects_oversize_public_key_with_field_size() {
    let (_, bytes) = base();
    let ok = with_payload(&bytes, |m| {
        set_field(m, "public_key", Value::Bytes(vec![7; 1024]));
    });
    assert!(ParsedDocument::parse(&ok).is_ok());
    let doc = with_payload(&bytes, |m| {
        set_field(m, "public_key", Value::Bytes(vec![7; 1025]));
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::FieldSize {
            field: "public_key",
            len: 1025,
            min: 1,
            max: 1024
        }
    );
}

#[test]
fn rejects_empty_public_key_with_field_size() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        set_field(m, "public_key", Value::Bytes(Vec::new()));
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::FieldSize {
            field: "public_key",
            len: 0,
            min: 1,
            max: 1024
        }
    );
}

#[test]
fn rejects_oversize_cabundle_with_field_size() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        let Value::Array(bundle) = field_mut(m, "cabundle") else {
            panic!()
        };
        let last = bundle.last().unwrap().clone();
        bundle.resize(9, last);
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::FieldSize {
            field: "cabundle",
            len: 9,
            min: 1,
            max: 8
        }
    );
}

#[test]
fn rejects_empty_module_id_with_field_size() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        set_field(m, "module_id", Value::Text(String::new()));
    });
    assert_eq!(
        verify_base(&doc).unwrap_err(),
        Error::FieldSize {
            field: "module_id",
            len: 0,
            min: 1,
            max: 256
        }
    );
}

#[test]
fn rejects_payload_that_is_not_a_map_with_payload_not_map() {
    let (_, bytes) = base();
    let mut sign1 = CoseSign1::from_slice(&bytes).unwrap();
    sign1.payload = Some(vec![0x80]);
    assert_eq!(
        verify_base(&sign1.to_vec().unwrap()).unwrap_err(),
        Error::PayloadNotMap
    );
}

#[test]
fn rejects_garbage_leaf_with_certificate_parse() {
    let (_, bytes) = base();
    let doc = with_payload(&bytes, |m| {
        set_field(m, "certificate", Value::Bytes(vec![0x30, 0x00]));
    });
    assert!(matches!(
        verify_base(&doc).unwrap_err(),
        Error::CertificateParse {
            position: plinth_nitro::ChainPosition::Leaf,
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------
// Freshness.

#[test]
fn verifies_matching_nonce() {
    let (v, bytes) = vector("anjuna/attester/sample_attestation_doc_full.bin");
    let verified = verify(&bytes, &trust(), at(v)).unwrap();
    let nonce = verified.document().nonce().unwrap().to_vec();
    assert_eq!(verified.verify_nonce(&nonce), Ok(()));
}

#[test]
fn rejects_other_nonce_with_nonce_mismatch() {
    let (v, bytes) = vector("evervault/valid-attestation-doc-bytes");
    let verified = verify(&bytes, &trust(), at(v)).unwrap();
    let mut nonce = verified.document().nonce().unwrap().to_vec();
    nonce[100] ^= 1;
    assert_eq!(verified.verify_nonce(&nonce), Err(Error::NonceMismatch));
    // Never padded or truncated: a prefix is not a match either.
    assert_eq!(
        verified.verify_nonce(&nonce[..32]),
        Err(Error::NonceMismatch)
    );
}

#[test]
fn rejects_document_without_nonce_with_nonce_missing() {
    let (_, bytes) = base();
    assert_eq!(
        verify_base(&bytes).unwrap().verify_nonce(&[0; 32]),
        Err(Error::NonceMissing)
    );
}

#[test]
fn rejects_old_document_with_document_too_old() {
    let (v, bytes) = base();
    let now = UnixTime::from_millis(v.timestamp_ms + 60_000);
    let verified = verify(&bytes, &trust(), now).unwrap();
    assert_eq!(verified.verify_age(now, 60_000, 0), Ok(()));
    assert_eq!(
        verified.verify_age(now, 59_999, 0),
        Err(Error::DocumentTooOld {
            timestamp: at(v),
            now,
            max_age_ms: 59_999
        })
    );
}

#[test]
fn rejects_future_document_with_timestamp_in_future() {
    let (v, bytes) = base();
    let verified = verify_base(&bytes).unwrap();
    let now = UnixTime::from_millis(v.timestamp_ms - 2_000);
    assert_eq!(verified.verify_age(now, 60_000, 2_000), Ok(()));
    assert_eq!(
        verified.verify_age(now, 60_000, 1_999),
        Err(Error::TimestampInFuture {
            timestamp: at(v),
            now
        })
    );
}

// ---------------------------------------------------------------------------------------
// Chain cache.

#[test]
fn cache_skips_chain_checks_for_a_second_document_from_the_same_enclave() {
    let (v, bytes) = base();
    let mut cache = ChainCache::new(4);
    let first = verify_with_cache(&bytes, &trust(), at(v), &mut cache).unwrap();
    assert_eq!(first.chain_source(), ChainSource::Verified);
    let later = UnixTime::from_millis(v.timestamp_ms + 1_000);
    let second = verify_with_cache(&bytes, &trust(), later, &mut cache).unwrap();
    assert_eq!(second.chain_source(), ChainSource::Cached);
    let stats = cache.stats();
    assert_eq!(
        (
            stats.full_verifications,
            stats.hits,
            stats.leaf_verifications
        ),
        (1, 1, 0)
    );
    assert_eq!(cache.len(), 1);
}

#[test]
fn cache_still_checks_the_document_signature() {
    let (v, bytes) = base();
    let mut cache = ChainCache::new(4);
    let _ = verify_with_cache(&bytes, &trust(), at(v), &mut cache).unwrap();
    let mut tampered = bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(
        verify_with_cache(&tampered, &trust(), at(v), &mut cache).unwrap_err(),
        Error::SignatureInvalid
    );
    assert_eq!(cache.stats().hits, 1);
}

#[test]
fn cache_is_keyed_by_the_pinned_root() {
    let (v, bytes) = base();
    let mut cache = ChainCache::new(4);
    let _ = verify_with_cache(&bytes, &trust(), at(v), &mut cache).unwrap();
    let mut pin = AWS_NITRO_ROOT_G1_SHA256;
    pin[0] ^= 1;
    assert!(matches!(
        verify_with_cache(
            &bytes,
            &NitroTrust::pinned_root_sha256(pin),
            at(v),
            &mut cache
        ),
        Err(Error::RootNotPinned { .. })
    ));
}

#[test]
fn cache_evicts_least_recently_used_at_capacity() {
    // Newest first, so that no entry has expired at the next document's time and eviction
    // (not expiry) has to make room.
    let mut order: Vec<&Vector> = VECTORS.iter().collect();
    order.sort_by_key(|v| std::cmp::Reverse(v.timestamp_ms));
    let (a, b, c) = (order[0], order[1], order[2]);
    let mut cache = ChainCache::new(2);
    let check = |cache: &mut ChainCache, v: &Vector| {
        verify_with_cache(&testdata(v.path), &trust(), at(v), cache)
            .unwrap()
            .chain_source()
    };
    assert_eq!(check(&mut cache, a), ChainSource::Verified);
    assert_eq!(check(&mut cache, b), ChainSource::Verified);
    assert_eq!(check(&mut cache, a), ChainSource::Cached); // b is now least recently used
    assert_eq!(check(&mut cache, c), ChainSource::Verified);
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.stats().evictions, 1);
    assert_eq!(check(&mut cache, a), ChainSource::Cached);
    assert_eq!(check(&mut cache, c), ChainSource::Cached);
    // At b's time c's chain has expired (c is the oldest): making room drops expired
    // entries before evicting anything.
    assert!(c.timestamp_ms < b.timestamp_ms);
    assert_eq!(check(&mut cache, b), ChainSource::Verified);
    assert_eq!((cache.stats().evictions, cache.stats().expirations), (1, 1));
    assert_eq!(cache.len(), 2);
}

#[test]
fn cache_with_zero_capacity_keeps_nothing() {
    let (v, bytes) = base();
    let mut cache = ChainCache::new(0);
    for _ in 0..2 {
        let verified = verify_with_cache(&bytes, &trust(), at(v), &mut cache).unwrap();
        assert_eq!(verified.chain_source(), ChainSource::Verified);
    }
    assert!(cache.is_empty());
}

#[test]
fn cache_entries_expire_at_earliest_not_after() {
    let (v, bytes) = base();
    let parsed = ParsedDocument::parse(&bytes).unwrap();
    let doc = parsed.unverified_document();
    let not_after = |der: &[u8]| {
        plinth_x509::Certificate::from_der(der)
            .unwrap()
            .validity()
            .not_after()
    };
    let leaf_not_after = not_after(doc.certificate());
    let ca_not_after = doc.cabundle().iter().map(|c| not_after(c)).min().unwrap();
    assert!(leaf_not_after < ca_not_after);

    let mut cache = ChainCache::new(4);
    let _ = verify_with_cache(&bytes, &trust(), at(v), &mut cache).unwrap();
    assert_eq!(cache.earliest_expiry(), Some(ca_not_after));

    // The last millisecond of the leaf's last valid second: still served from the cache.
    let leaf_end = UnixTime::from_millis(leaf_not_after.as_millis() + 999);
    let cached = verify_with_cache(&bytes, &trust(), leaf_end, &mut cache).unwrap();
    assert_eq!(cached.chain_source(), ChainSource::Cached);

    // One second later the leaf has expired: not served, and rejected as expired; the
    // intermediate chain is still valid, so it stays.
    let after_leaf = UnixTime::from_millis(leaf_not_after.as_millis() + 1_000);
    assert!(matches!(
        verify_with_cache(&bytes, &trust(), after_leaf, &mut cache),
        Err(Error::Chain {
            reason: plinth_x509::Error::Expired { .. }
        })
    ));
    assert_eq!(cache.len(), 1);

    // After the chain's earliest notAfter the entry itself is dropped.
    let after_chain = UnixTime::from_millis(ca_not_after.as_millis() + 1_000);
    assert!(matches!(
        verify_with_cache(&bytes, &trust(), after_chain, &mut cache),
        Err(Error::Chain {
            reason: plinth_x509::Error::Expired { .. }
        })
    ));
    assert!(cache.is_empty());
    assert_eq!(cache.stats().expirations, 1);
    assert_eq!(cache.stats().hits, 1);
}

#[test]
fn cache_is_not_used_before_not_before() {
    let (v, bytes) = base();
    let mut cache = ChainCache::new(4);
    let _ = verify_with_cache(&bytes, &trust(), at(v), &mut cache).unwrap();
    let before = UnixTime::from_millis(v.timestamp_ms - 3_600_000);
    assert!(matches!(
        verify_with_cache(&bytes, &trust(), before, &mut cache),
        Err(Error::Chain {
            reason: plinth_x509::Error::NotYetValid { .. }
        })
    ));
    assert_eq!(cache.len(), 1);
}
