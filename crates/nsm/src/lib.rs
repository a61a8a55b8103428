//! The AWS Nitro Secure Module (NSM) interface, as an enclave's node agent needs it: ask
//! the NSM for an attestation document.
//!
//! ```text
//!  AttestationRequest ──► encode_attestation_request ──► CBOR request (≤ 0x1000 bytes)
//!   nonce ≤ 512, public_key 1..=1024,                          │
//!   user_data ≤ 512                                            ▼
//!                                            NsmTransport::exchange
//!                                            ├ NsmDevice: ioctl(NSM_IOCTL_RAW) on /dev/nsm
//!                                            └ tests: any recording transport
//!                                                              │
//!  document (COSE_Sign1) ◄── decode_response ◄── CBOR response (≤ 0x3000 bytes)
//!  or Error::Nsm(ErrorCode)   exactly {"Attestation": {"document": bstr}}
//!                             or {"Error": "<ErrorCode>"}; nothing else, no trailing bytes
//! ```
//!
//! The codec ([`encode_attestation_request`], [`decode_response`]) is pure and safe. The
//! device ([`NsmDevice`]) is the one place in the workspace with `unsafe` code: a single
//! `ioctl`, Linux only.
//!
//! # Where the wire format comes from
//! Written from the published interface, not from AWS's client library (whose published
//! crate still decodes CBOR with serde_cbor, RUSTSEC-2021-0127):
//! - **The ioctl.** Linux `include/uapi/linux/nsm.h` (v6.8+, "Amazon Nitro Secure Module
//!   driver"): `NSM_MAGIC` 0x0A; `struct nsm_iovec { __u64 addr; __u64 len; }`;
//!   `struct nsm_raw { struct nsm_iovec request; struct nsm_iovec response; }`;
//!   `NSM_IOCTL_RAW = _IOWR(NSM_MAGIC, 0x0, struct nsm_raw)`; `NSM_REQUEST_MAX_SIZE`
//!   0x1000 and `NSM_RESPONSE_MAX_SIZE` 0x3000. The driver (`drivers/misc/nsm.c`) refuses
//!   a longer request with `EMSGSIZE`, writes at most `response.len` bytes of the reply
//!   and sets `response.len` to the number written.
//! - **The messages.** The NSM speaks CBOR in the shape serde gives Rust enums ("externally
//!   tagged"), as defined by the `Request` and `Response` enums of
//!   aws/aws-nitro-enclaves-nsm-api `src/api/mod.rs`: a request is a one-entry map from
//!   the operation's name to a map of its fields, in declaration order, e.g.
//!   `{"Attestation": {"user_data": bstr / null, "nonce": bstr / null,
//!   "public_key": bstr / null}}`; the reply is `{"Attestation": {"document": bstr}}`, or
//!   `{"Error": "<ErrorCode>"}` with one of the nine `ErrorCode` names.
//! - **Field limits.** aws/aws-nitro-enclaves-nsm-api `docs/attestation_process.md`,
//!   section 3.2.2.2 ("Check content"): `public_key` 1..=1024 bytes, `user_data` and `nonce`
//!   0..=512 bytes each (the same document's CDDL allows `user_data` up to 1024; the
//!   stricter validation rule is used, as a verifier applies it).

mod codec;
mod device;
mod error;

pub use codec::{
    AttestationRequest, ErrorCode, MAX_NONCE_LEN, MAX_PUBLIC_KEY_LEN, MAX_USER_DATA_LEN,
    NSM_REQUEST_MAX_SIZE, NSM_RESPONSE_MAX_SIZE, decode_response, encode_attestation_request,
};
pub use device::NsmDevice;
pub use error::{Error, Field};

/// Something that carries one CBOR request to an NSM and brings back its CBOR response:
/// the device ([`NsmDevice`]), or a test double.
pub trait NsmTransport {
    /// Sends `request` and returns the response bytes, undecoded.
    ///
    /// # Errors
    /// The transport's own failures ([`Error::Ioctl`], [`Error::RequestTooLarge`], …).
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, Error>;
}

/// Asks the NSM behind `transport` for an attestation document over `request`: encodes it,
/// exchanges it and decodes the reply.
///
/// # Errors
/// As [`encode_attestation_request`], [`NsmTransport::exchange`] and [`decode_response`]
/// (an NSM refusal is [`Error::Nsm`]).
pub fn request_attestation(
    transport: &mut dyn NsmTransport,
    request: &AttestationRequest<'_>,
) -> Result<Vec<u8>, Error> {
    let bytes = encode_attestation_request(request)?;
    let response = transport.exchange(&bytes)?;
    decode_response(&response)
}
