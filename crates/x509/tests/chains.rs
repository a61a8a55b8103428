//! Path validation over real certificate chains (TPM vendors, GCE, AMD SEV-SNP, AWS Nitro
//! root) and over generated chains for the rules real vectors cannot exercise (non-CA
//! issuers, keyCertSign, pathLenConstraint, loops, budgets); CRLs, real (Intel SGX) and
//! generated and signed the same way. Negative tests are named after the error they expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use plinth_core::{HashAlg, UnixTime};
use plinth_crypto::SignatureScheme;
use plinth_x509::{
    Certificate, ChainOptions, Crl, Error, MAX_CRL_ENTRIES, Oid, TrustAnchors,
    certificates_from_pem, oids, verify_chain,
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn pem(rel: &str) -> Vec<Certificate> {
    certificates_from_pem(&read(rel)).unwrap()
}

fn der(rel: &str) -> Certificate {
    Certificate::from_der(&read(rel)).unwrap()
}

fn at(text: &str) -> UnixTime {
    UnixTime::parse(text).unwrap()
}

fn today() -> UnixTime {
    at("2026-11-23T00:00:00Z")
}

fn anchors(certs: impl IntoIterator<Item = Certificate>) -> TrustAnchors {
    TrustAnchors::from_certificates(certs)
}

/// The TPM EK profile as plinth-tpm sets it.
fn ek_profile() -> ChainOptions {
    ChainOptions::new()
        .allow_critical_extension(oids::SUBJECT_ALT_NAME)
        .allow_critical_extension(oids::CERTIFICATE_POLICIES)
        .require_extended_key_usage(oids::TCG_KP_EK_CERTIFICATE)
}

fn intel() -> (Certificate, Vec<Certificate>, TrustAnchors) {
    let leaf = der("tpm/ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    let intermediate = pem("tpm/ca-roots/keylime-tpm_cert_store/INTEL_I.pem");
    let root = pem("tpm/ca-roots/keylime-tpm_cert_store/INTEL_RT.pem");
    (leaf, intermediate, anchors(root))
}

fn stm_rsa() -> (Certificate, Vec<Certificate>, TrustAnchors) {
    let leaf =
        Certificate::from_der_trimmed(&read("tpm/ek-certs/stmicro/st_rsa_ek_cert.nv-raw.der"))
            .unwrap();
    let mut intermediates = pem("tpm/ca-roots/keylime-tpm_cert_store/STM_RSA_05I.pem");
    intermediates.extend(pem("tpm/ca-roots/keylime-tpm_cert_store/STM_RSA_RT.pem"));
    let root = pem("tpm/ca-roots/keylime-tpm_cert_store/GS_TPM_RT.pem");
    (leaf, intermediates, anchors(root))
}

// ---- real chains ----

#[test]
fn intel_ptt_ek_chain_validates_under_the_ek_profile() {
    let (leaf, intermediates, roots) = intel();
    let chain = verify_chain(&leaf, &intermediates, &roots, today(), &ek_profile()).unwrap();
    assert_eq!(chain.intermediates().len(), 1);
    assert_eq!(
        chain.anchor().subject().common_name(),
        Some("www.intel.com")
    );
    assert_eq!(chain.verified_at(), today());
    assert_eq!(
        leaf.signature_scheme().unwrap(),
        SignatureScheme::EcdsaDer(HashAlg::Sha256)
    );
    let san: Vec<_> = leaf
        .san_directory_attributes()
        .iter()
        .map(|a| a.value_str().unwrap())
        .collect();
    assert_eq!(san, ["id:494E5443", "SPT", "id:00020000"]);
    assert_eq!(
        leaf.extended_key_usage(),
        Some(&[oids::TCG_KP_EK_CERTIFICATE][..])
    );
    assert!(leaf.basic_constraints().is_some_and(|bc| !bc.ca()));
    assert!(leaf.key_usage().is_some_and(|ku| ku.key_encipherment()));
}

#[test]
fn stmicro_chain_trims_nv_padding_and_validates() {
    let (leaf, intermediates, roots) = stm_rsa();
    assert_eq!(leaf.trimmed_len(), 431);
    let chain = verify_chain(&leaf, &intermediates, &roots, today(), &ek_profile()).unwrap();
    let names: Vec<_> = chain
        .certificates()
        .map(|c| c.subject().common_name().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "",
            "STM TPM EK Intermediate CA 05",
            "STM TPM EK Root CA",
            "GlobalSign Trusted Platform Module Root CA"
        ]
    );
}

#[test]
fn gce_ak_certificate_chain_validates() {
    let leaf = der("tpm/quotes/gce-cos85/ak_cert.der");
    let intermediate = der("tpm/ca-roots/google-vtpm/tpm_ek_intermediate_2.crt");
    let root = der("tpm/ca-roots/google-vtpm/tpm_ek_root_1.cer");
    let chain = verify_chain(
        &leaf,
        &[intermediate],
        &anchors([root]),
        today(),
        &ek_profile(),
    )
    .unwrap();
    assert_eq!(chain.certificates().count(), 3);
}

#[test]
fn amd_milan_vcek_chain_with_rsa_pss_validates() {
    let chain_pem = pem("sev-snp/virtee-sev/cert_chain_milan");
    let (ask, ark) = (chain_pem[0].clone(), chain_pem[1].clone());
    assert_eq!(ask.subject().common_name(), Some("SEV-Milan"));
    assert_eq!(ark.subject().common_name(), Some("ARK-Milan"));
    assert_eq!(
        ask.signature_scheme().unwrap(),
        SignatureScheme::RsaPss(HashAlg::Sha384)
    );
    let vcek = der("sev-snp/virtee-sev/vcek_milan.der");
    assert_eq!(vcek.serial(), [0]);
    assert_eq!(
        vcek.signature_scheme().unwrap(),
        SignatureScheme::RsaPss(HashAlg::Sha384)
    );
    let chain = verify_chain(
        &vcek,
        &[ask],
        &anchors([ark]),
        today(),
        &ChainOptions::new(),
    )
    .unwrap();
    assert_eq!(chain.leaf().subject().common_name(), Some("SEV-VCEK"));
    // AMD's product-name extension is readable by OID.
    let product = vcek
        .extension(&Oid::from_static("1.3.6.1.4.1.3704.1.2"))
        .unwrap();
    assert!(product.value().ends_with(b"Milan-B0"));
}

#[test]
fn amd_turin_vcek_chain_validates() {
    let chain_pem = pem("sev-snp/virtee-sev/cert_chain_turin");
    let vcek = der("sev-snp/virtee-sev/vcek_turin.der");
    let roots = anchors(chain_pem.iter().filter(|c| c.is_self_issued()).cloned());
    let chain = verify_chain(&vcek, &chain_pem, &roots, today(), &ChainOptions::new()).unwrap();
    assert_eq!(chain.anchor().subject().common_name(), Some("ARK-Turin"));
    assert_eq!(chain.intermediates().len(), 1);
}

#[test]
fn nitro_root_is_pinned_by_its_published_fingerprint() {
    let root = pem("nitro/aws-root/root.pem").remove(0);
    let pinned =
        hex::decode("641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b").unwrap();
    let mut set = TrustAnchors::new();
    set.add_pinned(root.clone(), &pinned).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(root.subject().common_name(), Some("aws.nitro-enclaves"));
}

#[test]
fn nuvoton_ek_with_unordered_rdn_set_validates_over_raw_tbs() {
    let leaf = der("tpm/ek-certs/nuvoton/nuvoton_ek_cert_rootca2111.der");
    let root = pem("tpm/ca-roots/keylime-tpm_cert_store/NUVO_2111.pem");
    let _chain = verify_chain(&leaf, &[], &anchors(root), today(), &ek_profile()).unwrap();
}

#[test]
fn zero_padding_is_trimmed_too() {
    let mut bytes = read("tpm/ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    let len = bytes.len();
    bytes.extend_from_slice(&[0; 64]);
    let cert = Certificate::from_der_trimmed(&bytes).unwrap();
    assert_eq!((cert.der().len(), cert.trimmed_len()), (len, 64));
}

// ---- real-vector negatives ----

#[test]
fn rejects_tcg_san_without_allow_list_with_unknown_critical_extension() {
    let (leaf, intermediates, roots) = intel();
    let err =
        verify_chain(&leaf, &intermediates, &roots, today(), &ChainOptions::new()).unwrap_err();
    assert_eq!(
        err,
        Error::UnknownCriticalExtension {
            oid: "2.5.29.17".into(),
            subject: String::new()
        }
    );
}

#[test]
fn rejects_critical_certificate_policies_with_unknown_critical_extension() {
    let (leaf, intermediates, roots) = stm_rsa();
    let options = ChainOptions::new()
        .allow_critical_extension(oids::SUBJECT_ALT_NAME)
        .require_extended_key_usage(oids::TCG_KP_EK_CERTIFICATE);
    let err = verify_chain(&leaf, &intermediates, &roots, today(), &options).unwrap_err();
    assert!(
        matches!(err, Error::UnknownCriticalExtension { ref oid, ref subject }
            if oid == "2.5.29.32" && subject.contains("Intermediate CA 05")),
        "{err:?}"
    );
}

#[test]
fn rejects_critical_eku_when_no_purpose_is_required_with_unknown_critical_extension() {
    let (leaf, intermediates, roots) = intel();
    let options = ChainOptions::new()
        .allow_critical_extension(oids::SUBJECT_ALT_NAME)
        .allow_critical_extension(oids::CERTIFICATE_POLICIES);
    let err = verify_chain(&leaf, &intermediates, &roots, today(), &options).unwrap_err();
    assert!(
        matches!(err, Error::UnknownCriticalExtension { ref oid, .. } if oid == "2.5.29.37"),
        "{err:?}"
    );
}

#[test]
fn rejects_other_purpose_with_extended_key_usage_not_allowed() {
    let (leaf, intermediates, roots) = intel();
    let options = ChainOptions::new()
        .allow_critical_extension(oids::SUBJECT_ALT_NAME)
        .allow_critical_extension(oids::CERTIFICATE_POLICIES)
        .require_extended_key_usage(Oid::from_static("1.3.6.1.5.5.7.3.1"));
    let err = verify_chain(&leaf, &intermediates, &roots, today(), &options).unwrap_err();
    assert_eq!(
        err,
        Error::ExtendedKeyUsageNotAllowed {
            subject: String::new()
        }
    );
}

#[test]
fn rejects_path_beyond_depth_budget_with_path_too_long() {
    let (leaf, intermediates, roots) = stm_rsa();
    let options = ek_profile().with_max_depth(3);
    let err = verify_chain(&leaf, &intermediates, &roots, today(), &options).unwrap_err();
    assert_eq!(err, Error::PathTooLong { max: 3 });
}

#[test]
fn rejects_search_beyond_signature_budget_with_signature_budget_exceeded() {
    let (leaf, intermediates, roots) = stm_rsa();
    let options = ek_profile().with_max_signature_checks(2);
    let err = verify_chain(&leaf, &intermediates, &roots, today(), &options).unwrap_err();
    assert_eq!(err, Error::SignatureBudgetExceeded { max: 2 });
}

#[test]
fn rejects_missing_root_with_unknown_issuer() {
    let (leaf, intermediates, _) = intel();
    let others = anchors(pem("tpm/ca-roots/keylime-tpm_cert_store/GS_TPM_RT.pem"));
    let err = verify_chain(&leaf, &intermediates, &others, today(), &ek_profile()).unwrap_err();
    assert!(
        matches!(err, Error::UnknownIssuer { ref issuer } if issuer.contains("TPM EK root cert signing")),
        "{err:?}"
    );
    let empty = TrustAnchors::new();
    let err = verify_chain(&leaf, &intermediates, &empty, today(), &ek_profile()).unwrap_err();
    assert!(matches!(err, Error::UnknownIssuer { .. }), "{err:?}");
}

#[test]
fn rejects_intermediate_presented_as_root_only_via_chain_with_unknown_issuer() {
    // The chain carries the root as an "intermediate"; it is still not trusted.
    let (leaf, mut intermediates, _) = intel();
    intermediates.extend(pem("tpm/ca-roots/keylime-tpm_cert_store/INTEL_RT.pem"));
    let err = verify_chain(
        &leaf,
        &intermediates,
        &TrustAnchors::new(),
        today(),
        &ek_profile(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::UnknownIssuer { .. }), "{err:?}");
}

#[test]
fn rejects_expired_leaf_with_expired() {
    let (leaf, intermediates, roots) = stm_rsa();
    // The leaf is valid until 2028-07-11T00:00:00Z, inclusive.
    let now = at("2028-07-11T00:00:01Z");
    let err = verify_chain(&leaf, &intermediates, &roots, now, &ek_profile()).unwrap_err();
    assert_eq!(
        err,
        Error::Expired {
            not_after: at("2028-07-11T00:00:00Z"),
            now
        }
    );
}

#[test]
fn rejects_tampered_signature_with_signature_invalid() {
    let mut bytes = read("sev-snp/virtee-sev/vcek_milan.der");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let vcek = Certificate::from_der(&bytes).unwrap();
    let chain_pem = pem("sev-snp/virtee-sev/cert_chain_milan");
    let err = verify_chain(
        &vcek,
        &chain_pem[..1],
        &anchors([chain_pem[1].clone()]),
        today(),
        &ChainOptions::new(),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::SignatureInvalid { ref subject } if subject.ends_with("CN=SEV-VCEK")),
        "{err:?}"
    );
}

/// Replaces the first (or every) occurrence of `from` in `bytes` with `to` (same length).
fn patch(bytes: &mut [u8], from: &[u8], to: &[u8], all: bool) {
    assert_eq!(from.len(), to.len());
    let mut found = false;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            found = true;
            if !all {
                return;
            }
        }
        i += 1;
    }
    assert!(found);
}

