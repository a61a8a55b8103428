//! The AWS Nitro Enclaves collector: attestation documents from the Nitro Secure Module.
//!
//! ```text
//!  challenge.nonce ──┐
//!  new P-256 key ────┼─► NSM Attestation {nonce, public_key = SPKI DER} ─► document
//!  (enclave memory)  │                                                     │
//!                    └──── self-check: the document parses and carries ◄───┘
//!                          exactly this nonce and this public_key
//!                                         ▼
//!                          NitroEvidence { document }  (chain and signature: the server)
//! ```
//!
//! The SVID key is generated in the agent's memory, which is the enclave's: that memory is
//! the hardware boundary the document vouches for (DESIGN.md, "Key binding").

use std::path::Path;
use std::sync::Arc;

use plinth_api::attestation::{
    ChallengeResponse, Evidence, Hello, NitroEvidence, NitroHello, evidence, hello,
};
use plinth_crypto::{Curve, EcdsaSigningKey, SystemRandom};
use plinth_nitro::ParsedDocument;
use plinth_nsm::{AttestationRequest, Field, MAX_NONCE_LEN, NsmDevice, NsmTransport};
use rustls::sign::SigningKey;

use crate::Error;
use crate::collect::EvidenceSource;
use crate::tls::MemorySigningKey;

/// The NSM device.
pub const DEFAULT_NSM_DEVICE: &str = "/dev/nsm";

/// An enclave's evidence source: the NSM behind a transport.
pub struct NitroCollector {
    transport: Box<dyn NsmTransport + Send>,
}

impl std::fmt::Debug for NitroCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NitroCollector").finish_non_exhaustive()
    }
}

impl NitroCollector {
    /// Opens the NSM device at `path` ([`DEFAULT_NSM_DEVICE`] in an enclave).
    ///
    /// # Errors
    /// [`Error::Nsm`] with [`plinth_nsm::Error::Open`] when the device cannot be opened.
    pub fn open(path: &Path) -> Result<Self, Error> {
        Ok(Self::with_transport(Box::new(NsmDevice::open(path)?)))
    }

    /// A collector over any transport to an NSM (tests use a recording one).
    pub fn with_transport(transport: Box<dyn NsmTransport + Send>) -> Self {
        Self { transport }
    }

    /// Asks the NSM for a document over `nonce` and `public_key`, then checks that what
    /// came back parses and carries exactly those.
    fn document(&mut self, nonce: &[u8], public_key: Option<&[u8]>) -> Result<Vec<u8>, Error> {
        let request = AttestationRequest {
            user_data: None,
            nonce: Some(nonce),
            public_key,
        };
        let document = plinth_nsm::request_attestation(&mut *self.transport, &request)?;
        self_check(&document, nonce, public_key)?;
        Ok(document)
    }
}

/// The nonce must fit the NSM's `nonce` field; checked before any key or device work.
fn check_nonce(nonce: &[u8]) -> Result<(), Error> {
    if nonce.len() > MAX_NONCE_LEN {
        return Err(Error::Nsm(plinth_nsm::Error::FieldTooLong {
            field: Field::Nonce,
            len: nonce.len(),
            max: MAX_NONCE_LEN,
        }));
    }
    Ok(())
}

/// Parses `document` (structure and field rules only: the chain and the signature are the
/// server's to check) and requires its nonce to be `nonce` and its public key to be
/// `public_key` (absent when `None`).
fn self_check(document: &[u8], nonce: &[u8], public_key: Option<&[u8]>) -> Result<(), Error> {
    let parsed = ParsedDocument::parse(document).map_err(Error::NitroDocument)?;
    let fields = parsed.unverified_document();
    if fields.nonce() != Some(nonce) {
        return Err(Error::NitroNonceMismatch);
    }
    if fields.public_key() != public_key {
        return Err(Error::NitroPublicKeyMismatch);
    }
    Ok(())
}

fn nitro_evidence(challenge: &ChallengeResponse, document: Vec<u8>) -> Evidence {
    Evidence {
        nonce: challenge.nonce.clone(),
        platform: Some(evidence::Platform::Nitro(NitroEvidence { document })),
    }
}

impl EvidenceSource for NitroCollector {
    fn hello(&mut self) -> Result<Hello, Error> {
        Ok(Hello {
            platform: Some(hello::Platform::Nitro(NitroHello {})),
        })
    }

