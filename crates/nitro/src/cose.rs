//! The COSE_Sign1 envelope (RFC 9052 §4.2) as the Nitro Secure Module emits it:
//! `[protected: bstr .cbor {1: -35}, unprotected: {}, payload: bstr, signature: bstr]`,
//! untagged or with tag 18.

use ciborium::value::Value;
use coset::iana::{self, EnumI64};
use coset::{CborSerializable, CoseError, CoseSign1, TaggedCborSerializable};

use crate::error::{Error, Part};

/// CBOR major type 6: a tag.
const MAJOR_TAG: u8 = 6;
/// The CBOR tag of a COSE_Sign1 (RFC 9052 §2).
const TAG_COSE_SIGN1: u64 = 18;
/// Length of an ES384 signature: `r ‖ s`, 48 bytes each.
pub(crate) const ES384_SIGNATURE_LEN: usize = 96;

/// A COSE_Sign1 whose shape has been checked, holding the bytes the signature covers.
pub(crate) struct Sign1 {
    /// The protected header bstr's content, exactly as received.
    protected: Vec<u8>,
    /// The payload bstr's content.
    pub(crate) payload: Vec<u8>,
    /// The signature, `r ‖ s`.
    pub(crate) signature: Vec<u8>,
}

impl Sign1 {
    /// Parses a tagged or untagged COSE_Sign1 and checks that it is signed with ES384, that
    /// the protected header carries nothing else, the unprotected header nothing at all, and
    /// that the payload is attached. No byte may follow the structure.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let tagged = bytes.first().is_some_and(|&first| first >> 5 == MAJOR_TAG);
        let parsed = if tagged {
            CoseSign1::from_tagged_slice(bytes)
        } else {
            CoseSign1::from_slice(bytes)
        }
        .map_err(|e| cose_error(e, bytes))?;

        let header = &parsed.protected.header;
        match &header.alg {
            Some(coset::Algorithm::Assigned(iana::Algorithm::ES384)) => {}
            other => {
                return Err(Error::AlgorithmNotEs384 {
                    found: algorithm_text(other.as_ref()),
                });
            }
        }
        let only_alg = coset::Header {
            alg: Some(coset::Algorithm::Assigned(iana::Algorithm::ES384)),
            ..coset::Header::default()
        };
        if *header != only_alg {
            return Err(Error::UnexpectedHeaderParameter {
                label: first_extra_label(header, false),
                which: "protected",
            });
        }
        if !parsed.unprotected.is_empty() {
            return Err(Error::UnexpectedHeaderParameter {
                label: first_extra_label(&parsed.unprotected, true),
                which: "unprotected",
            });
        }
        // `from_cbor_bstr` always records the bytes it parsed the header from.
        let protected = parsed.protected.original_data.ok_or(Error::MalformedCose {
            reason: "protected header bytes unavailable",
        })?;
        let payload = parsed.payload.ok_or(Error::PayloadMissing)?;
        if parsed.signature.len() != ES384_SIGNATURE_LEN {
            return Err(Error::SignatureLength {
                len: parsed.signature.len(),
            });
        }
        Ok(Self {
            protected,
            payload,
            signature: parsed.signature,
        })
    }

    /// The Sig_structure (RFC 9052 §4.4) the signature covers:
    /// `["Signature1", protected, external_aad = h'', payload]`, with the protected header's
    /// bytes exactly as received (never re-encoded).
    pub(crate) fn to_be_signed(&self) -> Vec<u8> {
        const CONTEXT: &[u8] = b"Signature1";
        let mut out = Vec::with_capacity(
            self.protected
                .len()
                .saturating_add(self.payload.len())
                .saturating_add(32),
        );
        out.push(0x84); // array(4)
        push_header(&mut out, 3, CONTEXT.len());
        out.extend_from_slice(CONTEXT);
        push_header(&mut out, 2, self.protected.len());
        out.extend_from_slice(&self.protected);
        push_header(&mut out, 2, 0); // external_aad: empty bstr
        push_header(&mut out, 2, self.payload.len());
        out.extend_from_slice(&self.payload);
        out
    }
}

