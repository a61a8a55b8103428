//! The attestation document: the CBOR map the COSE payload carries, parsed by the rules AWS
//! publishes in "Verifying the root of trust" (section "Syntactical validation"):
//!
//! ```text
//! AttestationDocument = {
//!     module_id:   text,                     ; non-empty
//!     digest:      "SHA384",
//!     timestamp:   uint .size 8,             ; ms since the Unix epoch, > 0
//!     pcrs:        { + index => pcr },       ; 1..=32 entries
//!     certificate: cert,                     ; the leaf that signed the document
//!     cabundle:    [* cert],                 ; root first, then intermediates
//!     ? public_key: bstr .size (1..1024) / null,
//!     ? user_data:  bstr .size (0..512)  / null,
//!     ? nonce:      bstr .size (0..512)  / null,
//! }
//! index = 0..31
//! pcr   = bstr .size (32 / 48 / 64)
//! cert  = bstr .size (1..1024)
//! ```
//!
//! Anything else (an unknown key, a key twice, a value of the wrong type or size) is an
//! error: nothing is ignored.

use std::collections::BTreeMap;

use ciborium::value::Value;
use plinth_core::{Digest, HashAlg, UnixTime};

use crate::error::{Error, Part, excerpt};

/// Most PCRs a document may carry (indices 0..=31).
pub const MAX_PCRS: usize = 32;
/// Longest `certificate` or `cabundle` entry, in bytes.
pub const MAX_CERTIFICATE_LEN: usize = 1024;
/// Most `cabundle` entries accepted. AWS issues root + 3 intermediates today; this budget
/// leaves room for a deeper hierarchy without letting a document carry an unbounded list.
pub const MAX_CABUNDLE_LEN: usize = 8;
/// Longest `public_key`, in bytes.
pub const MAX_PUBLIC_KEY_LEN: usize = 1024;
/// Longest `user_data`, in bytes.
pub const MAX_USER_DATA_LEN: usize = 512;
/// Longest `nonce`, in bytes.
pub const MAX_NONCE_LEN: usize = 512;
/// Longest `module_id`, in bytes (AWS sets no limit; real ids are about 40 bytes).
pub const MAX_MODULE_ID_LEN: usize = 256;
/// Deepest CBOR nesting the payload decoder accepts (the format needs 2).
const MAX_PAYLOAD_DEPTH: usize = 8;

/// The fields of an attestation document, typed and size-checked but, on its own, not
/// verified: it is reached through [`crate::VerifiedDocument::document`] once the signature
/// and chain have been checked, or through [`crate::ParsedDocument::unverified_document`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationDocument {
    module_id: String,
    timestamp: UnixTime,
    pcrs: BTreeMap<u8, Digest>,
    certificate: Vec<u8>,
    cabundle: Vec<Vec<u8>>,
    public_key: Option<Vec<u8>>,
    user_data: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
}

impl AttestationDocument {
    /// The enclave module id (`i-<instance>-enc<enclave>`).
    pub fn module_id(&self) -> &str {
        &self.module_id
    }

    /// The EC2 instance id: the part of the module id before `-enc`, when it has that form.
    pub fn instance_id(&self) -> Option<&str> {
        self.module_id
            .split_once("-enc")
            .map(|(instance, _)| instance)
            .filter(|instance| instance.starts_with("i-") && instance.len() > 2)
    }

    /// The enclave id: the part of the module id from `enc`, when it has that form.
    pub fn enclave_id(&self) -> Option<&str> {
        self.instance_id()
            .and_then(|instance| self.module_id.get(instance.len().saturating_add(1)..))
    }

    /// The digest the NSM uses (always SHA-384: any other is rejected when parsing).
    pub const fn digest_alg(&self) -> HashAlg {
        HashAlg::Sha384
    }

    /// When the NSM produced the document.
    pub const fn timestamp(&self) -> UnixTime {
        self.timestamp
    }

    /// Every PCR the document carries, by index.
    pub const fn pcrs(&self) -> &BTreeMap<u8, Digest> {
        &self.pcrs
    }

    /// PCR `index`, when the document carries it.
    pub fn pcr(&self, index: u8) -> Option<&Digest> {
        self.pcrs.get(&index)
    }