const ECDSA_SHA256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];

#[test]
fn rejects_inner_outer_algorithm_difference_with_signature_algorithm_mismatch() {
    let mut bytes = read("tpm/ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    let mut sha384 = ECDSA_SHA256.to_vec();
    *sha384.last_mut().unwrap() = 0x03;
    patch(&mut bytes, ECDSA_SHA256, &sha384, false);
    assert_eq!(
        Certificate::from_der(&bytes).unwrap_err(),
        Error::SignatureAlgorithmMismatch
    );
}

#[test]
fn rejects_ecdsa_sha224_with_unsupported_signature_algorithm() {
    let mut bytes = read("tpm/ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    let mut sha224 = ECDSA_SHA256.to_vec();
    *sha224.last_mut().unwrap() = 0x01;
    patch(&mut bytes, ECDSA_SHA256, &sha224, true);
    let cert = Certificate::from_der(&bytes).unwrap();
    let expected = Error::UnsupportedSignatureAlgorithm {
        oid: "1.2.840.10045.4.3.1".into(),
    };
    assert_eq!(cert.signature_scheme().unwrap_err(), expected);
    let (_, intermediates, roots) = intel();
    assert_eq!(
        verify_chain(&cert, &intermediates, &roots, today(), &ek_profile()).unwrap_err(),
        expected
    );
}

#[test]
fn rejects_repeated_extension_with_duplicate_extension() {
    // Turn the extendedKeyUsage OID (2.5.29.37) into keyUsage (2.5.29.15).
    let mut bytes = read("tpm/ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    patch(
        &mut bytes,
        &[0x06, 0x03, 0x55, 0x1d, 0x25],
        &[0x06, 0x03, 0x55, 0x1d, 0x0f],
        false,
    );
    assert_eq!(
        Certificate::from_der(&bytes).unwrap_err(),
        Error::DuplicateExtension {
            oid: "2.5.29.15".into()
        }
    );
}

#[test]
fn rejects_wrong_pinned_fingerprint_with_anchor_fingerprint_mismatch() {
    let root = pem("nitro/aws-root/root.pem").remove(0);
    let mut set = TrustAnchors::new();
    let err = set.add_pinned(root, &[0; 32]).unwrap_err();
    assert!(
        matches!(err, Error::AnchorFingerprintMismatch { .. }),
        "{err:?}"
    );
    assert!(set.is_empty());
}

#[test]
fn rejects_non_padding_after_certificate_with_trailing_data() {
    let mut bytes = read("tpm/ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    bytes.extend_from_slice(&[0xff, 0xff, 0x00]);
    assert_eq!(
        Certificate::from_der_trimmed(&bytes).unwrap_err(),
        Error::TrailingData { extra: 3 }
    );
    assert_eq!(
        Certificate::from_der(&bytes).unwrap_err(),
        Error::TrailingData { extra: 3 }
    );
}

#[test]
fn rejects_truncated_certificate_with_malformed() {
    let bytes = read("tpm/ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    for cut in [0, 1, 4, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            matches!(
                Certificate::from_der(&bytes[..cut]),
                Err(Error::Malformed(_))
            ),
            "cut at {cut}"
        );
    }
}

#[test]
fn rejects_oversized_input_with_too_large() {
    let bytes = vec![0x30; plinth_x509::MAX_CERTIFICATE_LEN + 1];
    assert_eq!(
        Certificate::from_der(&bytes).unwrap_err(),
        Error::TooLarge {
            len: bytes.len(),
            max: plinth_x509::MAX_CERTIFICATE_LEN
        }
    );
}

#[test]
fn rejects_p521_key_with_unsupported_public_key() {
    let bundle = pem("tpm/ca-roots/loicsikidi/MIRROR.tpm-intermediate-ca-certificates.pem");
    let p521 = bundle
        .iter()
        .find(|c| c.subject().common_name() == Some("Infineon OPTIGA(TM) TPM 2.0 ECC CA 052"))
        .unwrap();
    assert!(matches!(
        p521.public_key(),
        Err(Error::UnsupportedPublicKey { .. })
    ));
}

// ---- generated chains: rules no real vector exercises ----

mod generated {
    //! Minimal DER writer for test certificates signed with `plinth_crypto`'s ECDSA key.

    use plinth_crypto::{Curve, EcdsaSigningKey, SystemRandom};

    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = body.len();
        if len < 0x80 {
            out.push(u8::try_from(len).unwrap());
        } else {
            let bytes = u32::try_from(len).unwrap().to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | u8::try_from(bytes.len() - skip).unwrap());
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(body);
        out
    }

    fn seq(parts: &[&[u8]]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }

    fn name(cn: &str) -> Vec<u8> {
        let attr = seq(&[&tlv(0x06, &[0x55, 0x04, 0x03]), &tlv(0x0c, cn.as_bytes())]);
        seq(&[&tlv(0x31, &attr)])
    }

    /// One certificate to generate.
    pub(crate) struct Spec {
        pub(crate) issuer: String,
        pub(crate) subject: String,
        pub(crate) validity: (&'static str, &'static str),
        /// basicConstraints (cA, pathLenConstraint), or none.
        pub(crate) basic_constraints: Option<(bool, Option<u8>)>,
        /// keyUsage as a BIT STRING: (unused bits, first byte), or none.
        pub(crate) key_usage: Option<(u8, u8)>,
        pub(crate) ski: Option<Vec<u8>>,
        pub(crate) aki: Option<Vec<u8>>,
        /// Extra (OID content, critical) extensions with an empty SEQUENCE value.
        pub(crate) extra: Vec<(Vec<u8>, bool)>,
    }

    impl Spec {
        /// An end-entity certificate issued by `issuer`.
        pub(crate) fn leaf(issuer: &str) -> Self {
            Self {
                issuer: issuer.to_owned(),
                subject: "Test Leaf".to_owned(),
                validity: ("250101000000Z", "350101000000Z"),
                basic_constraints: None,
                key_usage: None,
                ski: None,
                aki: None,
                extra: Vec::new(),
            }
        }

        /// A CA certificate with keyCertSign and cRLSign.
        pub(crate) fn ca(issuer: &str, subject: &str, path_len: Option<u8>) -> Self {
            Self {
                subject: subject.to_owned(),
                basic_constraints: Some((true, path_len)),
                key_usage: Some((1, 0x06)),
                ..Self::leaf(issuer)
            }
        }
    }

    pub(crate) fn key() -> EcdsaSigningKey {
        EcdsaSigningKey::generate(Curve::P256, &SystemRandom).unwrap()
    }

    fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
        let critical_field = if critical {
            tlv(0x01, &[0xff])
        } else {
            Vec::new()
        };
        seq(&[&tlv(0x06, oid), &critical_field, &tlv(0x04, value)])
    }

    /// Builds and signs a certificate for `subject_key`, signed by `issuer_key`.
    pub(crate) fn build(
        spec: &Spec,
        subject_key: &EcdsaSigningKey,
        issuer_key: &EcdsaSigningKey,
    ) -> Vec<u8> {
        let alg = seq(&[&tlv(
            0x06,
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
        )]);
        let mut extensions = Vec::new();
        if let Some((ca, path_len)) = spec.basic_constraints {
            let ca_field = if ca { tlv(0x01, &[0xff]) } else { Vec::new() };
            let len_field = path_len.map(|n| tlv(0x02, &[n])).unwrap_or_default();
            extensions.push(extension(
                &[0x55, 0x1d, 0x13],
                true,
                &seq(&[&ca_field, &len_field]),
            ));
        }
        if let Some((unused, bits)) = spec.key_usage {
            extensions.push(extension(
                &[0x55, 0x1d, 0x0f],
                true,
                &tlv(0x03, &[unused, bits]),
            ));
        }
        if let Some(ski) = &spec.ski {
            extensions.push(extension(&[0x55, 0x1d, 0x0e], false, &tlv(0x04, ski)));
        }
        if let Some(aki) = &spec.aki {
            extensions.push(extension(
                &[0x55, 0x1d, 0x23],
                false,
                &seq(&[&tlv(0x80, aki)]),
            ));
        }
        for (oid, critical) in &spec.extra {
            extensions.push(extension(oid, *critical, &seq(&[])));
        }
        let extensions = tlv(
            0xa3,
            &seq(&extensions.iter().map(Vec::as_slice).collect::<Vec<_>>()),
        );
        let tbs = seq(&[
            &tlv(0xa0, &tlv(0x02, &[0x02])),
            &tlv(0x02, &[0x01]),
            &alg,
            &name(&spec.issuer),
            &seq(&[
                &tlv(0x17, spec.validity.0.as_bytes()),
                &tlv(0x17, spec.validity.1.as_bytes()),
            ]),
            &name(&spec.subject),
            subject_key.public_key().spki_der(),
            &extensions,
        ]);
        let signature = issuer_key.sign_der(&tbs).unwrap();
        let mut bits = vec![0];
        bits.extend(signature);
        seq(&[&tbs, &alg, &tlv(0x03, &bits)])
    }

    /// An extension to generate: (OID content, critical).
    pub(crate) type ExtensionSpec = (Vec<u8>, bool);

    /// One CRL to generate (RFC 5280 section 5.1), signed with ecdsa-with-SHA256.
    pub(crate) struct CrlSpec {
        pub(crate) issuer: String,
        pub(crate) next_update: Option<&'static str>,
        /// (serial INTEGER contents, entry extensions with a reasonCode-like value).
        pub(crate) entries: Vec<(Vec<u8>, Vec<ExtensionSpec>)>,
        /// crlExtensions as (OID content, critical, value).
        pub(crate) extensions: Vec<(Vec<u8>, bool, Vec<u8>)>,
        /// The inner `signature` algorithm OID (normally ecdsa-with-SHA256, as outside).
        pub(crate) inner_algorithm: Vec<u8>,
    }

    /// ecdsa-with-SHA256.
    pub(crate) const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];

    impl CrlSpec {
        /// A CRL issued by `issuer` revoking `serials`, with a CRL number.
        pub(crate) fn new(issuer: &str, serials: &[&[u8]]) -> Self {
            Self {
                issuer: issuer.to_owned(),
                next_update: Some("350101000000Z"),
                entries: serials.iter().map(|s| (s.to_vec(), Vec::new())).collect(),
                // cRLNumber (2.5.29.20) 7, non-critical.
                extensions: vec![(vec![0x55, 0x1d, 0x14], false, tlv(0x02, &[7]))],
                inner_algorithm: ECDSA_SHA256.to_vec(),
            }
        }
    }

    /// Builds a `CertificateList` and signs it with `issuer_key`.
    pub(crate) fn build_crl(spec: &CrlSpec, issuer_key: &EcdsaSigningKey) -> Vec<u8> {
        let entries: Vec<Vec<u8>> = spec
            .entries
            .iter()
            .map(|(serial, extensions)| {
                let extensions: Vec<Vec<u8>> = extensions
                    .iter()
                    .map(|(oid, critical)| extension(oid, *critical, &tlv(0x0a, &[1])))
                    .collect();
                let extensions = if extensions.is_empty() {
                    Vec::new()
                } else {
                    seq(&extensions.iter().map(Vec::as_slice).collect::<Vec<_>>())
                };
                seq(&[
                    &tlv(0x02, serial),
                    &tlv(0x17, b"250601000000Z"),
                    &extensions,
                ])
            })
            .collect();
        let extensions: Vec<Vec<u8>> = spec
            .extensions
            .iter()
            .map(|(oid, critical, value)| extension(oid, *critical, value))
            .collect();
        let tbs = seq(&[
            &tlv(0x02, &[0x01]),
            &seq(&[&tlv(0x06, &spec.inner_algorithm)]),
            &name(&spec.issuer),
            &tlv(0x17, b"250101000000Z"),
            &spec
                .next_update
                .map(|t| tlv(0x17, t.as_bytes()))
                .unwrap_or_default(),
            &seq(&entries.iter().map(Vec::as_slice).collect::<Vec<_>>()),
            &tlv(
                0xa0,
                &seq(&extensions.iter().map(Vec::as_slice).collect::<Vec<_>>()),
            ),
        ]);
        let signature = issuer_key.sign_der(&tbs).unwrap();
        let mut bits = vec![0];
        bits.extend(signature);
        seq(&[&tbs, &seq(&[&tlv(0x06, ECDSA_SHA256)]), &tlv(0x03, &bits)])
    }
}

