//! plinth-agent's TPM collector (tss-esapi over tpm2-tss) against a real TPM 2.0 (swtpm),
//! with everything it produces checked by plinth's own verifiers (plinth-tpm,
//! plinth-crypto).
//!
//! Every test manufactures its own swtpm. swtpm serves one client at a time, so tpm2-tools
//! (the harness) touch the TPM only while no collector is connected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::time::{SystemTime, UNIX_EPOCH};

use plinth_agent::collect::tpm::MAX_EVENT_LOG;
use plinth_agent::{Error as AgentError, TpmCollector, read_event_log};
use plinth_core::{HashAlg, SecureRandom, UnixTime};
use plinth_crypto::{Curve, PublicKey, SignatureScheme, SystemRandom, digest};
use plinth_e2e::Swtpm;
use plinth_e2e::flows::EK_PERSISTENT_RSA;
use plinth_e2e::formats::pem_to_der;
use plinth_tpm::eventlog::EventLog;
use plinth_tpm::{
    EkRoots, Error, KeyParameters, Public, make_credential, verify_certify, verify_ek_certificate,
    verify_quote,
};

const EVENT_LOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/tpm/eventlogs/keylime/binary_bios_measurements"
);

/// TPM_ALG_ECDSA and TPM_ALG_SHA256.
const TPM_ALG_ECDSA: u16 = 0x0018;
const TPM_ALG_SHA256: u16 = 0x000B;

/// TPM_RC_INTEGRITY (0x09F) | TPM_RC_P (0x040) | parameter 1 (0x100): the credential's
/// integrity HMAC, keyed from the seed, covers the name of another AK.
const RC_INTEGRITY_PARAMETER_1: u32 = 0x1DF;
/// libtpms 0.9 answers TPM_RC_FAILURE for a seed RSA-OAEP-encrypted to another EK (the
/// TPM stays operational, as the last steps show).
const RC_SEED_UNDECRYPTABLE: u32 = 0x101;

fn start() -> Swtpm {
    Swtpm::start().unwrap_or_else(|error| panic!("cannot run the swtpm tests: {error}"))
}

fn open(tpm: &Swtpm) -> TpmCollector {
    TpmCollector::open(tpm.tcti()).unwrap()
}

fn nonce() -> Vec<u8> {
    let mut nonce = vec![0; 32];
    SystemRandom.fill(&mut nonce).unwrap();
    nonce
}

/// swtpm_localca dates its certificates from the moment the TPM was manufactured.
fn now() -> UnixTime {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    UnixTime::from_millis(u64::try_from(since_epoch.as_millis()).unwrap())
}

