//! Every real SEV-SNP report in testdata, verified against the pinned AMD roots, and the
//! negatives named after the error they expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use base64::Engine as _;
use plinth_core::{Nonce, Platform, UnixTime};
use plinth_snp::{
    AmdRoots, AttestationReport, CertKind, CertTable, Collateral, Error, OfflineStore, Product,
    SigningKey, TcbComponent, VerifiedReport, verify, verify_endorsement, verify_report,
};

fn path(rel: &str) -> String {
    format!("{}/../../testdata/{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn pem_ders(rel: &str) -> Vec<Vec<u8>> {
    plinth_x509::certificates_from_pem(&read(rel))
        .unwrap()
        .iter()
        .map(|c| c.der().to_vec())
        .collect()
}

fn at(text: &str) -> UnixTime {
    UnixTime::parse(text).unwrap()
}

fn roots() -> AmdRoots {
    AmdRoots::builtin().unwrap()
}

/// The VCEK/VLEK alone; the ASK/ASVK come from the crate's shipped AMD certificates.
fn collateral(vek_der: &[u8]) -> Collateral {
    let mut c = Collateral::new().with_builtin_intermediates().unwrap();
    c.add_endorsement(vek_der).unwrap();
    c
}

/// The SNP report inside an Azure HCL report: bytes [32, 1216) (SOURCES.md, "hcl").
fn hcl_snp_report(hcl: &[u8]) -> Vec<u8> {
    hcl[32..32 + 1184].to_vec()
}

/// Azure trustee evidence JSON: the HCL report (byte array, or base64url) and the VCEK
/// (PEM, or base64url DER).
fn azure_evidence(rel: &str) -> (Vec<u8>, Vec<u8>) {
    let json: serde_json::Value = serde_json::from_slice(&read(rel)).unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE;
    let hcl = match (&json["report"], &json["hcl_report"]) {
        (serde_json::Value::Array(bytes), _) => bytes
            .iter()
            .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
            .collect(),
        (_, serde_json::Value::String(text)) => b64.decode(text).unwrap(),
        _ => panic!("{rel}: no HCL report"),
    };
    let vcek = json["vcek"].as_str().unwrap();
    let vcek = if vcek.contains("BEGIN CERTIFICATE") {
        plinth_x509::certificates_from_pem(vcek.as_bytes()).unwrap()[0]
            .der()
            .to_vec()
    } else {
        b64.decode(vcek).unwrap()
    };
    (hcl_snp_report(&hcl), vcek)
}

struct Vector {
    report: Vec<u8>,
    vek: Vec<u8>,
    /// A time inside the VCEK/VLEK validity (SOURCES.md).
    now: UnixTime,
    product: Product,
}

#[expect(clippy::too_many_lines, reason = "one table row per real vector")]
fn vectors() -> Vec<(&'static str, Vector)> {
    let v = |report: Vec<u8>, vek: Vec<u8>, now: &str, product| Vector {
        report,
        vek,
        now: at(now),
        product,
    };
    let virtee = hex::decode(read("sev-snp/virtee-sev/report_milan.hex")).unwrap();
    let (az0, az0_vcek) = azure_evidence("azure-cvm/az-snp-vtpm/evidence-v0.json");
    let (az1, az1_vcek) = azure_evidence("azure-cvm/az-snp-vtpm/evidence-v1.json");
    let (az2, az2_vcek) = azure_evidence("azure-cvm/az-snp-vtpm/evidence-v2.json");
    vec![
        // VCEK 2023-04-03 .. 2030-04-03
        (
            "virtee-sev/report_milan.hex",
            v(
                virtee,
                read("sev-snp/virtee-sev/vcek_milan.der"),
                "2024-06-01T00:00:00Z",
                Product::Milan,
            ),
        ),
        // VCEK 2022-09-24 .. 2029-09-24
        (
            "go-sev-guest/attestation.bin",
            v(
                read("sev-snp/go-sev-guest/attestation.bin"),
                read("sev-snp/go-sev-guest/vcek.testcer"),
                "2024-06-01T00:00:00Z",
                Product::Milan,
            ),
        ),
        // VCEK 2023-01-24 .. 2030-01-24
        (
            "trustee/test-report.bin",
            v(
                read("sev-snp/trustee/test-report.bin"),
                read("sev-snp/trustee/test-vcek.der"),
                "2024-06-01T00:00:00Z",
                Product::Milan,
            ),
        ),
        // VLEK 2024-12-10 .. 2025-12-10
        (
            "trustee/test-vlek-report.bin",
            v(
                read("sev-snp/trustee/test-vlek-report.bin"),
                read("sev-snp/trustee/test-vlek.der"),
                "2025-06-01T00:00:00Z",
                Product::Milan,
            ),
        ),
        // VCEK 2025-05-27 .. 2032-05-27
        (
            "trustee/e2e-report.derived.bin",
            v(
                read("sev-snp/trustee/e2e-report.derived.bin"),
                read("sev-snp/trustee/e2e-vcek.derived.der"),
                "2025-08-01T00:00:00Z",
                Product::Genoa,
            ),
        ),
        // VCEK 2025-07-17 .. 2032-07-17
        (
            "oak/turin_oc_report.bin",
            v(
                read("sev-snp/oak/turin_oc_report.bin"),
                read("sev-snp/oak/turin_oc_vcek.der"),
                "2025-08-01T00:00:00Z",
                Product::Turin,
            ),
        ),
        // VCEK 2025-01-15 .. 2032-01-15
        (
            "oak/milan_oc_release_report.bin",
            v(
                read("sev-snp/oak/milan_oc_release_report.bin"),
                read("sev-snp/oak/milan_oc_release_vcek.der"),
                "2025-08-01T00:00:00Z",
                Product::Milan,
            ),
        ),
        // VCEK 2023-05-02 .. 2030-05-02 (first block of the bundle)
        (
            "az-snp-vtpm/hcl-report.snp-report.bin",
            v(
                read("azure-cvm/az-snp-vtpm/hcl-report.snp-report.bin"),
                pem_ders("azure-cvm/az-snp-vtpm/vcek.pem")[0].clone(),
                "2024-06-01T00:00:00Z",
                Product::Milan,
            ),
        ),
        // VCEK 2025-01-24 .. 2032-01-24
        (
            "az-snp-vtpm/evidence-genoa.snp-report.bin",
            v(
                read("azure-cvm/az-snp-vtpm/evidence-genoa.snp-report.bin"),
                pem_ders("azure-cvm/az-snp-vtpm/vcek-genoa.pem")[0].clone(),
                "2025-08-01T00:00:00Z",
                Product::Genoa,
            ),
        ),
        // VCEK 2025-01-28 .. 2032-01-28
        (
            "az-snp-vtpm/evidence-v0.json",
            v(az0, az0_vcek, "2025-08-01T00:00:00Z", Product::Milan),
        ),
        (
            "az-snp-vtpm/evidence-v1.json",
            v(az1, az1_vcek, "2025-08-01T00:00:00Z", Product::Milan),
        ),
        (
            "az-snp-vtpm/evidence-v2.json",
            v(az2, az2_vcek, "2025-08-01T00:00:00Z", Product::Milan),
        ),
    ]
}

fn verified(name: &str) -> VerifiedReport {
    let (_, v) = vectors().into_iter().find(|(n, _)| *n == name).unwrap();
    verify(&v.report, &collateral(&v.vek), &roots(), None, v.now).unwrap()
}

#[test]
fn every_snp_vector_verifies_against_the_pinned_ark_of_its_product() {
    let roots = roots();
    for (name, v) in vectors() {
        let report = verify(&v.report, &collateral(&v.vek), &roots, None, v.now)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.product(), v.product, "{name}");
        // Naming the product explicitly gives the same result.
        let again = verify(
            &v.report,
            &collateral(&v.vek),
            &roots,
            Some(v.product),
            v.now,
        )
        .unwrap();
        assert_eq!(again.measurement(), report.measurement(), "{name}");
    }
}

