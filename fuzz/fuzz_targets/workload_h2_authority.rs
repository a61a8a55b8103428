//! The agent's HTTP/2 `:authority` fix for gRPC C-core clients on arbitrary client bytes
//! (HTTP/2 frames and HPACK header blocks from any local process). Whatever the bytes, it
//! must not panic (a panic inside the HPACK decoder is caught and closes the connection).
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_agent::workload::fuzzing::rewrite_client_bytes;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    // After the preface, split where the first byte says (reads arrive in pieces).
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    let (a, b) = rest.split_at(at);
    let _ = rewrite_client_bytes(&[PREFACE, a, b]);
});
