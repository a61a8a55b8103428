//! MakeCredential against real EK public areas (Intel PTT RSA-2048 and ECC P-256 EKs).
//! That a real TPM accepts the result is proven by the swtpm tests in tests/.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use plinth_crypto::SystemRandom;
use plinth_tpm::{Error, Public, make_credential};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/tpm");

fn public(path: &str) -> Public {
    Public::from_either(&std::fs::read(format!("{DATA}/{path}")).unwrap()).unwrap()
}

fn gce_ak() -> Public {
    public("quotes/gce-cos85/ak_pub.tpmt_public.bin")
}

#[test]
fn rsa_ek_challenge_has_tpm_shapes() {
    let ek = public("ek-certs/intel-ptt/ek_rsa.tpm2b_public.bin");
    let (challenge, _pending) = make_credential(&ek, &gce_ak(), &SystemRandom).unwrap();
    // TPM2B_DIGEST(HMAC-SHA-256) then AES-CFB(TPM2B_DIGEST(32-byte secret)).
    assert_eq!(challenge.id_object.len(), (2 + 32) + (2 + 32));
    assert_eq!(&challenge.id_object[..2], &[0, 32]);
    // RSA-OAEP ciphertext under a 2048-bit EK.
    assert_eq!(challenge.encrypted_secret.len(), 256);
}

#[test]
fn ecc_ek_challenge_is_an_ephemeral_point() {
    let ek = public("ek-certs/intel-ptt/ek_ecc.tpm2b_public.bin");
    let (challenge, _pending) = make_credential(&ek, &gce_ak(), &SystemRandom).unwrap();
    assert_eq!(challenge.id_object.len(), 68);
    assert_eq!(challenge.encrypted_secret.len(), 2 + 32 + 2 + 32);
    assert_eq!(&challenge.encrypted_secret[..2], &[0, 32]);
    assert_eq!(&challenge.encrypted_secret[34..36], &[0, 32]);
}

#[test]
fn fresh_secret_and_seed_each_time() {
    let ek = public("ek-certs/intel-ptt/ek_rsa.tpm2b_public.bin");
    let (a, _) = make_credential(&ek, &gce_ak(), &SystemRandom).unwrap();
    let (b, _) = make_credential(&ek, &gce_ak(), &SystemRandom).unwrap();
    assert_ne!(a.id_object, b.id_object);
    assert_ne!(a.encrypted_secret, b.encrypted_secret);
}

#[test]
fn rejects_wrong_secret_with_activation_secret_mismatch() {
    let ek = public("ek-certs/intel-ptt/ek_rsa.tpm2b_public.bin");
    let (_challenge, pending) = make_credential(&ek, &gce_ak(), &SystemRandom).unwrap();
    assert_eq!(
        pending.verify(&[0; 32]).unwrap_err(),
        Error::ActivationSecretMismatch
    );
    let (_challenge, pending) = make_credential(&ek, &gce_ak(), &SystemRandom).unwrap();
    assert_eq!(
        pending.verify(&[]).unwrap_err(),
        Error::ActivationSecretMismatch
    );
}

#[test]
fn rejects_non_ek_with_unusable_ek() {
    // An AK is a signing key, not a restricted decryption key.
    assert_eq!(
        make_credential(&gce_ak(), &gce_ak(), &SystemRandom).unwrap_err(),
        Error::UnusableEk("not a restricted decryption key")
    );
}

#[test]
fn rejects_unrestricted_ak_with_ak_attributes() {
    let ek = public("ek-certs/intel-ptt/ek_rsa.tpm2b_public.bin");
    let mut raw = std::fs::read(format!("{DATA}/quotes/gce-cos85/ak_pub.tpmt_public.bin")).unwrap();
    raw[5] &= !0x01;
    let ak = Public::from_tpmt(&raw).unwrap();
    assert_eq!(
        make_credential(&ek, &ak, &SystemRandom).unwrap_err(),
        Error::AkAttributes("not restricted")
    );
}

#[test]
fn pending_activation_debug_shows_no_secret() {
    let ek = public("ek-certs/intel-ptt/ek_rsa.tpm2b_public.bin");
    let ak = gce_ak();
    let (_challenge, pending) = make_credential(&ek, &ak, &SystemRandom).unwrap();
    assert_eq!(
        format!("{pending:?}"),
        format!(
            "PendingActivation {{ ak: {:?}, .. }}",
            hex::encode(ak.name())
        )
    );
}
