//! NSM responses: the CBOR an enclave's agent reads back from /dev/nsm, decoded by
//! `plinth_nsm::decode_response` (size budget, CBOR well-formedness, nesting limit, exact
//! shape, trailing data, error codes).
//!
//! The first input byte picks the mode: even, the rest of the input is the response; odd,
//! the rest is a document wrapped in a well-formed `{"Attestation": {"document": …}}`
//! response, with the first byte's upper bits choosing how much of that to cut off, so
//! that mutations reach past the header without a seed corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        if let Ok(document) = plinth_nsm::decode_response(rest) {
            assert!(!document.is_empty());
        }
        return;
    }
    let Ok(len) = u16::try_from(rest.len()) else { return };
    let mut response = vec![0xA1, 0x6B];
    response.extend_from_slice(b"Attestation");
    response.extend_from_slice(&[0xA1, 0x68]);
    response.extend_from_slice(b"document");
    response.push(0x59);
    response.extend_from_slice(&len.to_be_bytes());
    response.extend_from_slice(rest);
    let full = response.len();
    let keep = usize::from(mode >> 1).saturating_mul(full) / 127;
    response.truncate(keep.max(1));
    let result = plinth_nsm::decode_response(&response);
    if response.len() == full && !rest.is_empty() && full <= plinth_nsm::NSM_RESPONSE_MAX_SIZE {
        assert_eq!(result.unwrap(), rest);
    } else {
        assert!(result.is_err());
    }
});
