//! plinth-store: an audit export as an auditor receives it (JSON from anyone), parsed and
//! re-verified offline: the chain over full records and stubs, checkpoints, evidence and
//! policy digests.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(export) = plinth_store::audit::AuditExport::from_json(data) else {
        return;
    };
    // Trust whatever key the export's first checkpoint names: the signature must still
    // verify, so the input decides how far verification gets.
    let trusted: Vec<Vec<u8>> = export
        .anchor
        .iter()
        .chain(&export.checkpoints)
        .map(|c| c.signer_spki_der.clone())
        .take(1)
        .collect();
    let _ = plinth_store::audit::verify_export(&export, &trusted);
});
