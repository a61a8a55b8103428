//! The NSM's CBOR messages: the attestation request and its response (see the crate docs
//! for the sources of every shape and limit here).

use std::fmt;

use ciborium::value::Value;

use crate::error::{Error, Field};

/// Longest request the Linux driver accepts (`NSM_REQUEST_MAX_SIZE`, uapi `linux/nsm.h`).
pub const NSM_REQUEST_MAX_SIZE: usize = 0x1000;
/// Longest response the Linux driver returns (`NSM_RESPONSE_MAX_SIZE`, uapi `linux/nsm.h`).
pub const NSM_RESPONSE_MAX_SIZE: usize = 0x3000;
/// Longest `nonce` (AWS `attestation_process.md` §3.2.2.2).
pub const MAX_NONCE_LEN: usize = 512;
/// Longest `user_data` (AWS `attestation_process.md` §3.2.2.2).
pub const MAX_USER_DATA_LEN: usize = 512;
/// Longest `public_key` (AWS `attestation_process.md` §3.2.2.2; at least one byte).
pub const MAX_PUBLIC_KEY_LEN: usize = 1024;

/// Deepest CBOR nesting decoded: a response is a map of a map of a byte string.
const MAX_RESPONSE_DEPTH: usize = 4;
/// Longest operation or error-code name carried into an error.
const MAX_NAME_IN_ERROR: usize = 64;

/// The optional fields of an attestation request; the NSM copies each one given into the
/// document it signs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttestationRequest<'a> {
    /// `user_data`: up to [`MAX_USER_DATA_LEN`] bytes.
    pub user_data: Option<&'a [u8]>,
    /// `nonce`: up to [`MAX_NONCE_LEN`] bytes.
    pub nonce: Option<&'a [u8]>,
    /// `public_key`: 1 to [`MAX_PUBLIC_KEY_LEN`] bytes (plinth sends a
    /// SubjectPublicKeyInfo DER; the NSM accepts any bytes).
    pub public_key: Option<&'a [u8]>,
}

/// The error codes the NSM answers with (`ErrorCode` in aws/aws-nitro-enclaves-nsm-api
/// `src/api/mod.rs`; sent as their names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `Success` (not expected inside an error).
    Success,
    /// `InvalidArgument`: an input argument is invalid.
    InvalidArgument,
    /// `InvalidIndex`: a PCR index is out of bounds.
    InvalidIndex,
    /// `InvalidResponse`: the response does not match the request.
    InvalidResponse,
    /// `ReadOnlyIndex`: the PCR is locked.
    ReadOnlyIndex,
    /// `InvalidOperation`: the NSM lacks the capability.
    InvalidOperation,
    /// `BufferTooSmall`: the output buffer is too small.
    BufferTooSmall,
    /// `InputTooLarge`: an input is too large.
    InputTooLarge,
    /// `InternalError`: the NSM failed internally.
    InternalError,
}