    /// Debug mode: PCR0, PCR1 and PCR2 all zero. The NSM reports zero measurements for
    /// enclaves started with `--debug-mode`, whose memory the parent instance can read.
    pub fn is_debug(&self) -> bool {
        [0, 1, 2].iter().all(|index| {
            self.pcrs
                .get(index)
                .is_some_and(|pcr| pcr.as_bytes().iter().all(|&b| b == 0))
        })
    }

    /// The leaf certificate (DER) that signed the document.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// The CA bundle (DER each): `cabundle[0]` is the root, the last entry issues the leaf.
    pub fn cabundle(&self) -> &[Vec<u8>] {
        &self.cabundle
    }

    /// The `public_key` bytes the enclave asked the NSM to include, as given.
    pub fn public_key(&self) -> Option<&[u8]> {
        self.public_key.as_deref()
    }

    /// The `user_data` bytes, as given.
    pub fn user_data(&self) -> Option<&[u8]> {
        self.user_data.as_deref()
    }

    /// The `nonce` bytes, as given.
    pub fn nonce(&self) -> Option<&[u8]> {
        self.nonce.as_deref()
    }

    /// Parses the payload of a COSE_Sign1 as an attestation document.
    pub(crate) fn from_payload(payload: &[u8]) -> Result<Self, Error> {
        let part = Part::Payload;
        let mut rest = payload;
        let value: Value =
            ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_PAYLOAD_DEPTH).map_err(
                |e| match e {
                    ciborium::de::Error::Io(_) => Error::Truncated { part },
                    other => Error::MalformedCbor {
                        part,
                        reason: other.to_string(),
                    },
                },
            )?;
        if !rest.is_empty() {
            return Err(Error::TrailingData {
                part,
                len: rest.len(),
            });
        }
        let Value::Map(entries) = value else {
            return Err(Error::PayloadNotMap);
        };
        Fields::collect(entries)?.into_document()
    }
}

/// The payload map's entries, one slot per defined key.
#[derive(Default)]
struct Fields {
    module_id: Option<Value>,
    digest: Option<Value>,
    timestamp: Option<Value>,
    pcrs: Option<Value>,
    certificate: Option<Value>,
    cabundle: Option<Value>,
    public_key: Option<Value>,
    user_data: Option<Value>,
    nonce: Option<Value>,
}

impl Fields {
    fn collect(entries: Vec<(Value, Value)>) -> Result<Self, Error> {
        let mut fields = Self::default();
        for (key, value) in entries {
            let Value::Text(name) = key else {
                return Err(Error::KeyNotText);
            };
            let slot = match name.as_str() {
                "module_id" => &mut fields.module_id,
                "digest" => &mut fields.digest,
                "timestamp" => &mut fields.timestamp,
                "pcrs" => &mut fields.pcrs,
                "certificate" => &mut fields.certificate,
                "cabundle" => &mut fields.cabundle,
                "public_key" => &mut fields.public_key,
                "user_data" => &mut fields.user_data,
                "nonce" => &mut fields.nonce,
                _ => {
                    return Err(Error::UnknownField {
                        name: excerpt(&name),
                    });
                }
            };
            if slot.replace(value).is_some() {
                return Err(Error::DuplicateField {
                    name: excerpt(&name),
                });
            }
        }
        Ok(fields)
    }

