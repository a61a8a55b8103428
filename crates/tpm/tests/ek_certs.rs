//! Real TPM EK certificates (Intel PTT, `STMicro` RSA and ECC, Nuvoton, Google vTPM) chained
//! to their vendors' roots, the GCE AK certificate matched to the quoting AK, the EK
//! allow-list, and negatives named after the error each one expects.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::path::{Path, PathBuf};

use plinth_core::UnixTime;
use plinth_tpm::{
    EkAllowList, EkRoots, Error, Public, verify_ak_certificate, verify_ek_certificate,
};
use plinth_x509::{Certificate, certificates_from_pem};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/tpm");

/// 2026-11-23T00:00:00Z, inside the validity period of every certificate used here.
fn today() -> UnixTime {
    UnixTime::parse("2026-11-23T00:00:00Z").unwrap()
}

fn path(rel: &str) -> PathBuf {
    Path::new(DATA).join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every certificate in a DER or PEM file, as DER.
fn ders(rel: &str) -> Vec<Vec<u8>> {
    let bytes = read(rel);
    if bytes.windows(10).any(|w| w == b"-----BEGIN") {
        certificates_from_pem(&bytes)
            .unwrap()
            .iter()
            .map(|c| c.der().to_vec())
            .collect()
    } else {
        vec![bytes]
    }
}

fn store(name: &str) -> Vec<Vec<u8>> {
    ders(&format!("ca-roots/keylime-tpm_cert_store/{name}"))
}

fn roots(roots: &[Vec<u8>], intermediates: &[Vec<u8>]) -> EkRoots {
    EkRoots::from_der(roots, intermediates).unwrap()
}

fn intel_roots() -> EkRoots {
    roots(&store("INTEL_RT.pem"), &store("INTEL_I.pem"))
}

/// The `GlobalSign` TPM ECC root, which `keylime`'s store lacks, from the `loicsikidi` bundle.
fn globalsign_ecc_root() -> Vec<u8> {
    let bundle = read("ca-roots/loicsikidi/MIRROR.tpm-ca-certificates.pem");
    certificates_from_pem(&bundle)
        .unwrap()
        .into_iter()
        .find(|c| {
            c.subject().common_name() == Some("GlobalSign Trusted Platform Module ECC Root CA")
        })
        .expect("GlobalSign ECC root in the bundle")
        .der()
        .to_vec()
}

fn google_ek_roots() -> EkRoots {
    let mut set = roots(
        &ders("ca-roots/google-vtpm/gcp_ek_ak_ca_root.crt"),
        &ders("ca-roots/google-vtpm/gcp_ek_ak_ca_intermediate_v3.crt"),
    );
    set.add_root_der(&read("ca-roots/google-vtpm/tpm_ek_root_1.cer"))
        .unwrap();
    for name in ["tpm_ek_intermediate_2.crt", "tpm_ek_intermediate_3.crt"] {
        set.add_intermediate_der(&read(&format!("ca-roots/google-vtpm/{name}")))
            .unwrap();
    }
    set
}

#[test]
fn intel_ptt_ek_chains_to_intel_root() {
    let der = read("ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    let ek = verify_ek_certificate(&der, &intel_roots(), today()).unwrap();
    assert_eq!(ek.chain().certificates().count(), 3);
    assert!(
        ek.root_subject().contains("OU=TPM EK root cert signing"),
        "{}",
        ek.root_subject()
    );
    assert_eq!(ek.manufacturer(), Some("id:494E5443"));
    assert_eq!(ek.model(), Some("SPT"));
    assert_eq!(ek.version(), Some("id:00020000"));
    assert!(ek.certificate().subject().is_empty());
    assert_eq!(ek.padding_trimmed(), 0);
}

#[test]
fn intel_ptt_ek_certificate_key_is_the_tpm_ek_public() {
    let der = read("ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    let ek = verify_ek_certificate(&der, &intel_roots(), today()).unwrap();
    let public = Public::from_tpm2b(&read("ek-certs/intel-ptt/ek_rsa.tpm2b_public.bin")).unwrap();
    ek.check_public_matches(&public).unwrap();
    ek.check_public_key_matches(&public.public_key().unwrap())
        .unwrap();
}

#[test]
fn stmicro_rsa_ek_with_nv_padding_chains_to_globalsign_root() {
    let der = read("ek-certs/stmicro/st_rsa_ek_cert.nv-raw.der");
    let set = roots(
        &store("GS_TPM_RT.pem"),
        &[store("STM_RSA_05I.pem"), store("STM_RSA_RT.pem")].concat(),
    );
    let ek = verify_ek_certificate(&der, &set, today()).unwrap();
    assert_eq!(ek.padding_trimmed(), 431);
    assert_eq!(ek.certificate().der().len(), 1169);
    assert_eq!(ek.chain().certificates().count(), 4);
    assert!(
        ek.root_subject()
            .contains("GlobalSign Trusted Platform Module Root CA")
    );
    assert_eq!(ek.manufacturer(), Some("id:53544D20"));
    assert_eq!(ek.model(), Some("ST33HTPHAHB4"));
}

#[test]
fn stmicro_ecc_ek_chains_to_globalsign_ecc_root() {
    let der = read("ek-certs/stmicro/st_ecc_ek_cert.der");
    let set = roots(
        &[globalsign_ecc_root()],
        &[store("STM_ECC_01I.pem"), store("STM_ECC_01RT.pem")].concat(),
    );
    let ek = verify_ek_certificate(&der, &set, today()).unwrap();
    assert_eq!(ek.chain().certificates().count(), 4);
    assert!(
        ek.root_subject()
            .contains("GlobalSign Trusted Platform Module ECC Root CA")
    );
    assert!(matches!(
        ek.public_key().kind(),
        plinth_crypto::KeyKind::Ec(_)
    ));
}

#[test]
fn nuvoton_ek_with_unordered_rdn_set_chains_to_root_2111() {
    let der = read("ek-certs/nuvoton/nuvoton_ek_cert_rootca2111.der");
    let ek = verify_ek_certificate(&der, &roots(&store("NUVO_2111.pem"), &[]), today()).unwrap();
    assert_eq!(ek.chain().certificates().count(), 2);
    assert!(ek.root_subject().contains("Nuvoton TPM Root CA 2111"));
    assert_eq!(ek.manufacturer(), Some("id:4E544300"));
    assert_eq!(ek.model(), Some("NPCT75x"));
    assert_eq!(ek.version(), Some("id:00070002"));
}

#[test]
fn nuvoton_root_2110_with_unordered_rdn_set_parses_and_self_verifies() {
    let root =
        Certificate::from_der(&read("ek-certs/nuvoton/nuvoton_tpm_root_ca_2110.der")).unwrap();
    assert!(root.is_self_issued());
    root.verify_signed_by(&root.public_key().unwrap()).unwrap();
    // Byte-identical to keylime's copy.
    assert_eq!(root.der(), store("NUVO_2110.pem")[0]);
}

#[test]
fn google_vtpm_certificates_chain_to_google_ek_ak_roots() {
    let cases = [
        ("pca_tpm_rsa_enc_cert.pem", "EK/AK CA Root"),
        ("pca_tpm_ecc_enc_cert.pem", "EK/AK CA Root"),
        ("pca_tpm_rsa_sign_cert.pem", "EK/AK CA Root"),
        ("pca_tpm_ecc_sign_cert.pem", "EK/AK CA Root"),
        (
            "uca_tpm_ecc_enc_cert.pem",
            "tpm_ek_v1_cloud_host_root-signer",
        ),
        (
            "uca_tpm_rsa_sign_cert.pem",
            "tpm_ek_v1_cloud_host_root-signer",
        ),
    ];
    let set = google_ek_roots();
    for (file, root) in cases {
        let der = ders(&format!("ek-certs/google-vtpm/{file}")).remove(0);
        let ek =
            verify_ek_certificate(&der, &set, today()).unwrap_or_else(|e| panic!("{file}: {e:?}"));
        assert!(
            ek.root_subject().contains(root),
            "{file}: {}",
            ek.root_subject()
        );
        assert_eq!(ek.chain().certificates().count(), 3, "{file}");
    }
}

#[test]
fn uca_google_ek_carries_tcg_san() {
    let der = ders("ek-certs/google-vtpm/uca_tpm_ecc_enc_cert.pem").remove(0);
    let ek = verify_ek_certificate(&der, &google_ek_roots(), today()).unwrap();
    assert_eq!(ek.manufacturer(), Some("id:474F4F47"));
    assert_eq!(ek.model(), Some("vTPM"));
    assert_eq!(ek.version(), Some("id:20160511"));
}

/// The operator's view: every certificate under ca-roots, self-issued ones as roots and
/// the rest as intermediates, validates every EK certificate in the vector set.
#[test]
fn every_ek_certificate_chains_with_the_whole_vendor_store() {
    let mut all = Vec::new();
    for dir in [
        "keylime-tpm_cert_store",
        "loicsikidi",
        "google-vtpm",
        "microsoft",
        "amd-ftpm",
    ] {
        for entry in std::fs::read_dir(path(&format!("ca-roots/{dir}"))).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            all.extend(ders(&format!("ca-roots/{dir}/{name}")));
        }
    }
    let mut set = EkRoots::new();
    for der in &all {
        let cert = Certificate::from_der(der).unwrap();
        if cert.is_self_issued() {
            set.add_root(cert);
        } else {
            set.add_intermediate(cert);
        }
    }
    let mut checked = 0;
    for vendor in ["intel-ptt", "stmicro", "nuvoton", "google-vtpm"] {
        for entry in std::fs::read_dir(path(&format!("ek-certs/{vendor}"))).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if Path::new(&name).extension().is_some_and(|e| e == "bin") || name.contains("root_ca")
            {
                continue; // TPM2B_PUBLIC files and the Nuvoton root, not EK certificates
            }
            let der = ders(&format!("ek-certs/{vendor}/{name}")).remove(0);
            let ek = verify_ek_certificate(&der, &set, today());
            assert!(ek.is_ok(), "{name}: {ek:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 10);
}

#[test]
fn gce_ak_certificate_chains_and_certifies_the_quoting_ak() {
    let set = roots(
        &ders("ca-roots/google-vtpm/tpm_ek_root_1.cer"),
        &ders("ca-roots/google-vtpm/tpm_ek_intermediate_2.crt"),
    );
    let ak_cert =
        verify_ak_certificate(&read("quotes/gce-cos85/ak_cert.der"), &[], &set, today()).unwrap();
    assert!(
        ak_cert
            .chain()
            .anchor()
            .subject()
            .to_string()
            .contains("root-signer")
    );
    let ak = Public::from_tpmt(&read("quotes/gce-cos85/ak_pub.tpmt_public.bin")).unwrap();
    ak_cert.check_public_matches(&ak).unwrap();
}

#[test]
fn gce_ak_certificate_takes_intermediates_from_the_caller() {
    let set = roots(&ders("ca-roots/google-vtpm/tpm_ek_root_1.cer"), &[]);
    let intermediate = read("ca-roots/google-vtpm/tpm_ek_intermediate_2.crt");
    let der = read("quotes/gce-cos85/ak_cert.der");
    let _verified = verify_ak_certificate(&der, &[intermediate.as_slice()], &set, today()).unwrap();
    let err = verify_ak_certificate(&der, &[], &set, today()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::AkCertificate(plinth_x509::Error::UnknownIssuer { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn allow_list_admits_a_listed_ek() {
    let public = Public::from_tpm2b(&read("ek-certs/intel-ptt/ek_ecc.tpm2b_public.bin")).unwrap();
    let key = public.public_key().unwrap();
    let mut list = EkAllowList::new();
    list.add_key(&key).unwrap();
    let admitted = list.check(&key).unwrap();
    assert_eq!(
        admitted.spki_sha256(),
        &EkAllowList::spki_sha256(&key).unwrap()
    );
    // The same key taken from a certificate hashes to the same entry.
    let der = read("ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    let from_cert = verify_ek_certificate(&der, &intel_roots(), today()).unwrap();
    let from_tpm = Public::from_tpm2b(&read("ek-certs/intel-ptt/ek_rsa.tpm2b_public.bin"))
        .unwrap()
        .public_key()
        .unwrap();
    assert_eq!(
        EkAllowList::spki_sha256(from_cert.public_key()).unwrap(),
        EkAllowList::spki_sha256(&from_tpm).unwrap()
    );
}

// ---- negatives, named after the error they expect ----

#[test]
fn rejects_ek_from_unconfigured_vendor_with_ek_untrusted_root() {
    let der = read("ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    let set = roots(
        &[store("GS_TPM_RT.pem"), store("NUVO_2111.pem")].concat(),
        &[],
    );
    let err = verify_ek_certificate(&der, &set, today()).unwrap_err();
    assert!(
        matches!(err, Error::EkUntrustedRoot { ref issuer } if issuer.contains("SPTH_EPID_PROD")),
        "{err:?}"
    );
}

#[test]
fn rejects_ek_whose_intermediate_is_missing_with_ek_untrusted_root() {
    let der = read("ek-certs/stmicro/st_rsa_ek_cert.nv-raw.der");
    let set = roots(&store("GS_TPM_RT.pem"), &store("STM_RSA_RT.pem"));
    let err = verify_ek_certificate(&der, &set, today()).unwrap_err();
    assert!(
        matches!(err, Error::EkUntrustedRoot { ref issuer } if issuer.contains("Intermediate CA 05")),
        "{err:?}"
    );
}

#[test]
fn rejects_ek_after_not_after_with_expired() {
    let der = read("ek-certs/stmicro/st_ecc_ek_cert.der");
    let set = roots(
        &[globalsign_ecc_root()],
        &[store("STM_ECC_01I.pem"), store("STM_ECC_01RT.pem")].concat(),
    );
    let now = UnixTime::parse("2028-07-26T00:00:01Z").unwrap();
    let err = verify_ek_certificate(&der, &set, now).unwrap_err();
    let not_after = UnixTime::parse("2028-07-26T00:00:00Z").unwrap();
    assert_eq!(
        err,
        Error::EkCertificate(plinth_x509::Error::Expired { not_after, now })
    );
    // The last second of validity is still valid.
    let _verified = verify_ek_certificate(&der, &set, not_after).unwrap();
}

#[test]
fn rejects_ek_before_not_before_with_not_yet_valid() {
    let der = read("ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    let now = UnixTime::parse("2015-05-21T23:59:59Z").unwrap();
    let err = verify_ek_certificate(&der, &intel_roots(), now).unwrap_err();
    let not_before = UnixTime::parse("2015-05-22T00:00:00Z").unwrap();
    assert_eq!(
        err,
        Error::EkCertificate(plinth_x509::Error::NotYetValid { not_before, now })
    );
}

#[test]
fn rejects_tampered_tbs_byte_with_signature_invalid() {
    let mut der = read("ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    let cert = Certificate::from_der(&der).unwrap();
    // Flip the last byte of the RSA modulus (the SPKI ends with the 5-byte exponent 65537).
    let spki = cert.spki_der();
    let start = der.windows(spki.len()).position(|w| w == spki).unwrap();
    der[start + spki.len() - 6] ^= 0x02;
    let err = verify_ek_certificate(&der, &intel_roots(), today()).unwrap_err();
    assert!(
        matches!(err, Error::EkCertificate(plinth_x509::Error::SignatureInvalid { ref subject }) if subject.is_empty()),
        "{err:?}"
    );
}

#[test]
fn rejects_other_key_with_ek_public_mismatch() {
    let der = read("ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    let ek = verify_ek_certificate(&der, &intel_roots(), today()).unwrap();
    // A different RSA-2048 key (the GCE AK) and an ECC key (the platform's ECC EK).
    let other_rsa = Public::from_tpmt(&read("quotes/gce-cos85/ak_pub.tpmt_public.bin")).unwrap();
    assert_eq!(
        ek.check_public_matches(&other_rsa),
        Err(Error::EkPublicMismatch)
    );
    let ecc = Public::from_tpm2b(&read("ek-certs/intel-ptt/ek_ecc.tpm2b_public.bin")).unwrap();
    assert_eq!(ek.check_public_matches(&ecc), Err(Error::EkPublicMismatch));
}

#[test]
fn rejects_padded_certificate_in_strict_parse_with_trailing_data() {
    let der = read("ek-certs/stmicro/st_rsa_ek_cert.nv-raw.der");
    assert_eq!(
        Certificate::from_der(&der).unwrap_err(),
        plinth_x509::Error::TrailingData { extra: 431 }
    );
}

#[test]
fn rejects_garbage_after_ek_certificate_with_trailing_data() {
    let mut der = read("ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    der.extend_from_slice(&[0xff, 0xff, 0x30, 0x00]);
    let err = verify_ek_certificate(&der, &intel_roots(), today()).unwrap_err();
    assert_eq!(
        err,
        Error::EkCertificate(plinth_x509::Error::TrailingData { extra: 4 })
    );
}

#[test]
fn rejects_unlisted_ek_with_ek_not_allow_listed() {
    let listed = Public::from_tpm2b(&read("ek-certs/intel-ptt/ek_ecc.tpm2b_public.bin")).unwrap();
    let mut list = EkAllowList::new();
    list.add_key(&listed.public_key().unwrap()).unwrap();
    let other = Public::from_tpm2b(&read("ek-certs/intel-ptt/ek_rsa.tpm2b_public.bin"))
        .unwrap()
        .public_key()
        .unwrap();
    let err = list.check(&other).unwrap_err();
    assert_eq!(
        err,
        Error::EkNotAllowListed {
            spki_sha256: EkAllowList::spki_sha256(&other).unwrap()
        }
    );
    assert!(EkAllowList::new().check(&other).is_err());
}

#[test]
fn rejects_ak_certificate_for_another_key_with_ak_certificate_key_mismatch() {
    let set = roots(
        &ders("ca-roots/google-vtpm/tpm_ek_root_1.cer"),
        &ders("ca-roots/google-vtpm/tpm_ek_intermediate_2.crt"),
    );
    let ak_cert =
        verify_ak_certificate(&read("quotes/gce-cos85/ak_cert.der"), &[], &set, today()).unwrap();
    let not_the_ak =
        Public::from_tpm2b(&read("ek-certs/intel-ptt/ek_rsa.tpm2b_public.bin")).unwrap();
    assert_eq!(
        ak_cert.check_public_matches(&not_the_ak),
        Err(Error::AkCertificateKeyMismatch)
    );
}

#[test]
fn rejects_unparsable_root_with_tpm_ca_certificate() {
    let err = EkRoots::from_der(
        [b"not a certificate".as_slice()],
        std::iter::empty::<&[u8]>(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TpmCaCertificate(plinth_x509::Error::Malformed(_))
        ),
        "{err:?}"
    );
}

#[test]
fn rejects_root_offered_as_ek_with_not_an_end_entity_certificate() {
    let root = read("ek-certs/nuvoton/nuvoton_tpm_root_ca_2110.der");
    let trusting_it = roots(std::slice::from_ref(&root), &[]);
    assert!(matches!(
        verify_ek_certificate(&root, &trusting_it, today()),
        Err(Error::NotAnEndEntityCertificate)
    ));
}