#[test]
fn milan_report_facts() {
    let r = verified("trustee/test-report.bin");
    assert_eq!(r.signing_key(), SigningKey::Vcek);
    assert_eq!(r.report().version(), 2);
    assert_eq!(r.policy().raw(), 0x3_001f);
    assert_eq!(r.vmpl(), 0);
    let tcb = r.reported_tcb();
    assert_eq!(tcb.raw(), 0x7308_0000_0000_0003);
    assert_eq!(
        (
            tcb.fmc(),
            tcb.bootloader(),
            tcb.tee(),
            tcb.snp(),
            tcb.microcode()
        ),
        (None, 3, 0, 8, 115)
    );
    assert_eq!(
        hex::encode(r.measurement()),
        "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"
    );
    assert_eq!(
        &hex::encode(r.chip_id().unwrap())[..32],
        "c38427a30d4c7af9d96f7a15b9726982"
    );
    assert_eq!(
        hex::encode(r.report_data()),
        "ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e20000000000000000000000000000000000000000000000000000000000000000"
    );
}

#[test]
fn turin_tcb_layout_is_decoded_with_the_turin_layout() {
    // SOURCES.md: reported_tcb 0x4700000002000100 (fmc=0 bl=1 tee=0 snp=2 ucode=71).
    let r = verified("oak/turin_oc_report.bin");
    assert_eq!(r.product(), Product::Turin);
    assert_eq!(r.report().version(), 5);
    let tcb = r.reported_tcb();
    assert_eq!(tcb.raw(), 0x4700_0000_0200_0100);
    let levels: Vec<_> = tcb.components().collect();
    assert_eq!(
        levels,
        [
            (TcbComponent::Fmc, 0),
            (TcbComponent::Bootloader, 1),
            (TcbComponent::Tee, 0),
            (TcbComponent::Snp, 2),
            (TcbComponent::Microcode, 71),
        ]
    );
    // Turin's hwID is 8 bytes.
    assert_eq!(
        r.chip_id().map(hex::encode).as_deref(),
        Some("3b42092f69c656d3")
    );
    assert_eq!(
        r.cpuid().map(|c| (c.family, c.model, c.stepping)),
        Some((26, 2, 1))
    );
    assert!(r.report().launch_mit_vector().is_some());
}