    fn into_document(self) -> Result<AttestationDocument, Error> {
        let module_id = text(required(self.module_id, "module_id")?, "module_id")?;
        check_size("module_id", module_id.len(), 1, MAX_MODULE_ID_LEN)?;

        let digest = text(required(self.digest, "digest")?, "digest")?;
        if digest != "SHA384" {
            return Err(Error::DigestNotSha384 {
                found: excerpt(&digest),
            });
        }

        let timestamp = match required(self.timestamp, "timestamp")? {
            Value::Integer(i) => u64::try_from(i).map_err(|_| Error::FieldType {
                field: "timestamp",
                expected: "an unsigned integer",
            })?,
            _ => {
                return Err(Error::FieldType {
                    field: "timestamp",
                    expected: "an unsigned integer",
                });
            }
        };
        if timestamp == 0 {
            return Err(Error::TimestampZero);
        }

        let pcrs = pcrs(required(self.pcrs, "pcrs")?)?;

        let certificate = bytes(required(self.certificate, "certificate")?, "certificate")?;
        check_size("certificate", certificate.len(), 1, MAX_CERTIFICATE_LEN)?;

        let Value::Array(bundle) = required(self.cabundle, "cabundle")? else {
            return Err(Error::FieldType {
                field: "cabundle",
                expected: "an array",
            });
        };
        check_size("cabundle", bundle.len(), 1, MAX_CABUNDLE_LEN)?;
        let cabundle = bundle
            .into_iter()
            .map(|entry| {
                let cert = bytes(entry, "cabundle entry")?;
                check_size("cabundle entry", cert.len(), 1, MAX_CERTIFICATE_LEN)?;
                Ok(cert)
            })
            .collect::<Result<Vec<_>, Error>>()?;

        let public_key = optional_bytes(self.public_key, "public_key", 1, MAX_PUBLIC_KEY_LEN)?;
        let user_data = optional_bytes(self.user_data, "user_data", 0, MAX_USER_DATA_LEN)?;
        let nonce = optional_bytes(self.nonce, "nonce", 0, MAX_NONCE_LEN)?;

        Ok(AttestationDocument {
            module_id,
            timestamp: UnixTime::from_millis(timestamp),
            pcrs,
            certificate,
            cabundle,
            public_key,
            user_data,
            nonce,
        })
    }
}

fn required(value: Option<Value>, name: &'static str) -> Result<Value, Error> {
    value.ok_or(Error::MissingField { name })
}

fn text(value: Value, field: &'static str) -> Result<String, Error> {
    match value {
        Value::Text(t) => Ok(t),
        _ => Err(Error::FieldType {
            field,
            expected: "a text string",
        }),
    }
}

fn bytes(value: Value, field: &'static str) -> Result<Vec<u8>, Error> {
    match value {
        Value::Bytes(b) => Ok(b),
        _ => Err(Error::FieldType {
            field,
            expected: "a byte string",
        }),
    }
}

/// An optional field: absent, CBOR null, or a byte string within `min..=max`.
fn optional_bytes(
    value: Option<Value>,
    field: &'static str,
    min: usize,
    max: usize,
) -> Result<Option<Vec<u8>>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bytes(b)) => {
            check_size(field, b.len(), min, max)?;
            Ok(Some(b))
        }
        Some(_) => Err(Error::FieldType {
            field,
            expected: "a byte string or null",
        }),
    }
}

fn check_size(field: &'static str, len: usize, min: usize, max: usize) -> Result<(), Error> {
    if (min..=max).contains(&len) {
        Ok(())
    } else {
        Err(Error::FieldSize {
            field,
            len,
            min,
            max,
        })
    }
}

fn pcrs(value: Value) -> Result<BTreeMap<u8, Digest>, Error> {
    let Value::Map(entries) = value else {
        return Err(Error::FieldType {
            field: "pcrs",
            expected: "a map",
        });
    };
    check_size("pcrs", entries.len(), 1, MAX_PCRS)?;
    let mut pcrs = BTreeMap::new();
    for (key, value) in entries {
        let Value::Integer(index) = key else {
            return Err(Error::FieldType {
                field: "pcrs index",
                expected: "an unsigned integer",
            });
        };
        let index = u64::try_from(index).map_err(|_| Error::FieldType {
            field: "pcrs index",
            expected: "an unsigned integer",
        })?;
        let index = u8::try_from(index)
            .ok()
            .filter(|&i| usize::from(i) < MAX_PCRS)
            .ok_or(Error::PcrIndex { index })?;
        let value = bytes(value, "pcrs value")?;
        let alg = match value.len() {
            32 => HashAlg::Sha256,
            48 => HashAlg::Sha384,
            64 => HashAlg::Sha512,
            len => return Err(Error::PcrLength { index, len }),
        };
        let digest = Digest::new(alg, &value).map_err(|_| Error::PcrLength {
            index,
            len: value.len(),
        })?;
        if pcrs.insert(index, digest).is_some() {
            return Err(Error::DuplicatePcr { index });
        }
    }
    for index in 0..=2 {
        if !pcrs.contains_key(&index) {
            return Err(Error::MissingPcr { index });
        }
    }
    Ok(pcrs)
}