use generated::{CrlSpec, Spec, build, build_crl, key};

fn cert(bytes: &[u8]) -> Certificate {
    Certificate::from_der(bytes).unwrap()
}

fn at_2030() -> UnixTime {
    at("2030-01-01T00:00:00Z")
}

/// Root (pathLen given) → intermediate (Spec adjusted by `tweak`) → leaf.
fn three_level(
    root_path_len: Option<u8>,
    tweak: impl FnOnce(&mut Spec),
) -> (Certificate, Certificate, TrustAnchors) {
    let (root_key, inter_key, leaf_key) = (key(), key(), key());
    let root = build(
        &Spec::ca("Test Root", "Test Root", root_path_len),
        &root_key,
        &root_key,
    );
    let mut inter_spec = Spec::ca("Test Root", "Test Intermediate", None);
    tweak(&mut inter_spec);
    let inter = build(&inter_spec, &inter_key, &root_key);
    let leaf = build(&Spec::leaf("Test Intermediate"), &leaf_key, &inter_key);
    (cert(&leaf), cert(&inter), anchors([cert(&root)]))
}

#[test]
fn generated_three_level_chain_validates() {
    let (leaf, inter, roots) = three_level(Some(1), |_| {});
    let chain = verify_chain(&leaf, &[inter], &roots, at_2030(), &ChainOptions::new()).unwrap();
    assert_eq!(chain.certificates().count(), 3);
}