#[test]
fn genoa_and_vlek_facts() {
    let genoa = verified("trustee/e2e-report.derived.bin");
    assert_eq!(genoa.product(), Product::Genoa);
    let tcb = genoa.reported_tcb();
    assert_eq!(
        (tcb.bootloader(), tcb.tee(), tcb.snp(), tcb.microcode()),
        (10, 0, 23, 25)
    );

    let vlek = verified("trustee/test-vlek-report.bin");
    assert_eq!(vlek.signing_key(), SigningKey::Vlek);
    assert_eq!(vlek.vmpl(), 1);
    assert_eq!(vlek.chip_id(), None, "a VLEK does not vouch for CHIP_ID");
    assert_eq!(vlek.csp_id(), Some("CN=cc-us-east-2.amazonaws.com"));
    let tcb = vlek.reported_tcb();
    assert_eq!((tcb.bootloader(), tcb.snp(), tcb.microcode()), (4, 24, 217));
}

#[test]
fn policy_flags_and_claims() {
    // go-sev-guest's report allows debugging (policy 0xb0000).
    let r = verified("go-sev-guest/attestation.bin");
    let p = r.policy();
    assert!(p.debug_allowed() && p.smt_allowed());
    assert!(!p.migration_agent_allowed() && !p.single_socket_required());
    let claims = r.claims();
    assert_eq!(claims.platform, Platform::SevSnp);
    assert!(claims.debug);
    assert_eq!(
        claims.measurements.len(),
        1,
        "no ID block, so no key digests"
    );
    assert_eq!(claims.measurements[0].name, "measurement");
    assert_eq!(
        claims.measurements[0].value.to_hex(),
        "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"
    );
    assert_eq!(
        claims.hardware_id.as_deref().map(|h| &h[..32]),
        Some("3ac3fe21e13fb0990eb28a802e3fb6a2")
    );
    assert_eq!(
        claims.nonce.as_deref().map(|n| &n[..5]),
        Some(&[1, 2, 3, 4, 5][..])
    );
    assert_eq!(claims.bound_key, None);
}

#[test]
fn rejects_a_key_the_report_data_does_not_bind_with_key_binding_mismatch() {
    let r = verified("trustee/test-report.bin");
    let nonce = Nonce::from_slice(&[9; 32]).unwrap();
    assert_eq!(
        r.verify_key_binding(&nonce, b"spki").err(),
        Some(Error::KeyBindingMismatch)
    );
    assert_eq!(
        r.claims_with_bound_key(&nonce, b"spki").err(),
        Some(Error::KeyBindingMismatch)
    );
}