/// Appends a CBOR initial byte and argument (RFC 8949 §3) for `major` with length `len`,
/// in the shortest form.
fn push_header(out: &mut Vec<u8>, major: u8, len: usize) {
    let major = major << 5;
    // A usize always fits a u64 on the platforms Rust supports.
    let len = u64::try_from(len).unwrap_or(u64::MAX);
    match (u8::try_from(len), u16::try_from(len), u32::try_from(len)) {
        (Ok(small), _, _) if small < 0x18 => out.push(major | small),
        (Ok(byte), _, _) => out.extend_from_slice(&[major | 0x18, byte]),
        (_, Ok(short), _) => {
            out.push(major | 0x19);
            out.extend_from_slice(&short.to_be_bytes());
        }
        (_, _, Ok(word)) => {
            out.push(major | 0x1a);
            out.extend_from_slice(&word.to_be_bytes());
        }
        _ => {
            out.push(major | 0x1b);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

fn unexpected_tag(bytes: &[u8]) -> Error {
    // Decode the tag number only for the error message; any failure still rejects.
    match ciborium::de::from_reader::<Value, _>(bytes) {
        Ok(Value::Tag(tag, _)) if tag != TAG_COSE_SIGN1 => Error::UnexpectedTag { tag },
        Ok(_) => Error::MalformedCose {
            reason: "unexpected CBOR item in COSE_Sign1",
        },
        Err(ciborium::de::Error::Io(_)) => Error::Truncated {
            part: Part::CoseSign1,
        },
        Err(e) => Error::MalformedCbor {
            part: Part::CoseSign1,
            reason: e.to_string(),
        },
    }
}

fn cose_error(error: CoseError, bytes: &[u8]) -> Error {
    use ciborium::de::Error as De;
    let part = Part::CoseSign1;
    match error {
        CoseError::DecodeFailed(De::Io(_)) => Error::Truncated { part },
        CoseError::DecodeFailed(e) => Error::MalformedCbor {
            part,
            reason: e.to_string(),
        },
        CoseError::ExtraneousData => Error::TrailingData {
            part,
            len: trailing_len(bytes),
        },
        CoseError::DuplicateMapKey => Error::MalformedCose {
            reason: "duplicate header label",
        },
        CoseError::UnexpectedItem("tag", _) => unexpected_tag(bytes),
        CoseError::UnexpectedItem(..) => Error::MalformedCose {
            reason: "unexpected CBOR item in COSE_Sign1",
        },
        CoseError::OutOfRangeIntegerValue => Error::MalformedCose {
            reason: "integer out of range in a header",
        },
        CoseError::UnregisteredIanaValue | CoseError::UnregisteredIanaNonPrivateValue => {
            Error::MalformedCose {
                reason: "unregistered IANA value in a header",
            }
        }
        CoseError::EncodeFailed => Error::MalformedCose {
            reason: "unencodable header",
        },
    }
}

/// How many bytes follow the first complete CBOR item of `bytes` (for the error only).
fn trailing_len(bytes: &[u8]) -> usize {
    let mut rest = bytes;
    match ciborium::de::from_reader::<Value, _>(&mut rest) {
        Ok(_) => rest.len(),
        Err(_) => 0,
    }
}

fn algorithm_text(alg: Option<&coset::Algorithm>) -> String {
    match alg {
        None => "absent".to_owned(),
        Some(coset::Algorithm::Assigned(a)) => a.to_i64().to_string(),
        Some(coset::Algorithm::PrivateUse(v)) => v.to_string(),
        Some(coset::Algorithm::Text(t)) => format!("{:?}", crate::error::excerpt(t)),
    }
}

/// Names the first header parameter that should not be there, for the error message.
/// `alg` counts only when `alg_is_extra` (it is the one parameter the protected header needs).
fn first_extra_label(header: &coset::Header, alg_is_extra: bool) -> String {
    let named = [
        (alg_is_extra && header.alg.is_some(), "1 (alg)"),
        (!header.crit.is_empty(), "2 (crit)"),
        (header.content_type.is_some(), "3 (content type)"),
        (!header.key_id.is_empty(), "4 (kid)"),
        (!header.iv.is_empty(), "5 (IV)"),
        (!header.partial_iv.is_empty(), "6 (partial IV)"),
        (
            !header.counter_signatures.is_empty(),
            "7 (counter signature)",
        ),
    ];
    if let Some((_, name)) = named.iter().find(|(present, _)| *present) {
        return (*name).to_owned();
    }
    match header.rest.first() {
        Some((coset::Label::Int(i), _)) => i.to_string(),
        Some((coset::Label::Text(t), _)) => format!("{:?}", crate::error::excerpt(t)),
        None => "(unknown)".to_owned(),
    }
}