impl ErrorCode {
    const ALL: [(Self, &'static str); 9] = [
        (Self::Success, "Success"),
        (Self::InvalidArgument, "InvalidArgument"),
        (Self::InvalidIndex, "InvalidIndex"),
        (Self::InvalidResponse, "InvalidResponse"),
        (Self::ReadOnlyIndex, "ReadOnlyIndex"),
        (Self::InvalidOperation, "InvalidOperation"),
        (Self::BufferTooSmall, "BufferTooSmall"),
        (Self::InputTooLarge, "InputTooLarge"),
        (Self::InternalError, "InternalError"),
    ];

    /// The code's name on the wire.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(code, _)| *code == self)
            .map_or("?", |(_, name)| name)
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(code, _)| *code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Encodes `request` as the NSM's `Attestation` request:
/// `{"Attestation": {"user_data": …, "nonce": …, "public_key": …}}`, each field a byte
/// string or null, in that order.
///
/// # Errors
/// [`Error::FieldTooLong`] or [`Error::PublicKeyEmpty`] for a field outside the NSM's
/// limits; [`Error::RequestTooLarge`] (not reachable within those limits);
/// [`Error::Encode`].
pub fn encode_attestation_request(request: &AttestationRequest<'_>) -> Result<Vec<u8>, Error> {
    check_len(Field::UserData, request.user_data, MAX_USER_DATA_LEN)?;
    check_len(Field::Nonce, request.nonce, MAX_NONCE_LEN)?;
    check_len(Field::PublicKey, request.public_key, MAX_PUBLIC_KEY_LEN)?;
    if request.public_key.is_some_and(<[u8]>::is_empty) {
        return Err(Error::PublicKeyEmpty);
    }
    let field = |name: &str, bytes: Option<&[u8]>| {
        (
            Value::Text(name.to_owned()),
            bytes.map_or(Value::Null, |b| Value::Bytes(b.to_vec())),
        )
    };
    let message = Value::Map(vec![(
        Value::Text("Attestation".to_owned()),
        Value::Map(vec![
            field("user_data", request.user_data),
            field("nonce", request.nonce),
            field("public_key", request.public_key),
        ]),
    )]);
    let mut out = Vec::new();
    ciborium::ser::into_writer(&message, &mut out).map_err(|e| Error::Encode(e.to_string()))?;
    if out.len() > NSM_REQUEST_MAX_SIZE {
        return Err(Error::RequestTooLarge {
            len: out.len(),
            max: NSM_REQUEST_MAX_SIZE,
        });
    }
    Ok(out)
}

fn check_len(field: Field, bytes: Option<&[u8]>, max: usize) -> Result<(), Error> {
    match bytes {
        Some(b) if b.len() > max => Err(Error::FieldTooLong {
            field,
            len: b.len(),
            max,
        }),
        _ => Ok(()),
    }
}

/// Decodes the NSM's answer to an attestation request: the attestation document (a
/// COSE_Sign1, returned as the bytes received, not parsed here). Exactly one CBOR item is
/// accepted, either `{"Attestation": {"document": bstr}}` or `{"Error": text}`; nothing
/// else, no extra fields and no trailing bytes.
///
/// # Errors
/// [`Error::ResponseTooLarge`], [`Error::Truncated`], [`Error::Malformed`],
/// [`Error::TooDeep`], [`Error::TrailingData`], [`Error::WrongShape`],
/// [`Error::UnexpectedOperation`], [`Error::EmptyDocument`]; and for an NSM refusal
/// [`Error::Nsm`] with its code, or [`Error::UnknownErrorCode`].
pub fn decode_response(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    if bytes.len() > NSM_RESPONSE_MAX_SIZE {
        return Err(Error::ResponseTooLarge {
            len: bytes.len(),
            max: NSM_RESPONSE_MAX_SIZE,
        });
    }
    let mut reader = bytes;
    let value: Value =
        ciborium::de::from_reader_with_recursion_limit(&mut reader, MAX_RESPONSE_DEPTH).map_err(
            |e| match e {
                ciborium::de::Error::Io(_) => Error::Truncated,
                ciborium::de::Error::Syntax(offset) => Error::Malformed { offset },
                ciborium::de::Error::Semantic(offset, _) => Error::Malformed {
                    offset: offset.unwrap_or(0),
                },
                ciborium::de::Error::RecursionLimitExceeded => Error::TooDeep,
            },
        )?;
    if !reader.is_empty() {
        return Err(Error::TrailingData { len: reader.len() });
    }
    let (operation, body) = single_entry(value, "the response is not a one-entry map")?;
    let Value::Text(operation) = operation else {
        return Err(Error::WrongShape("the operation name is not text"));
    };
    match operation.as_str() {
        "Attestation" => {
            let (name, document) =
                single_entry(body, "the attestation response is not a one-entry map")?;
            if name != Value::Text("document".to_owned()) {
                return Err(Error::WrongShape(
                    "the attestation response has no document field",
                ));
            }
            let Value::Bytes(document) = document else {
                return Err(Error::WrongShape("the document is not a byte string"));
            };
            if document.is_empty() {
                return Err(Error::EmptyDocument);
            }
            Ok(document)
        }
        "Error" => {
            let Value::Text(code) = body else {
                return Err(Error::WrongShape("the error code is not text"));
            };
            Err(ErrorCode::from_name(&code)
                .map_or_else(|| Error::UnknownErrorCode { code: clip(code) }, Error::Nsm))
        }
        _ => Err(Error::UnexpectedOperation {
            operation: clip(operation),
        }),
    }
}

/// The one (key, value) of a one-entry map.
fn single_entry(value: Value, shape: &'static str) -> Result<(Value, Value), Error> {
    let Value::Map(entries) = value else {
        return Err(Error::WrongShape(shape));
    };
    let [entry] = <[(Value, Value); 1]>::try_from(entries).map_err(|_| Error::WrongShape(shape))?;
    Ok(entry)
}

/// At most [`MAX_NAME_IN_ERROR`] bytes of `name`, cut at a character boundary.
fn clip(mut name: String) -> String {
    if name.len() > MAX_NAME_IN_ERROR {
        let mut end = MAX_NAME_IN_ERROR;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(rel: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../../testdata/nitro/{rel}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// `{"Attestation": {"document": document}}`, written out byte by byte (RFC 8949
    /// headers), independently of the decoder under test.
    fn attestation_response(document: &[u8]) -> Vec<u8> {
        let mut out = vec![0xA1, 0x6B];
        out.extend_from_slice(b"Attestation");
        out.extend_from_slice(&[0xA1, 0x68]);
        out.extend_from_slice(b"document");
        let len = u16::try_from(document.len()).unwrap();
        out.push(0x59);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(document);
        out
    }

    fn error_response(code: &str) -> Vec<u8> {
        let mut out = vec![0xA1, 0x65];
        out.extend_from_slice(b"Error");
        out.push(0x60 + u8::try_from(code.len()).unwrap());
        out.extend_from_slice(code.as_bytes());
        out
    }

    #[test]
    fn encodes_an_attestation_request_byte_for_byte() {
        let nonce = [0x5a_u8; 32];
        let key = [0x30_u8; 91]; // the length of a P-256 SubjectPublicKeyInfo
        let request = AttestationRequest {
            user_data: None,
            nonce: Some(&nonce),
            public_key: Some(&key),
        };
        let mut expected = vec![0xA1, 0x6B]; // map(1), text(11)
        expected.extend_from_slice(b"Attestation");
        expected.push(0xA3); // map(3)
        expected.push(0x69); // text(9)
        expected.extend_from_slice(b"user_data");
        expected.push(0xF6); // null
        expected.push(0x65); // text(5)
        expected.extend_from_slice(b"nonce");
        expected.extend_from_slice(&[0x58, 32]); // bytes(32)
        expected.extend_from_slice(&nonce);
        expected.push(0x6A); // text(10)
        expected.extend_from_slice(b"public_key");
        expected.extend_from_slice(&[0x58, 91]); // bytes(91)
        expected.extend_from_slice(&key);
        assert_eq!(encode_attestation_request(&request).unwrap(), expected);
    }

    #[test]
    fn encodes_every_field_under_its_name_and_absent_ones_as_null() {
        let request = AttestationRequest {
            user_data: Some(b"user"),
            nonce: None,
            public_key: Some(b"key"),
        };
        let bytes = encode_attestation_request(&request).unwrap();
        let value: Value = ciborium::de::from_reader(&bytes[..]).unwrap();
        let Value::Map(outer) = value else {
            panic!("not a map")
        };
        assert_eq!(outer.len(), 1);
        assert_eq!(outer[0].0, Value::Text("Attestation".into()));
        let Value::Map(fields) = &outer[0].1 else {
            panic!("not a map")
        };
        let fields: Vec<(String, Value)> = fields
            .iter()
            .map(|(k, v)| (k.as_text().unwrap().to_owned(), v.clone()))
            .collect();
        assert_eq!(
            fields,
            [
                ("user_data".to_owned(), Value::Bytes(b"user".to_vec())),
                ("nonce".to_owned(), Value::Null),
                ("public_key".to_owned(), Value::Bytes(b"key".to_vec())),
            ]
        );
    }

    #[test]
    fn encodes_requests_at_every_limit_within_the_driver_size() {
        let big = vec![7_u8; MAX_PUBLIC_KEY_LEN];
        let request = AttestationRequest {
            user_data: Some(&big[..MAX_USER_DATA_LEN]),
            nonce: Some(&big[..MAX_NONCE_LEN]),
            public_key: Some(&big),
        };
        let bytes = encode_attestation_request(&request).unwrap();
        assert!(bytes.len() <= NSM_REQUEST_MAX_SIZE);
    }

    #[test]
    fn rejects_a_long_nonce_with_field_too_long() {
        let nonce = [0_u8; MAX_NONCE_LEN + 1];
        let err = encode_attestation_request(&AttestationRequest {
            nonce: Some(&nonce),
            ..AttestationRequest::default()
        })
        .unwrap_err();
        assert!(matches!(
            err,
            Error::FieldTooLong {
                field: Field::Nonce,
                len: 513,
                max: 512
            }
        ));
    }

    #[test]
    fn rejects_a_long_user_data_or_public_key_with_field_too_long() {
        let long = [0_u8; MAX_PUBLIC_KEY_LEN + 1];
        let err = encode_attestation_request(&AttestationRequest {
            user_data: Some(&long[..=MAX_USER_DATA_LEN]),
            ..AttestationRequest::default()
        })
        .unwrap_err();
        assert!(matches!(
            err,
            Error::FieldTooLong {
                field: Field::UserData,
                ..
            }
        ));
        let err = encode_attestation_request(&AttestationRequest {
            public_key: Some(&long),
            ..AttestationRequest::default()
        })
        .unwrap_err();
        assert!(matches!(
            err,
            Error::FieldTooLong {
                field: Field::PublicKey,
                len: 1025,
                max: 1024
            }
        ));
    }

    #[test]
    fn rejects_an_empty_public_key_with_public_key_empty() {
        let err = encode_attestation_request(&AttestationRequest {
            public_key: Some(&[]),
            ..AttestationRequest::default()
        })
        .unwrap_err();
        assert!(matches!(err, Error::PublicKeyEmpty));
    }

    #[test]
    fn decodes_real_documents_byte_identical() {
        for rel in [
            "anjuna/attester/sample_attestation_doc_full.bin",
            "anjuna/attestdoc/sample_prod_doc_with_publickey.bin",
            "evervault/valid-attestation-doc-bytes",
        ] {
            let document = vector(rel);
            let decoded = decode_response(&attestation_response(&document)).unwrap();
            assert_eq!(decoded, document, "{rel}");
        }
    }

    #[test]
    fn rejects_an_error_response_with_nsm_naming_the_code() {
        for (code, name) in ErrorCode::ALL {
            let err = decode_response(&error_response(name)).unwrap_err();
            assert!(matches!(err, Error::Nsm(c) if c == code), "{name}: {err:?}");
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn rejects_an_unknown_error_code_with_unknown_error_code() {
        let err = decode_response(&error_response("Overheated")).unwrap_err();
        assert!(matches!(err, Error::UnknownErrorCode { ref code } if code == "Overheated"));
    }

    #[test]
    fn rejects_a_cut_response_with_truncated() {
        let full = attestation_response(&vector("evervault/valid-attestation-doc-bytes"));
        for keep in [0, 1, 5, 13, 24, full.len() / 2, full.len() - 1] {
            let err = decode_response(&full[..keep]).unwrap_err();
            assert!(matches!(err, Error::Truncated), "{keep}: {err:?}");
        }
    }

    #[test]
    fn rejects_an_oversized_response_with_response_too_large() {
        let err = decode_response(&vec![0_u8; NSM_RESPONSE_MAX_SIZE + 1]).unwrap_err();
        assert!(matches!(
            err,
            Error::ResponseTooLarge {
                len: 0x3001,
                max: 0x3000
            }
        ));
    }

    #[test]
    fn rejects_bytes_after_the_response_with_trailing_data() {
        let mut bytes = attestation_response(b"doc");
        bytes.extend_from_slice(&[0xF6, 0xF6]);
        let err = decode_response(&bytes).unwrap_err();
        assert!(matches!(err, Error::TrailingData { len: 2 }));
    }

    #[test]
    fn rejects_responses_of_the_wrong_shape_with_wrong_shape() {
        let cases: [(&str, Vec<u8>); 6] = [
            ("an array", vec![0x81, 0xF6]),
            ("two entries", {
                let mut b = attestation_response(b"doc");
                b[0] = 0xA2;
                b.extend_from_slice(&error_response("InternalError")[1..]);
                b
            }),
            ("an integer operation", vec![0xA1, 0x01, 0xF6]),
            ("a text document", {
                let mut b = vec![0xA1, 0x6B];
                b.extend_from_slice(b"Attestation");
                b.extend_from_slice(&[0xA1, 0x68]);
                b.extend_from_slice(b"document");
                b.extend_from_slice(&[0x63, b'd', b'o', b'c']);
                b
            }),
            ("another field name", {
                let mut b = attestation_response(b"doc");
                b[15..23].copy_from_slice(b"documenu");
                b
            }),
            ("an integer error code", {
                let mut b = vec![0xA1, 0x65];
                b.extend_from_slice(b"Error");
                b.push(0x01);
                b
            }),
        ];
        for (what, bytes) in cases {
            let err = decode_response(&bytes).unwrap_err();
            assert!(matches!(err, Error::WrongShape(_)), "{what}: {err:?}");
        }
    }

    #[test]
    fn rejects_an_extra_field_with_wrong_shape() {
        let mut bytes = attestation_response(b"doc");
        bytes[13] = 0xA2; // the inner map claims two entries
        bytes.extend_from_slice(&[0x65]);
        bytes.extend_from_slice(b"extra");
        bytes.push(0xF6);
        let err = decode_response(&bytes).unwrap_err();
        assert!(matches!(err, Error::WrongShape(_)), "{err:?}");
    }

    #[test]
    fn rejects_another_operation_with_unexpected_operation() {
        let mut bytes = vec![0xA1, 0x69];
        bytes.extend_from_slice(b"GetRandom");
        bytes.extend_from_slice(&[0xA1, 0x66]);
        bytes.extend_from_slice(b"random");
        bytes.extend_from_slice(&[0x42, 1, 2]);
        let err = decode_response(&bytes).unwrap_err();
        assert!(
            matches!(err, Error::UnexpectedOperation { ref operation } if operation == "GetRandom")
        );
    }

    #[test]
    fn rejects_an_empty_document_with_empty_document() {
        let err = decode_response(&attestation_response(b"")).unwrap_err();
        assert!(matches!(err, Error::EmptyDocument));
    }

    #[test]
    fn rejects_invalid_cbor_with_malformed() {
        // 0x1C: a reserved additional-information value (RFC 8949 §3).
        let err = decode_response(&[0x1C]).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn rejects_deep_nesting_with_too_deep() {
        let err = decode_response(&[0x81; 32]).unwrap_err();
        assert!(matches!(err, Error::TooDeep), "{err:?}");
    }

    #[test]
    fn long_names_in_errors_are_clipped() {
        let name = "é".repeat(40); // 80 bytes
        let err = decode_response(&{
            let mut b = vec![0xA1, 0x65];
            b.extend_from_slice(b"Error");
            b.extend_from_slice(&[0x78, 80]);
            b.extend_from_slice(name.as_bytes());
            b
        })
        .unwrap_err();
        let Error::UnknownErrorCode { code } = err else {
            panic!("{err:?}")
        };
        assert_eq!(code.len(), 64);
    }
}