#[test]
fn rejects_non_ca_intermediate_with_issuer_not_ca() {
    let (leaf, inter, roots) = three_level(None, |s| s.basic_constraints = Some((false, None)));
    let err = verify_chain(&leaf, &[inter], &roots, at_2030(), &ChainOptions::new()).unwrap_err();
    assert_eq!(
        err,
        Error::IssuerNotCa {
            subject: "CN=Test Intermediate".into()
        }
    );
}

#[test]
fn rejects_intermediate_without_basic_constraints_with_issuer_not_ca() {
    let (leaf, inter, roots) = three_level(None, |s| s.basic_constraints = None);
    let err = verify_chain(&leaf, &[inter], &roots, at_2030(), &ChainOptions::new()).unwrap_err();
    assert_eq!(
        err,
        Error::IssuerNotCa {
            subject: "CN=Test Intermediate".into()
        }
    );
}

#[test]
fn rejects_intermediate_without_key_cert_sign_with_issuer_lacks_key_cert_sign() {
    // keyUsage digitalSignature only.
    let (leaf, inter, roots) = three_level(None, |s| s.key_usage = Some((7, 0x80)));
    let err = verify_chain(&leaf, &[inter], &roots, at_2030(), &ChainOptions::new()).unwrap_err();
    assert_eq!(
        err,
        Error::IssuerLacksKeyCertSign {
            subject: "CN=Test Intermediate".into()
        }
    );
}