#[test]
fn chain_from_the_evidence_bundle_verifies() {
    // Azure hands out VCEK + ASK + ARK in one PEM: the ARK in it is ignored, the pinned
    // one is used.
    let ders = pem_ders("azure-cvm/az-snp-vtpm/vcek.pem");
    let mut c = Collateral::new();
    c.add_vcek(&ders[0]).unwrap();
    for der in &ders[1..] {
        c.add_intermediate(der).unwrap();
    }
    let report = read("azure-cvm/az-snp-vtpm/hcl-report.snp-report.bin");
    let r = verify(&report, &c, &roots(), None, at("2024-06-01T00:00:00Z")).unwrap();
    assert_eq!(r.product(), Product::Milan);
}

#[test]
fn chain_from_an_extended_report_certificate_table_verifies() {
    // A GHCB certificate table holding the real VCEK, ASK and ARK of virtee's Milan report.
    let vcek = read("sev-snp/virtee-sev/vcek_milan.der");
    let chain = pem_ders("sev-snp/virtee-sev/cert_chain_milan");
    let entries = [
        (CertKind::Vcek, &vcek),
        (CertKind::Ask, &chain[0]),
        (CertKind::Ark, &chain[1]),
    ];
    let header = (entries.len() + 1) * 24;
    let mut table = Vec::new();
    let mut data = Vec::new();
    for (kind, der) in entries {
        table.extend(kind.guid());
        table.extend(u32::try_from(header + data.len()).unwrap().to_le_bytes());
        table.extend(u32::try_from(der.len()).unwrap().to_le_bytes());
        data.extend_from_slice(der);
    }
    table.extend([0; 24]);
    table.extend(data);

    let parsed = CertTable::parse(&table).unwrap();
    assert_eq!(parsed.get(CertKind::Vcek), Some(vcek.as_slice()));
    let c = Collateral::from_cert_table(&parsed).unwrap();
    let report = hex::decode(read("sev-snp/virtee-sev/report_milan.hex")).unwrap();
    let r = verify(&report, &c, &roots(), None, at("2024-06-01T00:00:00Z")).unwrap();
    assert_eq!(r.product(), Product::Milan);
}

