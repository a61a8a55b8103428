//! SEV-SNP: attestation report parsing and verification, the extended report's certificate
//! table, VCEK/VLEK extension decoding and AMD CRL parsing.
//!
//! The first input byte picks the mode:
//! - 0: the rest is a report, parsed, then verified with the real VCEK of a real Turin
//!   report (a pre-verified endorsement) at a time inside its validity;
//! - 1: the rest is a list of 3-byte patches (big-endian offset, new byte) applied to that
//!   real report, so that mutations get past parsing to the TCB, chip and signature checks;
//! - 2: the rest is a certificate table, turned into collateral and used to verify the
//!   real report;
//! - 3: the rest is a DER certificate decoded as a VCEK/VLEK;
//! - otherwise: the rest is a CRL.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use plinth_core::UnixTime;
use plinth_snp::{
    AmdRoots, AttestationReport, CertTable, Collateral, Crl, EndorsementKey, Product, SigningKey,
    VerifiedEndorsement, verify, verify_endorsement, verify_report,
};

const REPORT: &[u8] = include_bytes!("../../testdata/sev-snp/oak/turin_oc_report.bin");
const VCEK: &[u8] = include_bytes!("../../testdata/sev-snp/oak/turin_oc_vcek.der");
/// 2025-08-01T00:00:00Z, inside the VCEK's validity.
const NOW_SECS: u64 = 1_754_006_400;

struct Fixture {
    roots: AmdRoots,
    endorsement: VerifiedEndorsement,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let roots = AmdRoots::builtin().expect("shipped roots");
        let mut collateral = Collateral::new()
            .with_builtin_intermediates()
            .expect("shipped");
        collateral.add_vcek(VCEK).expect("real VCEK");
        let key = collateral.endorsement(SigningKey::Vcek).expect("added");
        let endorsement = verify_endorsement(key, &collateral, &roots, Product::Turin, now())
            .expect("real chain");
        Fixture { roots, endorsement }
    })
}

fn now() -> UnixTime {
    UnixTime::from_secs(NOW_SECS)
}

fn exercise_report(bytes: &[u8]) {
    if let Ok(report) = AttestationReport::parse(bytes) {
        let _ = (
            report.version(),
            report.policy(),
            report.reported_tcb(),
            report.cpuid_product(),
        );
        let _ = (
            report.chip_id(),
            report.signed_bytes().len(),
            report.tcb_layout_hint(),
        );
    }
    if let Ok(verified) = verify_report(bytes, &fixture().endorsement, now()) {
        let _ = (
            verified.claims(),
            verified.reported_tcb(),
            verified.chip_id(),
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => exercise_report(rest),
        1 => {
            let mut report = REPORT.to_vec();
            for patch in rest.chunks_exact(3) {
                let offset = usize::from(u16::from_be_bytes([patch[0], patch[1]]));
                if let Some(byte) = report.get_mut(offset) {
                    *byte = patch[2];
                }
            }
            exercise_report(&report);
        }
        2 => {
            if let Ok(table) = CertTable::parse(rest) {
                if let Ok(collateral) = Collateral::from_cert_table(&table) {
                    let _ = verify(REPORT, &collateral, &fixture().roots, None, now());
                }
            }
        }
        3 => {
            if let Ok(key) = EndorsementKey::from_der(rest) {
                let _ = (
                    key.kind(),
                    key.product(),
                    key.hwid(),
                    key.tcb(),
                    key.csp_id(),
                );
            }
        }
        _ => {
            if let Ok(crl) = Crl::from_der(rest) {
                let _ = (
                    crl.revoked_serials().count(),
                    crl.this_update(),
                    crl.next_update(),
                );
            }
        }
    }
});