#[test]
fn rejects_intermediate_under_path_len_zero_root_with_path_len_exceeded() {
    let (leaf, inter, roots) = three_level(Some(0), |_| {});
    let err = verify_chain(&leaf, &[inter], &roots, at_2030(), &ChainOptions::new()).unwrap_err();
    assert_eq!(
        err,
        Error::PathLenExceeded {
            subject: "CN=Test Root".into(),
            path_len: 0,
            below: 1
        }
    );
}

#[test]
fn rejects_unknown_critical_extension_on_intermediate_unless_allowed() {
    const OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x01]; // 1.3.6.1.4.1.311.1
    let (leaf, inter, roots) = three_level(None, |s| s.extra = vec![(OID.to_vec(), true)]);
    let err = verify_chain(
        &leaf,
        std::slice::from_ref(&inter),
        &roots,
        at_2030(),
        &ChainOptions::new(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::UnknownCriticalExtension {
            oid: "1.3.6.1.4.1.311.1".into(),
            subject: "CN=Test Intermediate".into()
        }
    );
    let allowed =
        ChainOptions::new().allow_critical_extension(Oid::parse("1.3.6.1.4.1.311.1").unwrap());
    let _chain = verify_chain(&leaf, &[inter], &roots, at_2030(), &allowed).unwrap();
}