#[test]
fn chain_from_the_offline_store_verifies() {
    let mut store = OfflineStore::new();
    for vcek in [
        "sev-snp/virtee-sev/vcek_milan.der",
        "sev-snp/trustee/test-vcek.der",
        "sev-snp/oak/milan_oc_release_vcek.der",
        "sev-snp/oak/turin_oc_vcek.der",
        "sev-snp/virtee-sev/vcek_turin.der",
    ] {
        store.add_vcek(&read(vcek)).unwrap();
    }
    for der in plinth_snp::builtin_intermediates().unwrap() {
        store.add_intermediate(der.der()).unwrap();
    }
    assert_eq!(store.vcek_count(), 5);
    for (name, product) in [
        ("sev-snp/oak/turin_oc_report.bin", Product::Turin),
        ("sev-snp/oak/milan_oc_release_report.bin", Product::Milan),
        ("sev-snp/trustee/test-report.bin", Product::Milan),
    ] {
        let bytes = read(name);
        let parsed = AttestationReport::parse(&bytes).unwrap();
        let c = store.collateral_for(&parsed, product).unwrap();
        let _verified = verify(
            &bytes,
            &c,
            &roots(),
            Some(product),
            at("2025-08-01T00:00:00Z"),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // No VCEK for this chip: go-sev-guest's was not stored.
    let bytes = read("sev-snp/go-sev-guest/attestation.bin");
    let parsed = AttestationReport::parse(&bytes).unwrap();
    assert_eq!(
        store.collateral_for(&parsed, Product::Milan).err(),
        Some(Error::MissingCertificate("VCEK"))
    );
}

#[test]
fn a_cached_endorsement_verifies_reports_and_is_rechecked_for_time() {
    let v = vectors()
        .into_iter()
        .find(|(n, _)| *n == "trustee/test-report.bin")
        .unwrap()
        .1;
    let c = collateral(&v.vek);
    let key = c.endorsement(SigningKey::Vcek).unwrap();
    let endorsement = verify_endorsement(key, &c, &roots(), Product::Milan, v.now).unwrap();
    assert_eq!(endorsement.kind(), SigningKey::Vcek);
    let _verified = verify_report(&v.report, &endorsement, v.now).unwrap();
    // The same cached endorsement, used after the VCEK's notAfter (2030-01-24T17:58:26Z).
    assert_eq!(
        verify_report(&v.report, &endorsement, at("2030-02-01T00:00:00Z")).err(),
        Some(Error::VekExpired {
            kind: SigningKey::Vcek,
            not_after: at("2030-01-24T17:58:26Z"),
            now: at("2030-02-01T00:00:00Z"),
        })
    );
}

// ---- negatives, named after the error they expect ----

#[test]
fn rejects_a_byte_flipped_in_the_signed_region_with_signature_invalid() {
    let roots = roots();
    for (name, v) in vectors() {
        // virtee/sev's known-bad variant flips bit 7 of byte 21 (FAMILY_ID); also flip a
        // MEASUREMENT byte and the last signed byte.
        for offset in [21, 0x90, 0x29F] {
            let mut report = v.report.clone();
            report[offset] ^= 0x80;
            assert_eq!(
                verify(&report, &collateral(&v.vek), &roots, None, v.now).err(),
                Some(Error::SignatureInvalid),
                "{name} byte {offset:#x}"
            );
        }
    }
}

#[test]
fn bytes_outside_the_signed_region_do_not_matter() {
    let v = vectors()
        .into_iter()
        .find(|(n, _)| *n == "oak/turin_oc_report.bin")
        .unwrap()
        .1;
    let mut report = v.report.clone();
    report[0x400] ^= 0xff; // reserved, unsigned tail of the signature area
    let _verified = verify(&report, &collateral(&v.vek), &roots(), None, v.now).unwrap();
}

#[test]
fn rejects_a_vcek_of_another_chip_with_chip_id_mismatch() {
    // trustee's report and virtee's VCEK: both Milan at TCB 0x7308000000000003, two chips.
    let report = read("sev-snp/trustee/test-report.bin");
    let c = collateral(&read("sev-snp/virtee-sev/vcek_milan.der"));
    assert_eq!(
        verify(&report, &c, &roots(), None, at("2024-06-01T00:00:00Z")).err(),
        Some(Error::ChipIdMismatch)
    );
}

#[test]
fn rejects_a_vcek_for_another_tcb_with_tcb_mismatch() {
    // trustee's report is at bl=3 snp=8 ucode=115; go-sev-guest's VCEK certifies bl=2.
    let report = read("sev-snp/trustee/test-report.bin");
    let c = collateral(&read("sev-snp/go-sev-guest/vcek.testcer"));
    assert_eq!(
        verify(&report, &c, &roots(), None, at("2024-06-01T00:00:00Z")).err(),
        Some(Error::TcbMismatch {
            component: "bootloader",
            report: 3,
            certificate: 2
        })
    );
}

#[test]
fn rejects_milan_evidence_when_only_the_genoa_ark_is_pinned_with_product_not_pinned() {
    let mut genoa_only = AmdRoots::empty();
    let genoa_ark =
        plinth_x509::certificates_from_pem(include_bytes!("../roots/genoa_ask_ark_asvk.pem"))
            .unwrap()
            .into_iter()
            .find(|c| c.subject().common_name() == Some("ARK-Genoa"))
            .unwrap();
    genoa_only.pin(Product::Genoa, genoa_ark.der()).unwrap();
    let report = read("sev-snp/trustee/test-report.bin");
    let c = collateral(&read("sev-snp/trustee/test-vcek.der"));
    assert_eq!(
        verify(&report, &c, &genoa_only, None, at("2024-06-01T00:00:00Z")).err(),
        Some(Error::ProductNotPinned(Product::Milan))
    );
    // The Genoa report still verifies under it.
    let genoa = read("sev-snp/trustee/e2e-report.derived.bin");
    let c = collateral(&read("sev-snp/trustee/e2e-vcek.derived.der"));
    let _verified = verify(&genoa, &c, &genoa_only, None, at("2025-08-01T00:00:00Z")).unwrap();
}

#[test]
fn rejects_milan_evidence_verified_as_genoa_with_product_mismatch() {
    let report = read("sev-snp/oak/milan_oc_release_report.bin");
    let c = collateral(&read("sev-snp/oak/milan_oc_release_vcek.der"));
    assert_eq!(
        verify(
            &report,
            &c,
            &roots(),
            Some(Product::Genoa),
            at("2025-08-01T00:00:00Z")
        )
        .err(),
        Some(Error::ProductMismatch {
            expected: Product::Genoa,
            found: Product::Milan,
            source_name: "certificate productName"
        })
    );
}

#[test]
fn rejects_a_vcek_expired_at_now_with_vek_expired() {
    let report = read("sev-snp/trustee/test-report.bin");
    let c = collateral(&read("sev-snp/trustee/test-vcek.der"));
    let now = at("2030-02-01T00:00:00Z");
    assert_eq!(
        verify(&report, &c, &roots(), None, now).err(),
        Some(Error::VekExpired {
            kind: SigningKey::Vcek,
            not_after: at("2030-01-24T17:58:26Z"),
            now
        })
    );
    // VLEKs live one year: trustee's expired on 2025-12-10.
    let report = read("sev-snp/trustee/test-vlek-report.bin");
    let c = collateral(&read("sev-snp/trustee/test-vlek.der"));
    let now = at("2026-01-01T00:00:00Z");
    assert_eq!(
        verify(&report, &c, &roots(), None, now).err(),
        Some(Error::VekExpired {
            kind: SigningKey::Vlek,
            not_after: at("2025-12-10T22:14:21Z"),
            now
        })
    );
}

#[test]
fn rejects_a_vcek_not_yet_valid_with_vek_not_yet_valid() {
    let report = read("sev-snp/oak/turin_oc_report.bin");
    let c = collateral(&read("sev-snp/oak/turin_oc_vcek.der"));
    let now = at("2025-07-01T00:00:00Z");
    assert_eq!(
        verify(&report, &c, &roots(), None, now).err(),
        Some(Error::VekNotYetValid {
            kind: SigningKey::Vcek,
            not_before: at("2025-07-17T17:04:46Z"),
            now
        })
    );
}

#[test]
fn rejects_a_truncated_report_with_truncated() {
    let report = read("sev-snp/oak/turin_oc_report.bin");
    let c = collateral(&read("sev-snp/oak/turin_oc_vcek.der"));
    assert_eq!(
        verify(
            &report[..1183],
            &c,
            &roots(),
            None,
            at("2025-08-01T00:00:00Z")
        )
        .err(),
        Some(Error::Truncated {
            structure: "attestation report",
            len: 1183,
            needed: 1184
        })
    );
    assert_eq!(
        AttestationReport::parse(&report[..0x2A0]).err(),
        Some(Error::Truncated {
            structure: "attestation report",
            len: 0x2A0,
            needed: 1184
        })
    );
}

#[test]
fn rejects_an_unknown_report_version_with_unknown_report_version() {
    let mut report = read("sev-snp/oak/turin_oc_report.bin");
    for version in [0u32, 1, 6, 0xffff_ffff] {
        report[..4].copy_from_slice(&version.to_le_bytes());
        assert_eq!(
            AttestationReport::parse(&report).err(),
            Some(Error::UnknownReportVersion(version))
        );
    }
}

#[test]
fn rejects_a_vlek_report_with_a_vcek_chain_with_signing_key_mismatch() {
    let report = read("sev-snp/trustee/test-vlek-report.bin");
    let vcek = read("sev-snp/trustee/test-vcek.der");
    let now = at("2025-06-01T00:00:00Z");
    assert_eq!(
        verify(&report, &collateral(&vcek), &roots(), None, now).err(),
        Some(Error::SigningKeyMismatch {
            report: SigningKey::Vlek,
            certificate: SigningKey::Vcek
        })
    );
    // And through a pre-verified VCEK endorsement.
    let c = collateral(&vcek);
    let endorsement = verify_endorsement(
        c.endorsement(SigningKey::Vcek).unwrap(),
        &c,
        &roots(),
        Product::Milan,
        now,
    )
    .unwrap();
    assert_eq!(
        verify_report(&report, &endorsement, now).err(),
        Some(Error::SigningKeyMismatch {
            report: SigningKey::Vlek,
            certificate: SigningKey::Vcek
        })
    );
}

#[test]
fn rejects_a_vlek_given_as_vcek_with_wrong_endorsement_kind() {
    let mut c = Collateral::new();
    assert_eq!(
        c.add_vcek(&read("sev-snp/trustee/test-vlek.der")),
        Err(Error::WrongEndorsementKind {
            expected: SigningKey::Vcek,
            found: SigningKey::Vlek
        })
    );
}

#[test]
fn rejects_trustee_known_bad_vceks_with_chain_signature_invalid() {
    // SOURCES.md: KNOWN-BAD, hwID replaced after signing, so the ASK signature fails.
    let report = read("sev-snp/trustee/test-report.bin");
    for bad in [
        "sev-snp/trustee/test-vcek-invalid-legacy.der",
        "sev-snp/trustee/test-vcek-invalid-new.der",
    ] {
        let c = collateral(&read(bad));
        let err = verify(&report, &c, &roots(), None, at("2024-06-01T00:00:00Z")).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Chain {
                    kind: SigningKey::Vcek,
                    product: Product::Milan,
                    source: plinth_x509::Error::SignatureInvalid { subject },
                } if subject.contains("SEV-VCEK")
            ),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn rejects_a_vcek_without_its_ask_with_chain_unknown_issuer() {
    let report = read("sev-snp/trustee/test-report.bin");
    let mut c = Collateral::new();
    c.add_vcek(&read("sev-snp/trustee/test-vcek.der")).unwrap();
    let err = verify(&report, &c, &roots(), None, at("2024-06-01T00:00:00Z")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Chain {
                source: plinth_x509::Error::UnknownIssuer { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn rejects_a_report_without_its_certificate_with_missing_certificate() {
    let report = read("sev-snp/trustee/test-report.bin");
    let c = Collateral::new().with_builtin_intermediates().unwrap();
    assert_eq!(
        verify(&report, &c, &roots(), None, at("2024-06-01T00:00:00Z")).err(),
        Some(Error::MissingCertificate("VCEK"))
    );
}

/// A CRL (as AMD's KDS serves them) issued under `issuer` with a signature the ARK did
/// not make: generated for the test, since no real AMD CRL is in the vector set.
fn unsigned_crl(issuer: &[u8]) -> Vec<u8> {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(u8::try_from(len).unwrap());
        } else if len < 0x100 {
            out.extend([0x81, u8::try_from(len).unwrap()]);
        } else {
            out.extend([
                0x82,
                u8::try_from(len >> 8).unwrap(),
                u8::try_from(len & 0xff).unwrap(),
            ]);
        }
        out.extend_from_slice(content);
        out
    }
    // RSASSA-PSS SHA-384 as in AMD's certificates.
    let alg = hex::decode("304106092a864886f70d01010a3034a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130").unwrap();
    let tbs = tlv(
        0x30,
        &[
            vec![2, 1, 1],
            alg.clone(),
            issuer.to_vec(),
            tlv(0x17, b"240101000000Z"),
            tlv(0x17, b"350101000000Z"),
        ]
        .concat(),
    );
    tlv(0x30, &[tbs, alg, tlv(0x03, &[0; 513])].concat())
}

#[test]
fn rejects_a_crl_the_ark_did_not_sign_with_crl_signature_invalid() {
    let roots = roots();
    let milan_ark = roots.ark(Product::Milan).unwrap();
    let report = read("sev-snp/trustee/test-report.bin");
    let mut c = collateral(&read("sev-snp/trustee/test-vcek.der"));
    c.add_crl(&unsigned_crl(milan_ark.subject().der())).unwrap();
    assert_eq!(
        verify(&report, &c, &roots, None, at("2024-06-01T00:00:00Z")).err(),
        Some(Error::CrlSignatureInvalid)
    );
    // A CRL of another product's ARK does not apply to a Milan chain.
    let mut c = collateral(&read("sev-snp/trustee/test-vcek.der"));
    c.add_crl(&unsigned_crl(
        roots.ark(Product::Genoa).unwrap().subject().der(),
    ))
    .unwrap();
    let _verified = verify(&report, &c, &roots, None, at("2024-06-01T00:00:00Z")).unwrap();
}
