//! X.509 certificate parsing (strict, NV-padding-trimmed and PEM), every accessor of a
//! parsed certificate, and path validation of a certificate against itself as anchor;
//! CRL parsing of the same input, its accessors, and its signature check with a real CRL
//! issuer's key.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use plinth_core::UnixTime;
use plinth_crypto::PublicKey;
use plinth_x509::{Certificate, ChainOptions, Crl, TrustAnchors, certificates_from_pem, oids};

fn exercise(cert: &Certificate) {
    let _ = cert.signature_scheme();
    let _ = cert.public_key();
    let _ = (
        cert.subject().to_string(),
        cert.issuer().to_string(),
        cert.subject().common_name(),
    );
    let _ = (
        cert.validity(),
        cert.serial(),
        cert.version(),
        cert.fingerprint(),
    );
    let _ = (
        cert.basic_constraints(),
        cert.key_usage(),
        cert.extended_key_usage(),
    );
    let _ = (
        cert.subject_key_id(),
        cert.authority_key_id(),
        cert.subject_alt_name_der(),
    );
    let _ = (
        cert.san_directory_attributes(),
        cert.extensions(),
        cert.is_self_issued(),
    );
    let anchors = TrustAnchors::from_certificates([cert.clone()]);
    let options = ChainOptions::new().allow_critical_extension(oids::SUBJECT_ALT_NAME);
    let now = UnixTime::from_secs(1_790_000_000);
    let _ = plinth_x509::verify_chain(cert, &[cert.clone()], &anchors, now, &options);
}

/// The key of a real CRL issuer (Intel SGX PCK Platform CA, P-256).
fn crl_issuer_key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let pem = include_bytes!("../../testdata/tdx/go-tdx-guest/pck_crl_issuer_chain.pem");
        let chain = certificates_from_pem(pem).expect("shipped chain");
        chain
            .first()
            .expect("two certificates")
            .public_key()
            .expect("a P-256 key")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = Certificate::from_der(data) {
        exercise(&cert);
    }
    if let Ok(cert) = Certificate::from_der_trimmed(data) {
        exercise(&cert);
    }
    if let Ok(certs) = certificates_from_pem(data) {
        certs.iter().for_each(exercise);
    }
    if let Ok(crl) = Crl::from_der(data) {
        let _ = (
            crl.issuer().to_string(),
            crl.this_update(),
            crl.next_update(),
        );
        let _ = (crl.revoked_serials().count(), crl.signature_scheme());
        let _ = crl.verify_signed_by(crl_issuer_key());
    }
});