#[test]
fn rejects_expired_root_with_expired() {
    let (root_key, leaf_key) = (key(), key());
    let mut root_spec = Spec::ca("Test Root", "Test Root", None);
    root_spec.validity = ("200101000000Z", "290101000000Z");
    let root = build(&root_spec, &root_key, &root_key);
    let leaf = build(&Spec::leaf("Test Root"), &leaf_key, &root_key);
    let err = verify_chain(
        &cert(&leaf),
        &[],
        &anchors([cert(&root)]),
        at_2030(),
        &ChainOptions::new(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::Expired {
            not_after: at("2029-01-01T00:00:00Z"),
            now: at_2030()
        }
    );
}

#[test]
fn self_issued_rollover_intermediate_does_not_count_against_path_len() {
    // Root "R" (pathLen 0) signs a new key under the same name; the leaf is signed by the
    // new key. The anchor's own key fails on the leaf, the rollover path succeeds.
    let (old_key, new_key, leaf_key) = (key(), key(), key());
    let root = build(&Spec::ca("R", "R", Some(0)), &old_key, &old_key);
    let rollover = build(&Spec::ca("R", "R", None), &new_key, &old_key);
    let leaf = build(&Spec::leaf("R"), &leaf_key, &new_key);
    let chain = verify_chain(
        &cert(&leaf),
        &[cert(&rollover)],
        &anchors([cert(&root)]),
        at_2030(),
        &ChainOptions::new(),
    )
    .unwrap();
    assert_eq!(chain.intermediates().len(), 1);
}

#[test]
fn rejects_same_name_wrong_key_root_with_signature_invalid() {
    let (root_key, impostor_key, leaf_key) = (key(), key(), key());
    let impostor = build(
        &Spec::ca("Test Root", "Test Root", None),
        &impostor_key,
        &impostor_key,
    );
    let leaf = build(&Spec::leaf("Test Root"), &leaf_key, &root_key);
    let err = verify_chain(
        &cert(&leaf),
        &[],
        &anchors([cert(&impostor)]),
        at_2030(),
        &ChainOptions::new(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::SignatureInvalid {
            subject: "CN=Test Leaf".into()
        }
    );
}

#[test]
fn rejects_key_identifier_mismatch_with_unknown_issuer() {
    let (root_key, leaf_key) = (key(), key());
    let mut root_spec = Spec::ca("Test Root", "Test Root", None);
    root_spec.ski = Some(vec![1, 2, 3, 4]);
    let root = build(&root_spec, &root_key, &root_key);
    let leaf = build(
        &Spec {
            aki: Some(vec![9, 9, 9, 9]),
            ..Spec::leaf("Test Root")
        },
        &leaf_key,
        &root_key,
    );
    let err = verify_chain(
        &cert(&leaf),
        &[],
        &anchors([cert(&root)]),
        at_2030(),
        &ChainOptions::new(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::UnknownIssuer {
            issuer: "CN=Test Root".into()
        }
    );
    // Matching identifiers validate.
    let leaf = build(
        &Spec {
            aki: Some(vec![1, 2, 3, 4]),
            ..Spec::leaf("Test Root")
        },
        &leaf_key,
        &root_key,
    );
    let _chain = verify_chain(
        &cert(&leaf),
        &[],
        &anchors([cert(&root)]),
        at_2030(),
        &ChainOptions::new(),
    )
    .unwrap();
}

#[test]
fn cross_signed_loop_terminates_with_unknown_issuer() {
    // A and B certify each other; neither reaches an anchor.
    let (a_key, b_key, leaf_key, root_key) = (key(), key(), key(), key());
    let a = build(&Spec::ca("B", "A", None), &a_key, &b_key);
    let b = build(&Spec::ca("A", "B", None), &b_key, &a_key);
    let leaf = build(&Spec::leaf("A"), &leaf_key, &a_key);
    let root = build(&Spec::ca("Root", "Root", None), &root_key, &root_key);
    let err = verify_chain(
        &cert(&leaf),
        &[cert(&a), cert(&b)],
        &anchors([cert(&root)]),
        at_2030(),
        &ChainOptions::new(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::UnknownIssuer { .. }), "{err:?}");
}

#[test]
fn rejects_many_same_name_decoys_with_signature_budget_exceeded() {
    let (root_key, leaf_key) = (key(), key());
    let root = build(
        &Spec::ca("Test Root", "Test Root", None),
        &root_key,
        &root_key,
    );
    let decoy_key = key();
    let decoys: Vec<Certificate> = (0..40)
        .map(|i| {
            let mut spec = Spec::ca("Test Root", "Test Intermediate", None);
            spec.ski = Some(vec![i; 4]);
            cert(&build(&spec, &decoy_key, &root_key))
        })
        .collect();
    let leaf = build(&Spec::leaf("Test Intermediate"), &leaf_key, &root_key);
    let err = verify_chain(
        &cert(&leaf),
        &decoys,
        &anchors([cert(&root)]),
        at_2030(),
        &ChainOptions::new(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::SignatureBudgetExceeded {
            max: ChainOptions::DEFAULT_MAX_SIGNATURE_CHECKS
        }
    );
}

#[test]
fn rejects_long_generated_chain_with_path_too_long() {
    // Root → I1 → … → I8 → leaf: ten certificates, more than the default depth of 8.
    let keys: Vec<_> = (0..10).map(|_| key()).collect();
    let root = build(&Spec::ca("I0", "I0", None), &keys[0], &keys[0]);
    let names: Vec<String> = (0..10).map(|i| format!("I{i}")).collect();
    let intermediates: Vec<Certificate> = (1..9)
        .map(|i| {
            cert(&build(
                &Spec::ca(&names[i - 1], &names[i], None),
                &keys[i],
                &keys[i - 1],
            ))
        })
        .collect();
    let leaf = build(&Spec::leaf("I8"), &keys[9], &keys[8]);
    let err = verify_chain(
        &cert(&leaf),
        &intermediates,
        &anchors([cert(&root)]),
        at_2030(),
        &ChainOptions::new(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::PathTooLong {
            max: ChainOptions::DEFAULT_MAX_DEPTH
        }
    );
    let longer = ChainOptions::new().with_max_depth(10);
    let _chain = verify_chain(
        &cert(&leaf),
        &intermediates,
        &anchors([cert(&root)]),
        at_2030(),
        &longer,
    )
    .unwrap();
}

#[test]
fn rejects_ecdsa_signature_checked_with_rsa_key_with_key_algorithm_mismatch() {
    let leaf = der("tpm/ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der");
    let rsa_key = leaf.public_key().unwrap();
    assert_eq!(
        leaf.verify_signed_by(&rsa_key).unwrap_err(),
        Error::KeyAlgorithmMismatch {
            subject: String::new()
        }
    );
}

// ---- generated CRLs ----

/// The issuer's key, a CRL it signed revoking serials 01 and 00ff, and the CRL's DER.
fn signed_crl(tweak: impl FnOnce(&mut CrlSpec)) -> (plinth_crypto::EcdsaSigningKey, Vec<u8>) {
    let issuer_key = key();
    let mut spec = CrlSpec::new("Test CRL Issuer", &[&[0x01], &[0x00, 0xff]]);
    tweak(&mut spec);
    let der = build_crl(&spec, &issuer_key);
    (issuer_key, der)
}

#[test]
fn generated_crl_parses_and_verifies_with_its_issuer_key() {
    let (issuer_key, der) = signed_crl(|_| {});
    let crl = Crl::from_der(&der).unwrap();
    assert_eq!(crl.issuer().common_name(), Some("Test CRL Issuer"));
    assert_eq!(crl.this_update(), at("2025-01-01T00:00:00Z"));
    assert_eq!(crl.next_update(), Some(at("2035-01-01T00:00:00Z")));
    assert_eq!(
        crl.revoked_serials().collect::<Vec<_>>(),
        [&[0x01][..], &[0x00, 0xff]]
    );
    assert_eq!(
        crl.signature_scheme().unwrap(),
        SignatureScheme::EcdsaDer(HashAlg::Sha256)
    );
    crl.verify_signed_by(issuer_key.public_key()).unwrap();
    // The bytes verified are the TBSCertList as received, inside the DER given.
    assert!(der.windows(crl.tbs_der().len()).any(|w| w == crl.tbs_der()));

    // A certificate's serial compares with the listed ones as encoded.
    let leaf = cert(&build(&Spec::leaf("Test CRL Issuer"), &key(), &issuer_key));
    assert!(crl.revoked_serials().any(|s| s == leaf.serial()));

    // nextUpdate is optional.
    let (_, der) = signed_crl(|spec| spec.next_update = None);
    assert_eq!(Crl::from_der(&der).unwrap().next_update(), None);
}

#[test]
fn rejects_crl_signed_by_another_key_with_crl_signature_invalid() {
    let (_, der) = signed_crl(|_| {});
    let crl = Crl::from_der(&der).unwrap();
    assert_eq!(
        crl.verify_signed_by(key().public_key()),
        Err(Error::CrlSignatureInvalid {
            issuer: crl.issuer().to_string()
        })
    );
}

#[test]
fn rejects_crl_with_a_changed_entry_with_crl_signature_invalid() {
    let (issuer_key, mut der) = signed_crl(|_| {});
    // Change revoked serial 00ff to 00fe: still well formed, no longer what was signed.
    let at = der
        .windows(4)
        .position(|w| w == [0x02, 0x02, 0x00, 0xff])
        .unwrap();
    der[at + 3] = 0xfe;
    let crl = Crl::from_der(&der).unwrap();
    assert_eq!(
        crl.verify_signed_by(issuer_key.public_key()),
        Err(Error::CrlSignatureInvalid {
            issuer: crl.issuer().to_string()
        })
    );
}

#[test]
fn rejects_crl_checked_with_an_rsa_key_with_key_algorithm_mismatch() {
    let (_, der) = signed_crl(|_| {});
    let crl = Crl::from_der(&der).unwrap();
    let rsa_key = der_key_of_intel_ek();
    assert_eq!(
        crl.verify_signed_by(&rsa_key),
        Err(Error::KeyAlgorithmMismatch {
            subject: format!("CRL of {}", crl.issuer())
        })
    );
}

fn der_key_of_intel_ek() -> plinth_crypto::PublicKey {
    der("tpm/ek-certs/intel-ptt/intel_ptt_ek_rsa_cert.der")
        .public_key()
        .unwrap()
}

#[test]
fn rejects_crl_with_trailing_data_with_crl_trailing_data() {
    let (_, mut der) = signed_crl(|_| {});
    der.extend([0, 0]);
    assert_eq!(
        Crl::from_der(&der).err(),
        Some(Error::CrlTrailingData { extra: 2 })
    );
}

#[test]
fn rejects_truncated_crl_with_crl_malformed() {
    let (_, der) = signed_crl(|_| {});
    for cut in [1, 2, 10, der.len() / 2, der.len() - 1] {
        assert_eq!(
            Crl::from_der(&der[..cut]).err(),
            Some(Error::CrlMalformed("CertificateList".to_owned())),
            "cut at {cut}"
        );
    }
}

#[test]
fn rejects_crl_over_the_entry_budget_with_crl_too_many_entries() {
    let serials: Vec<Vec<u8>> = (0..=MAX_CRL_ENTRIES)
        .map(|i| u32::try_from(i + 1).unwrap().to_be_bytes().to_vec())
        .map(|b| {
            // Minimal positive INTEGER contents.
            let skip = b.iter().take_while(|&&x| x == 0).count();
            let mut v = b[skip..].to_vec();
            if v[0] & 0x80 != 0 {
                v.insert(0, 0);
            }
            v
        })
        .collect();
    let at_budget = serials[..MAX_CRL_ENTRIES].iter().map(Vec::as_slice);
    let (_, der) = signed_crl(|spec| {
        spec.entries = at_budget.map(|s| (s.to_vec(), Vec::new())).collect();
    });
    assert_eq!(
        Crl::from_der(&der).unwrap().revoked_serials().len(),
        MAX_CRL_ENTRIES
    );
    let (_, der) = signed_crl(|spec| {
        spec.entries = serials.iter().map(|s| (s.clone(), Vec::new())).collect();
    });
    assert_eq!(
        Crl::from_der(&der).err(),
        Some(Error::CrlTooManyEntries {
            max: MAX_CRL_ENTRIES
        })
    );
}

#[test]
fn rejects_crl_over_the_size_budget_with_crl_too_large() {
    let (_, der) = signed_crl(|_| {});
    let mut big = der.clone();
    big.resize(plinth_x509::MAX_CRL_LEN + 1, 0);
    assert_eq!(
        Crl::from_der(&big).err(),
        Some(Error::CrlTooLarge {
            len: plinth_x509::MAX_CRL_LEN + 1,
            max: plinth_x509::MAX_CRL_LEN
        })
    );
}

#[test]
fn rejects_crl_with_a_critical_extension_with_crl_unknown_critical_extension() {
    // deltaCRLIndicator (2.5.29.27), critical: a delta CRL is not a complete list.
    let (_, der) = signed_crl(|spec| {
        spec.extensions
            .push((vec![0x55, 0x1d, 0x1b], true, vec![0x02, 0x01, 0x01]));
    });
    assert_eq!(
        Crl::from_der(&der).err(),
        Some(Error::CrlUnknownCriticalExtension {
            oid: "2.5.29.27".to_owned()
        })
    );
    // A critical reasonCode (2.5.29.21) on one entry.
    let (_, der) = signed_crl(|spec| {
        spec.entries[0].1.push((vec![0x55, 0x1d, 0x15], true));
    });
    assert_eq!(
        Crl::from_der(&der).err(),
        Some(Error::CrlUnknownCriticalExtension {
            oid: "2.5.29.21".to_owned()
        })
    );
    // The same reasonCode, non-critical, is fine.
    let (_, der) = signed_crl(|spec| {
        spec.entries[0].1.push((vec![0x55, 0x1d, 0x15], false));
    });
    let _crl = Crl::from_der(&der).unwrap();
}

#[test]
fn rejects_crl_with_a_repeated_extension_with_duplicate_extension() {
    let (_, der) = signed_crl(|spec| {
        spec.extensions
            .push((vec![0x55, 0x1d, 0x14], false, vec![0x02, 0x01, 0x08]));
    });
    assert_eq!(
        Crl::from_der(&der).err(),
        Some(Error::DuplicateExtension {
            oid: "2.5.29.20".to_owned()
        })
    );
}

#[test]
fn rejects_crl_whose_inner_algorithm_differs_with_signature_algorithm_mismatch() {
    let (_, der) = signed_crl(|spec| {
        // ecdsa-with-SHA384 inside, ecdsa-with-SHA256 outside.
        spec.inner_algorithm = vec![0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    });
    assert_eq!(
        Crl::from_der(&der).err(),
        Some(Error::SignatureAlgorithmMismatch)
    );
}

// ---- real CRLs ----

#[test]
fn intel_sgx_crls_parse_and_verify_with_their_issuers() {
    let chain = pem("tdx/go-tdx-guest/pck_crl_issuer_chain.pem");
    let (platform_ca, root) = (&chain[0], &chain[1]);
    assert_eq!(
        platform_ca.subject().common_name(),
        Some("Intel SGX PCK Platform CA")
    );
    assert_eq!(root.subject().common_name(), Some("Intel SGX Root CA"));

    let pck_crl = Crl::from_der(&read("tdx/go-tdx-guest/pckcrl")).unwrap();
    assert_eq!(pck_crl.issuer(), platform_ca.subject());
    assert_eq!(
        pck_crl.signature_scheme().unwrap(),
        SignatureScheme::EcdsaDer(HashAlg::Sha256)
    );
    pck_crl
        .verify_signed_by(&platform_ca.public_key().unwrap())
        .unwrap();
    assert_eq!(pck_crl.this_update(), at("2023-06-08T07:27:52Z"));
    assert_eq!(pck_crl.next_update(), Some(at("2023-07-08T07:27:52Z")));
    let serials: Vec<String> = pck_crl.revoked_serials().map(hex::encode).collect();
    assert_eq!(serials.len(), 44);
    // Serials as encoded: a leading 00 where the high bit is set.
    assert_eq!(
        serials[..2],
        [
            "6fc34e5023e728923435d61aa4b83c618166ad35",
            "00efae6e9715fca13b87e333e8261ed6d990a926ad"
        ]
    );

    let root_crl = Crl::from_der(&read("tdx/go-tdx-guest/rootcrl.der")).unwrap();
    assert_eq!(root_crl.issuer(), root.subject());
    root_crl
        .verify_signed_by(&root.public_key().unwrap())
        .unwrap();
    assert_eq!(root_crl.this_update(), at("2023-04-03T10:22:51Z"));
    assert_eq!(root_crl.next_update(), Some(at("2024-04-02T10:22:51Z")));
    assert_eq!(root_crl.revoked_serials().len(), 0);
    // The root's CRL is not signed by the platform CA.
    assert_eq!(
        root_crl.verify_signed_by(&platform_ca.public_key().unwrap()),
        Err(Error::CrlSignatureInvalid {
            issuer: root_crl.issuer().to_string()
        })
    );
}
