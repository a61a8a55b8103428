//! TPMT_PUBLIC / TPM2B_PUBLIC parsing, and every accessor of a parsed key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(public) = plinth_tpm::Public::from_either(data) {
        let _ = public.name();
        let _ = public.public_key();
    }
});
