//! TPMS_ATTEST and TPMT_SIGNATURE parsing through the quote and certify verifiers, with a
//! fixed real AK so that parsing reaches past the signature check's inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_tpm::{PcrValues, Public, verify_certify, verify_quote};

const AK: &[u8] = include_bytes!("../../testdata/tpm/quotes/gce-cos85/ak_pub.tpmt_public.bin");

fuzz_target!(|data: &[u8]| {
    // First two bytes: where the attest ends and the signature begins.
    let Some((split, rest)) = data.split_first_chunk::<2>() else { return };
    let split = usize::from(u16::from_be_bytes(*split)).min(rest.len());
    let (attest, signature) = rest.split_at(split);
    let Ok(ak) = Public::from_tpmt(AK) else { return };
    let _ = verify_quote(&ak, attest, signature, &[0x90, 0x09], &PcrValues::default());
    let _ = verify_certify(&ak, attest, signature, AK, &[]);
});