    fn evidence_for_new_key(
        &mut self,
        challenge: &ChallengeResponse,
    ) -> Result<(Evidence, Arc<dyn SigningKey>), Error> {
        check_nonce(&challenge.nonce)?;
        let key = EcdsaSigningKey::generate(Curve::P256, &SystemRandom)?;
        let spki = key.public_key().spki_der().to_vec();
        let document = self.document(&challenge.nonce, Some(&spki))?;
        let signer: Arc<dyn SigningKey> = Arc::new(MemorySigningKey::new(key)?);
        Ok((nitro_evidence(challenge, document), signer))
    }

    fn evidence_without_key(&mut self, challenge: &ChallengeResponse) -> Result<Evidence, Error> {
        check_nonce(&challenge.nonce)?;
        let document = self.document(&challenge.nonce, None)?;
        Ok(nitro_evidence(challenge, document))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ciborium::value::Value;
    use plinth_crypto::PublicKey;

    use super::*;

    fn vector(rel: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../../testdata/nitro/{rel}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// `{"Attestation": {"document": document}}`, as the NSM answers.
    fn attestation_response(document: &[u8]) -> Vec<u8> {
        let value = Value::Map(vec![(
            Value::Text("Attestation".into()),
            Value::Map(vec![(
                Value::Text("document".into()),
                Value::Bytes(document.to_vec()),
            )]),
        )]);
        let mut out = Vec::new();
        ciborium::ser::into_writer(&value, &mut out).unwrap();
        out
    }

    /// A transport that records every request and answers with a fixed response.
    struct Recording {
        requests: Arc<Mutex<Vec<Vec<u8>>>>,
        response: Vec<u8>,
    }

    impl NsmTransport for Recording {
        fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, plinth_nsm::Error> {
            self.requests.lock().unwrap().push(request.to_vec());
            Ok(self.response.clone())
        }
    }

    fn collector(response: Vec<u8>) -> (NitroCollector, Arc<Mutex<Vec<Vec<u8>>>>) {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let transport = Recording {
            requests: Arc::clone(&requests),
            response,
        };
        (
            NitroCollector::with_transport(Box::new(transport)),
            requests,
        )
    }

    /// The fields of a recorded request, by name.
    fn request_fields(request: &[u8]) -> Vec<(String, Value)> {
        let value: Value = ciborium::de::from_reader(request).unwrap();
        let Value::Map(outer) = value else {
            panic!("not a map")
        };
        assert_eq!(outer[0].0, Value::Text("Attestation".into()));
        let Value::Map(fields) = &outer[0].1 else {
            panic!("not a map")
        };
        fields
            .iter()
            .map(|(k, v)| (k.as_text().unwrap().to_owned(), v.clone()))
            .collect()
    }

    fn challenge(nonce: &[u8]) -> ChallengeResponse {
        ChallengeResponse {
            nonce: nonce.to_vec(),
            ..ChallengeResponse::default()
        }
    }

    #[test]
    fn hello_is_the_empty_nitro_hello() {
        let (mut c, requests) = collector(Vec::new());
        let hello = c.hello().unwrap();
        assert_eq!(hello.platform, Some(hello::Platform::Nitro(NitroHello {})));
        assert!(requests.lock().unwrap().is_empty());
    }

    #[test]
    fn asks_for_the_challenge_nonce_and_the_spki_of_the_tls_key() {
        // The NSM answers with a real document, whose nonce is not ours: the request is
        // what this test checks, and the self-check refuses the answer.
        let response =
            attestation_response(&vector("anjuna/attester/sample_attestation_doc_full.bin"));
        let (mut c, requests) = collector(response);
        let nonce = [0x42_u8; 32];
        let err = c.evidence_for_new_key(&challenge(&nonce)).unwrap_err();
        assert!(matches!(err, Error::NitroNonceMismatch), "{err:?}");

        let requests = requests.lock().unwrap();
        assert_eq!(requests.len(), 1);
        let fields = request_fields(&requests[0]);
        assert_eq!(fields[0], ("user_data".to_owned(), Value::Null));
        assert_eq!(
            fields[1],
            ("nonce".to_owned(), Value::Bytes(nonce.to_vec()))
        );
        assert_eq!(fields[2].0, "public_key");
        let Value::Bytes(spki) = &fields[2].1 else {
            panic!("public_key is not bytes")
        };
        let key = PublicKey::from_spki_der(spki).unwrap();
        assert_eq!(key.spki_der(), &spki[..]);
        assert_eq!(spki.len(), 91, "a P-256 SubjectPublicKeyInfo");
    }

    /// A stand-in NSM: answers each request with a real document whose payload's nonce
    /// and public_key are replaced by the request's (so its signature no longer verifies;
    /// the collector's self-check does not check signatures, the server does).
    struct Echo {
        template: Vec<u8>,
        requests: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl NsmTransport for Echo {
        fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, plinth_nsm::Error> {
            self.requests.lock().unwrap().push(request.to_vec());
            let fields = request_fields(request);
            let Value::Array(mut sign1) = ciborium::de::from_reader(&self.template[..]).unwrap()
            else {
                panic!("not an untagged COSE_Sign1")
            };
            let Value::Bytes(payload) = &sign1[2] else {
                panic!("no payload")
            };
            let Value::Map(mut payload): Value = ciborium::de::from_reader(&payload[..]).unwrap()
            else {
                panic!("payload is not a map")
            };
            payload.retain(|(k, _)| {
                !matches!(k.as_text(), Some("nonce" | "public_key" | "user_data"))
            });
            for (name, value) in fields {
                if value != Value::Null {
                    payload.push((Value::Text(name), value));
                }
            }
            let mut bytes = Vec::new();
            ciborium::ser::into_writer(&Value::Map(payload), &mut bytes).unwrap();
            sign1[2] = Value::Bytes(bytes);
            let mut document = Vec::new();
            ciborium::ser::into_writer(&Value::Array(sign1), &mut document).unwrap();
            Ok(attestation_response(&document))
        }
    }

    #[test]
    fn binds_the_challenge_nonce_and_the_tls_key_into_the_document() {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let mut c = NitroCollector::with_transport(Box::new(Echo {
            template: vector("anjuna/attester/sample_attestation_doc_full.bin"),
            requests: Arc::clone(&requests),
        }));
        let nonce = [0x42_u8; 32];
        let (evidence, key) = c.evidence_for_new_key(&challenge(&nonce)).unwrap();
        assert_eq!(evidence.nonce, nonce);
        let Some(evidence::Platform::Nitro(NitroEvidence { document })) = evidence.platform else {
            panic!("not Nitro evidence")
        };
        let parsed = ParsedDocument::parse(&document).unwrap();
        let doc = parsed.unverified_document();
        assert_eq!(doc.nonce(), Some(&nonce[..]));
        let spki = doc.public_key().unwrap();

        // The key handed to TLS is the key in the document: its signatures verify under
        // the SubjectPublicKeyInfo the NSM was asked to bind.
        let signer = key
            .choose_scheme(&[rustls::SignatureScheme::ECDSA_NISTP256_SHA256])
            .unwrap();
        let signature = signer.sign(b"handshake transcript").unwrap();
        PublicKey::from_spki_der(spki)
            .unwrap()
            .verify(
                plinth_crypto::SignatureScheme::EcdsaDer(plinth_crypto::HashAlg::Sha256),
                b"handshake transcript",
                &signature,
            )
            .unwrap();
        let fields = request_fields(&requests.lock().unwrap()[0]);
        assert_eq!(
            fields[2],
            ("public_key".to_owned(), Value::Bytes(spki.to_vec()))
        );
    }

    #[test]
    fn rejects_a_document_with_another_key_with_nitro_public_key_mismatch() {
        // A stand-in NSM that echoes the request into a document is not available (the
        // document is signed), so the binding is checked through the self-check itself:
        // a real document carrying public_key K passes exactly when K was asked for.
        let document = vector("anjuna/attester/sample_attestation_doc_full.bin");
        let parsed = ParsedDocument::parse(&document).unwrap();
        let doc = parsed.unverified_document();
        let (nonce, key) = (doc.nonce().unwrap(), doc.public_key().unwrap());
        self_check(&document, nonce, Some(key)).unwrap();
        assert!(matches!(
            self_check(&document, nonce, None),
            Err(Error::NitroPublicKeyMismatch)
        ));
        let mut other = key.to_vec();
        other[40] ^= 1;
        assert!(matches!(
            self_check(&document, nonce, Some(&other)),
            Err(Error::NitroPublicKeyMismatch)
        ));
    }

    #[test]
    fn rejects_a_real_document_over_another_nonce_with_nitro_nonce_mismatch() {
        let document = vector("anjuna/attester/sample_attestation_doc_full.bin");
        let (mut c, _) = collector(attestation_response(&document));
        let err = c.evidence_without_key(&challenge(&[7; 32])).unwrap_err();
        assert!(matches!(err, Error::NitroNonceMismatch), "{err:?}");
    }

    #[test]
    fn rejects_a_document_without_a_nonce_with_nitro_nonce_mismatch() {
        let document = vector("anjuna/attestdoc/sample_prod_doc.bin");
        let (mut c, _) = collector(attestation_response(&document));
        let err = c.evidence_without_key(&challenge(&[7; 32])).unwrap_err();
        assert!(matches!(err, Error::NitroNonceMismatch), "{err:?}");
    }

    #[test]
    fn without_key_asks_for_no_public_key_and_sends_the_document_as_received() {
        // The real document's own nonce as the challenge, and no public key asked for: a
        // document that has one (this one does) is refused; one without passes.
        let document = vector("anjuna/attester/sample_attestation_doc_full.bin");
        let nonce = ParsedDocument::parse(&document)
            .unwrap()
            .unverified_document()
            .nonce()
            .unwrap()
            .to_vec();
        let (mut c, requests) = collector(attestation_response(&document));
        let err = c.evidence_without_key(&challenge(&nonce)).unwrap_err();
        assert!(matches!(err, Error::NitroPublicKeyMismatch), "{err:?}");
        let fields = request_fields(&requests.lock().unwrap()[0]);
        assert_eq!(fields[2], ("public_key".to_owned(), Value::Null));

        let document = vector("evervault/valid-attestation-doc-bytes");
        let nonce = ParsedDocument::parse(&document)
            .unwrap()
            .unverified_document()
            .nonce()
            .unwrap()
            .to_vec();
        let (mut c, _) = collector(attestation_response(&document));
        let evidence = c.evidence_without_key(&challenge(&nonce)).unwrap();
        assert_eq!(evidence.nonce, nonce);
        assert_eq!(
            evidence.platform,
            Some(evidence::Platform::Nitro(NitroEvidence { document }))
        );
    }

    #[test]
    fn refuses_a_nonce_over_the_nsm_limit_before_the_device_call() {
        let (mut c, requests) = collector(Vec::new());
        let err = c
            .evidence_for_new_key(&challenge(&[0; MAX_NONCE_LEN + 1]))
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Nsm(plinth_nsm::Error::FieldTooLong {
                    field: Field::Nonce,
                    len: 513,
                    max: 512
                })
            ),
            "{err:?}"
        );
        let err = c
            .evidence_without_key(&challenge(&[0; MAX_NONCE_LEN + 1]))
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Nsm(plinth_nsm::Error::FieldTooLong { .. })
        ));
        assert!(requests.lock().unwrap().is_empty());
    }

    #[test]
    fn rejects_an_nsm_refusal_with_nsm() {
        let mut response = vec![0xA1, 0x65];
        response.extend_from_slice(b"Error");
        response.push(0x60 + 15);
        response.extend_from_slice(b"InvalidArgument");
        let (mut c, _) = collector(response);
        let err = c.evidence_for_new_key(&challenge(&[1; 32])).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Nsm(plinth_nsm::Error::Nsm(
                    plinth_nsm::ErrorCode::InvalidArgument
                ))
            ),
            "{err:?}"
        );
    }

    #[test]
    fn rejects_a_document_that_does_not_parse_with_nitro_document() {
        let (mut c, _) = collector(attestation_response(b"\x84\x40\xa0\x40\x40"));
        let err = c.evidence_for_new_key(&challenge(&[1; 32])).unwrap_err();
        assert!(matches!(err, Error::NitroDocument(_)), "{err:?}");
    }

    #[test]
    fn open_of_a_missing_device_fails_with_nsm_open() {
        let err = NitroCollector::open(Path::new("/nonexistent/plinth-test/nsm")).unwrap_err();
        assert!(
            matches!(err, Error::Nsm(plinth_nsm::Error::Open { .. })),
            "{err:?}"
        );
    }
}
