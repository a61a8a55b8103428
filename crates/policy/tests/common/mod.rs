//! Loading and verifying the real vectors the firmware policies are written for.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code,
    unreachable_pub,
    reason = "test code: a failure should abort loudly; not every test uses every loader; a test helper module"
)]

use plinth_core::{Digest, HashAlg, UnixTime};
use plinth_nitro::{NitroTrust, VerifiedDocument};
use plinth_snp::{AmdRoots, Collateral, VerifiedReport};
use plinth_tpm::{
    EkRoots, PcrValues, Public, VerifiedAkCertificate, VerifiedEventLog, VerifiedQuote,
    verify_ak_certificate, verify_event_log, verify_quote,
};

pub const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");
pub const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../firmware-policies");

pub fn read(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{TESTDATA}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn at(text: &str) -> UnixTime {
    UnixTime::parse(text).unwrap()
}

/// The GCE COS 85 evidence: the SHA-256 quote (nonce 0x9009), its event log, and the
/// Google vTPM AK certificate (valid 2026-11-23, as in crates/tpm/tests/ek_certs.rs).
pub struct Gce {
    pub quote: VerifiedQuote,
    pub log: VerifiedEventLog,
    pub ak_cert: VerifiedAkCertificate,
}

pub fn gce() -> Gce {
    let json: serde_json::Value =
        serde_json::from_slice(&read("tpm/quotes/gce-cos85/pcrs.json")).unwrap();
    let mut pcrs = PcrValues::default();
    for (bank, values) in json["pcrs"].as_object().unwrap() {
        let bank: HashAlg = bank.parse().unwrap();
        for (index, hex) in values.as_object().unwrap() {
            pcrs.insert(
                bank,
                index.parse().unwrap(),
                Digest::from_hex(bank, hex.as_str().unwrap()).unwrap(),
            )
            .unwrap();
        }
    }
    let q = |name: &str| read(&format!("tpm/quotes/gce-cos85/{name}"));
    let ak = Public::from_tpmt(&q("ak_pub.tpmt_public.bin")).unwrap();
    let quote = verify_quote(
        &ak,
        &q("quote_sha256.tpms_attest.bin"),
        &q("quote_sha256.tpmt_signature.bin"),
        &[0x90, 0x09],
        &pcrs,
    )
    .unwrap();
    let log = verify_event_log(&q("eventlog.bin"), &quote).unwrap();
    let roots = EkRoots::from_der(
        [read("tpm/ca-roots/google-vtpm/tpm_ek_root_1.cer")],
        [read("tpm/ca-roots/google-vtpm/tpm_ek_intermediate_2.crt")],
    )
    .unwrap();
    let ak_cert =
        verify_ak_certificate(&q("ak_cert.der"), &[], &roots, at("2026-11-23T00:00:00Z")).unwrap();
    ak_cert.check_public_matches(&ak).unwrap();
    Gce {
        quote,
        log,
        ak_cert,
    }
}

/// Anjuna's sample production enclave document, verified at its own timestamp.
pub const NITRO_DOC: &str = "nitro/anjuna/attestdoc/sample_prod_doc.bin";
pub const NITRO_TIMESTAMP_MS: u64 = 1_616_018_515_685;

pub fn nitro() -> VerifiedDocument {
    plinth_nitro::verify(
        &read(NITRO_DOC),
        &NitroTrust::aws_root_g1(),
        UnixTime::from_millis(NITRO_TIMESTAMP_MS),
    )
    .unwrap()
}

/// A report and its VCEK from Project Oak (Milan release, Turin), verified at a time
/// inside the VCEK's validity.
pub fn snp(report: &str, vcek: &str) -> VerifiedReport {
    let mut collateral = Collateral::new().with_builtin_intermediates().unwrap();
    collateral.add_endorsement(&read(vcek)).unwrap();
    plinth_snp::verify(
        &read(report),
        &collateral,
        &AmdRoots::builtin().unwrap(),
        None,
        at("2025-08-01T00:00:00Z"),
    )
    .unwrap()
}

pub fn snp_milan() -> VerifiedReport {
    snp(
        "sev-snp/oak/milan_oc_release_report.bin",
        "sev-snp/oak/milan_oc_release_vcek.der",
    )
}

pub fn snp_turin() -> VerifiedReport {
    snp(
        "sev-snp/oak/turin_oc_report.bin",
        "sev-snp/oak/turin_oc_vcek.der",
    )
}