fn pem_file_der(path: &std::path::Path) -> Vec<u8> {
    pem_to_der(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The instance's local CA: its root as the trust anchor, its issuer as an intermediate.
fn local_ca(tpm: &Swtpm) -> EkRoots {
    EkRoots::from_der(
        [pem_file_der(&tpm.root_ca_pem())],
        [pem_file_der(&tpm.issuer_cert_pem())],
    )
    .unwrap()
}

/// sha256 PCRs 0–7 and 16: nine PCRs, so two TPM2_PCR_Read calls.
fn boot_selection() -> Vec<(HashAlg, Vec<u8>)> {
    vec![(HashAlg::Sha256, vec![0, 1, 2, 3, 4, 5, 6, 7, 16])]
}

// ---- identity --------------------------------------------------------------------------

/// The EK certificate read from NV chains to the instance's local CA and certifies the EK
/// public area the collector presents — the same EK `swtpm_setup` persisted; the AK is a
/// restricted, non-duplicable ECC P-256 ECDSA-SHA256 key whose name is the TPM's.
#[test]
fn identity_ek_certificate_chains_to_local_ca_and_ak_is_an_attestation_key() {
    let tpm = start();
    let mut collector = open(&tpm);
    let identity = collector.identity().unwrap();

    let certificate = identity
        .ek_certificate
        .as_deref()
        .expect("swtpm has an EK certificate");
    let verified = verify_ek_certificate(certificate, &local_ca(&tpm), now()).unwrap();
    let ek = Public::from_either(&identity.ek_public).unwrap();
    verified.check_public_matches(&ek).unwrap();
    assert!(matches!(
        ek.parameters(),
        KeyParameters::Rsa { key_bits: 2048, .. }
    ));

    let ak = Public::from_either(&identity.ak_public).unwrap();
    assert_eq!(
        ak.as_bytes(),
        identity.ak_public.as_slice(),
        "a bare TPMT_PUBLIC"
    );
    assert_eq!(ak.name(), identity.ak_name);
    let attributes = ak.attributes();
    assert!(attributes.restricted() && attributes.sign() && !attributes.decrypt());
    assert!(attributes.fixed_tpm() && attributes.fixed_parent());
    assert!(attributes.sensitive_data_origin());
    assert!(matches!(
        ak.parameters(),
        KeyParameters::Ecc {
            curve: Curve::P256,
            ..
        }
    ));
    assert_eq!(ak.scheme().scheme, TPM_ALG_ECDSA);
    assert_eq!(ak.scheme().hash, Some(TPM_ALG_SHA256));
    // plinth's own AK checks (restricted signing key, fixedTPM, fixedParent) run first in
    // make_credential.
    let _challenge = make_credential(&ek, &ak, &SystemRandom).unwrap();

    // The AK is created once per collector.
    assert_eq!(collector.identity().unwrap(), identity);
    drop(collector);

    // The EK the collector recreated is the one swtpm_setup made and persisted.
    let persisted = tpm.persistent_key(EK_PERSISTENT_RSA, "ek").unwrap();
    assert_eq!(persisted.tpmt_public(), identity.ek_public.as_slice());
}

// ---- credential activation -------------------------------------------------------------

#[test]
fn activated_secret_is_accepted_by_pending_activation() {
    let tpm = start();
    let mut collector = open(&tpm);
    let identity = collector.identity().unwrap();
    let ek = Public::from_either(&identity.ek_public).unwrap();
    let ak = Public::from_either(&identity.ak_public).unwrap();

    let (challenge, pending) = make_credential(&ek, &ak, &SystemRandom).unwrap();
    let secret = collector
        .activate_credential(&challenge.id_object, &challenge.encrypted_secret)
        .unwrap();
    assert_eq!(secret.len(), 32);
    let activated = pending.verify(&secret).unwrap();
    assert_eq!(activated.public(), &ak);
}

/// A credential bound to another TPM's AK fails the TPM's integrity check, and one sealed
/// to another TPM's EK cannot be opened: the TPM releases nothing, and keeps working.
#[test]
fn activation_for_another_ak_or_ek_fails_with_tpm_error() {
    let tpm_a = start();
    let tpm_b = start();
    let mut a = open(&tpm_a);
    let mut b = open(&tpm_b);
    let id_a = a.identity().unwrap();
    let id_b = b.identity().unwrap();
    let ek_a = Public::from_either(&id_a.ek_public).unwrap();
    let ak_a = Public::from_either(&id_a.ak_public).unwrap();
    let ek_b = Public::from_either(&id_b.ek_public).unwrap();
    let ak_b = Public::from_either(&id_b.ak_public).unwrap();
    assert_ne!(ak_a.name(), ak_b.name());

    let (for_another_ak, _pending) = make_credential(&ek_a, &ak_b, &SystemRandom).unwrap();
    let error = a
        .activate_credential(&for_another_ak.id_object, &for_another_ak.encrypted_secret)
        .unwrap_err();
    assert!(
        matches!(
            error,
            AgentError::Tpm {
                step: "activating the credential",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.tpm_response_code(), Some(RC_INTEGRITY_PARAMETER_1));

    let (to_another_ek, _pending) = make_credential(&ek_b, &ak_a, &SystemRandom).unwrap();
    let error = a
        .activate_credential(&to_another_ek.id_object, &to_another_ek.encrypted_secret)
        .unwrap_err();
    assert!(
        matches!(
            error,
            AgentError::Tpm {
                step: "activating the credential",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.tpm_response_code(), Some(RC_SEED_UNDECRYPTABLE));

    // A refusal, not a broken collector: nothing left loaded, and a good credential works.
    assert_eq!(a.loaded_transient_objects().unwrap(), 0);
    let (good, pending) = make_credential(&ek_a, &ak_a, &SystemRandom).unwrap();
    let secret = a
        .activate_credential(&good.id_object, &good.encrypted_secret)
        .unwrap();
    let _activated = pending.verify(&secret).unwrap();
}

// ---- quote -----------------------------------------------------------------------------

#[test]
fn quote_over_sha256_boot_pcrs_and_pcr16_verifies() {
    let tpm = start();
    tpm.pcr_extend(16, b"plinth agent e2e: a measurement")
        .unwrap();
    let mut collector = open(&tpm);
    let ak = Public::from_either(&collector.identity().unwrap().ak_public).unwrap();
    let nonce = nonce();

    let quote = collector.quote(&boot_selection(), &nonce).unwrap();
    assert_eq!(quote.pcrs.len(), 9);
    let pcrs = quote.pcr_values().unwrap();
    let verified = verify_quote(&ak, &quote.attest, &quote.signature, &nonce, &pcrs).unwrap();
    assert_eq!(verified.qualifying_data(), nonce.as_slice());
    let quoted: Vec<_> = verified
        .pcrs()
        .iter()
        .map(|(bank, index, _)| (bank, index))
        .collect();
    let expected: Vec<_> = boot_selection()[0]
        .1
        .iter()
        .map(|&index| (HashAlg::Sha256, index))
        .collect();
    assert_eq!(quoted, expected);
    let pcr16 = verified.pcrs().get(HashAlg::Sha256, 16).unwrap();
    assert_ne!(pcr16.as_bytes(), [0; 32], "PCR 16 was extended");
    drop(collector);

    // The values the collector read are the TPM's, as tpm2-tools reads them.
    let tools = tpm.pcr_read("sha256:0,1,2,3,4,5,6,7,16").unwrap();
    for pcr in &quote.pcrs {
        assert_eq!(tools.get(pcr.bank, pcr.index), Some(&pcr.value));
    }
}

#[test]
fn rejects_quote_checked_against_another_nonce_with_qualifying_data_mismatch() {
    let tpm = start();
    let mut collector = open(&tpm);
    let ak = Public::from_either(&collector.identity().unwrap().ak_public).unwrap();
    let quote = collector.quote(&boot_selection(), &nonce()).unwrap();
    let pcrs = quote.pcr_values().unwrap();
    assert_eq!(
        verify_quote(&ak, &quote.attest, &quote.signature, &nonce(), &pcrs),
        Err(Error::QualifyingDataMismatch)
    );
}

/// Every active bank at once (PCR 0–7 and 16 in each): the reads are split per bank, and
/// the quote verifies over all of them.
#[test]
fn quote_over_every_active_bank_verifies() {
    let tpm = start();
    let banks = tpm.active_banks().unwrap();
    tpm.pcr_extend(16, b"plinth agent e2e: every bank").unwrap();
    let selection: Vec<_> = banks
        .iter()
        .map(|&bank| (bank, vec![0, 1, 2, 3, 4, 5, 6, 7, 16]))
        .collect();
    let mut collector = open(&tpm);
    let ak = Public::from_either(&collector.identity().unwrap().ak_public).unwrap();
    let nonce = nonce();
    let quote = collector.quote(&selection, &nonce).unwrap();
    assert_eq!(quote.pcrs.len(), 9 * banks.len());
    let verified = verify_quote(
        &ak,
        &quote.attest,
        &quote.signature,
        &nonce,
        &quote.pcr_values().unwrap(),
    )
    .unwrap();
    assert_eq!(verified.selection().len(), banks.len());
}

/// A bank the TPM has not allocated is refused by name.
#[test]
fn rejects_quote_over_an_inactive_bank_with_pcr_unavailable() {
    let tpm = start();
    let banks = tpm.active_banks().unwrap();
    let inactive = HashAlg::ALL
        .into_iter()
        .find(|bank| !banks.contains(bank))
        .expect("swtpm leaves one bank unallocated");
    let mut collector = open(&tpm);
    let error = collector
        .quote(&[(HashAlg::Sha256, vec![0]), (inactive, vec![7])], &nonce())
        .unwrap_err();
    assert!(
        matches!(
            error,
            AgentError::PcrUnavailable { bank, index: 7 } if bank == inactive
        ),
        "{error}"
    );
    assert_eq!(collector.loaded_transient_objects().unwrap(), 0);
}

// ---- the SVID key ----------------------------------------------------------------------

#[test]
fn certified_key_verifies_and_signs_with_its_spki() {
    let tpm = start();
    let mut collector = open(&tpm);
    let ak = Public::from_either(&collector.identity().unwrap().ak_public).unwrap();
    let nonce = nonce();
    let created = collector.create_certified_key(&nonce).unwrap();

    let certified = verify_certify(
        &ak,
        &created.attest,
        &created.signature,
        &created.public,
        &nonce,
    )
    .unwrap();
    assert_eq!(certified.spki_der(), created.spki_der.as_slice());
    let public = Public::from_either(&created.public).unwrap();
    assert_eq!(
        public.public_key().unwrap().spki_der(),
        created.spki_der.as_slice()
    );
    assert!(matches!(
        public.parameters(),
        KeyParameters::Ecc {
            curve: Curve::P256,
            ..
        }
    ));
    assert_eq!(created.key.public(), created.public.as_slice());
    assert_eq!(created.key.spki_der(), created.spki_der.as_slice());

    let spki = PublicKey::from_spki_der(&created.spki_der).unwrap();
    let message = b"plinth agent e2e: a TLS 1.3 CertificateVerify stands here";
    let hashed = digest(HashAlg::Sha256, message);
    let to_sign: [u8; 32] = hashed.as_bytes().try_into().unwrap();
    let signature = collector.sign_digest(&created.key, &to_sign).unwrap();
    spki.verify(
        SignatureScheme::EcdsaDer(HashAlg::Sha256),
        message,
        &signature,
    )
    .unwrap();
    assert!(
        spki.verify(
            SignatureScheme::EcdsaDer(HashAlg::Sha256),
            b"another message",
            &signature
        )
        .is_err()
    );

    // The handle's blobs reload the key (as after an agent restart).
    let reloaded =
        plinth_agent::TpmKeyHandle::from_blobs(created.key.wrapped_private(), created.key.public())
            .unwrap();
    let signature = collector.sign_digest(&reloaded, &to_sign).unwrap();
    spki.verify(
        SignatureScheme::EcdsaDer(HashAlg::Sha256),
        message,
        &signature,
    )
    .unwrap();

    // Debug shows the public part only.
    let shown = format!("{:?}", created.key);
    assert!(!shown.contains(&hex::encode(created.key.wrapped_private())));
    assert_eq!(collector.loaded_transient_objects().unwrap(), 0);
}

#[test]
fn rejects_certify_checked_against_another_nonce_with_qualifying_data_mismatch() {
    let tpm = start();
    let mut collector = open(&tpm);
    let ak = Public::from_either(&collector.identity().unwrap().ak_public).unwrap();
    let created = collector.create_certified_key(&nonce()).unwrap();
    assert_eq!(
        verify_certify(
            &ak,
            &created.attest,
            &created.signature,
            &created.public,
            &nonce()
        )
        .unwrap_err(),
        Error::QualifyingDataMismatch
    );
}

// ---- event log -------------------------------------------------------------------------

#[test]
fn event_log_is_read_whole_and_parses() {
    let log = read_event_log(std::path::Path::new(EVENT_LOG)).unwrap();
    assert_eq!(log, std::fs::read(EVENT_LOG).unwrap());
    let parsed = EventLog::parse(&log).unwrap();
    assert!(!parsed.events().is_empty());
}

#[test]
fn rejects_oversized_event_log_with_event_log_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("binary_bios_measurements");
    let at_budget = std::fs::File::create(&path).unwrap();
    at_budget.set_len(MAX_EVENT_LOG).unwrap();
    assert_eq!(
        read_event_log(&path).unwrap().len(),
        usize::try_from(MAX_EVENT_LOG).unwrap()
    );
    at_budget.set_len(MAX_EVENT_LOG + 1).unwrap();
    let error = read_event_log(&path).unwrap_err();
    assert!(
        matches!(error, AgentError::EventLogTooLarge { max, .. } if max == MAX_EVENT_LOG),
        "{error}"
    );
}

#[test]
fn rejects_missing_event_log_with_event_log_read() {
    let dir = tempfile::tempdir().unwrap();
    let error = read_event_log(&dir.path().join("absent")).unwrap_err();
    assert!(matches!(error, AgentError::EventLogRead { .. }), "{error}");
}

// ---- object slots ----------------------------------------------------------------------

/// The whole exchange, twice, on one connection: libtpms holds three transient objects,
/// so anything left loaded would make the second round fail with TPM_RC_OBJECT_MEMORY.
#[test]
fn full_exchange_twice_in_one_session_leaves_no_object_loaded() {
    let tpm = start();
    tpm.pcr_extend(16, b"plinth agent e2e: twice").unwrap();
    let mut collector = open(&tpm);
    let roots = local_ca(&tpm);
    for round in 0..2 {
        let identity = collector.identity().unwrap();
        let verified_ek =
            verify_ek_certificate(identity.ek_certificate.as_deref().unwrap(), &roots, now())
                .unwrap();
        let ek = Public::from_either(&identity.ek_public).unwrap();
        verified_ek.check_public_matches(&ek).unwrap();
        let ak = Public::from_either(&identity.ak_public).unwrap();
        assert_eq!(
            collector.loaded_transient_objects().unwrap(),
            0,
            "round {round}"
        );

        let (challenge, pending) = make_credential(&ek, &ak, &SystemRandom).unwrap();
        let secret = collector
            .activate_credential(&challenge.id_object, &challenge.encrypted_secret)
            .unwrap();
        let _activated = pending.verify(&secret).unwrap();
        assert_eq!(
            collector.loaded_transient_objects().unwrap(),
            0,
            "round {round}"
        );

        let nonce = nonce();
        let quote = collector.quote(&boot_selection(), &nonce).unwrap();
        let _verified = verify_quote(
            &ak,
            &quote.attest,
            &quote.signature,
            &nonce,
            &quote.pcr_values().unwrap(),
        )
        .unwrap();
        assert_eq!(
            collector.loaded_transient_objects().unwrap(),
            0,
            "round {round}"
        );

        let created = collector.create_certified_key(&nonce).unwrap();
        let _certified = verify_certify(
            &ak,
            &created.attest,
            &created.signature,
            &created.public,
            &nonce,
        )
        .unwrap();
        assert_eq!(
            collector.loaded_transient_objects().unwrap(),
            0,
            "round {round}"
        );

        let message = b"handshake";
        let to_sign: [u8; 32] = digest(HashAlg::Sha256, message)
            .as_bytes()
            .try_into()
            .unwrap();
        let signature = collector.sign_digest(&created.key, &to_sign).unwrap();
        PublicKey::from_spki_der(&created.spki_der)
            .unwrap()
            .verify(
                SignatureScheme::EcdsaDer(HashAlg::Sha256),
                message,
                &signature,
            )
            .unwrap();
        assert_eq!(
            collector.loaded_transient_objects().unwrap(),
            0,
            "round {round}"
        );
    }
    drop(collector);
    // And nothing behind the collector's back either: no transient object, no session.
    let handles = tpm
        .tool_keep_loaded("tpm2_getcap", &["handles-transient"])
        .unwrap();
    assert!(handles.is_empty(), "{}", String::from_utf8_lossy(&handles));
    let sessions = tpm
        .tool_keep_loaded("tpm2_getcap", &["handles-loaded-session"])
        .unwrap();
    assert!(
        sessions.is_empty(),
        "{}",
        String::from_utf8_lossy(&sessions)
    );
}
