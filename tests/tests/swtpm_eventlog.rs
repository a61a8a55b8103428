//! Measured boot end to end: a fresh swtpm is extended, event by event, with the digests of
//! a real firmware event log (the test plays the firmware), then quotes; plinth verifies the
//! quote and the log together and must report the same boot state as from the file alone.
//!
//! The log is GCE's Ubuntu 21.04 log (sha1, sha256 and sha384 banks, shim + GRUB, Secure
//! Boot off). Its PCR 0 starts at zero (no StartupLocality event), which a TPM started at
//! locality 0 reproduces; all its PCRs (0–9, 14) are below 16, which locality 0 may extend.
//! Only the banks both the log and the swtpm have are extended and quoted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::collections::BTreeSet;

use plinth_core::{HashAlg, SecureRandom};
use plinth_crypto::SystemRandom;
use plinth_e2e::Swtpm;
use plinth_e2e::flows::KeyAlg;
use plinth_tpm::eventlog::{BootState, EventLog, Provenance};
use plinth_tpm::{Error, verify_event_log, verify_quote};

const LOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/tpm/eventlogs/go-tpm-tools/ubuntu-2104-no-secure-boot.bin"
);
const OTHER_LOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/tpm/eventlogs/go-tpm-tools/ubuntu-2104-no-dbx.bin"
);

/// Every fact of two boot states, except where they came from.
fn assert_same_facts(verified: &BootState, file_only: &BootState) {
    assert_eq!(verified.pcrs(), file_only.pcrs());
    assert_eq!(verified.secure_boot(), file_only.secure_boot());
    assert_eq!(verified.deployed_mode(), file_only.deployed_mode());
    assert_eq!(verified.setup_mode(), file_only.setup_mode());
    assert_eq!(verified.pk(), file_only.pk());
    assert_eq!(verified.kek(), file_only.kek());
    assert_eq!(verified.db(), file_only.db());
    assert_eq!(verified.dbx(), file_only.dbx());
    assert_eq!(verified.authorities(), file_only.authorities());
    assert_eq!(verified.boot_applications(), file_only.boot_applications());
    assert_eq!(verified.kernel_cmdline(), file_only.kernel_cmdline());
    assert_eq!(verified.bootloader(), file_only.bootloader());
    assert_eq!(verified.separators(), file_only.separators());
    assert_eq!(
        verified.exit_boot_services(),
        file_only.exit_boot_services()
    );
    assert_eq!(verified.crtm_version(), file_only.crtm_version());
    assert_eq!(verified.unbound_events(), file_only.unbound_events());
}

#[test]
fn swtpm_extended_with_a_real_log_verifies_quote_and_log_together() {
    let log_bytes = std::fs::read(LOG).unwrap();
    let log = EventLog::parse(&log_bytes).unwrap();
    assert_eq!(
        log.startup_locality(),
        None,
        "PCR 0 must start at zero for a locality-0 TPM"
    );

    let tpm = Swtpm::start().unwrap_or_else(|error| panic!("cannot run the swtpm tests: {error}"));
    let tpm_banks = tpm.active_banks().unwrap();
    let banks: Vec<HashAlg> = log
        .banks()
        .iter()
        .filter_map(|b| b.replayable())
        .filter(|b| tpm_banks.contains(b))
        .collect();
    assert!(
        banks.contains(&HashAlg::Sha1) && banks.contains(&HashAlg::Sha256),
        "{tpm_banks:?}"
    );

    // Firmware: one TPM2_PCR_Extend per extended event, with that event's digest in every
    // bank both have.
    let mut pcrs = BTreeSet::new();
    for event in log.events().iter().filter(|e| e.is_extended()) {
        let digests: Vec<String> = banks
            .iter()
            .map(|bank| format!("{bank}={}", event.digest(*bank).unwrap().to_hex()))
            .collect();
        let spec = format!("{}:{}", event.pcr(), digests.join(","));
        let _stdout = tpm.tool_keep_loaded("tpm2_pcrextend", &[&spec]).unwrap();
        let _new = pcrs.insert(event.pcr());
    }
    assert_eq!(
        pcrs.iter().copied().collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]
    );

    // The OS: quote every PCR the log touched, in every extended bank.
    let list: Vec<String> = pcrs.iter().map(ToString::to_string).collect();
    let selection: Vec<String> = banks
        .iter()
        .map(|bank| format!("{bank}:{}", list.join(",")))
        .collect();
    let selection = selection.join("+");
    let ek = tpm.create_ek(KeyAlg::Rsa, "ek").unwrap();
    let ak = tpm.create_ak(&ek, KeyAlg::EccP256, "ak").unwrap();
    let mut nonce = vec![0; 32];
    SystemRandom.fill(&mut nonce).unwrap();
    let quote = tpm.quote(&ak, &selection, &nonce, "quote").unwrap();

    // plinth: quote first, then the log against it.
    let verified_quote = verify_quote(
        &ak.public().unwrap(),
        &quote.attest,
        &quote.signature,
        &nonce,
        &quote.pcrs,
    )
    .unwrap();
    let verified = verify_event_log(&log_bytes, &verified_quote).unwrap();
    assert_eq!(verified.verified_banks(), banks.as_slice());
    assert_eq!(
        verified
            .verified_pcrs()
            .iter()
            .map(|p| u32::from(*p))
            .collect::<BTreeSet<_>>(),
        pcrs
    );
    assert!(verified.uncovered_pcrs().is_empty());
    for bank in &banks {
        for pcr in &pcrs {
            let pcr = u8::try_from(*pcr).unwrap();
            assert_eq!(
                verified.replayed().get(*bank, pcr),
                quote.pcrs.get(*bank, pcr),
                "{bank}:{pcr}"
            );
        }
    }

    let from_quote = verified.boot_state();
    let from_file = log.boot_state_unverified();
    assert_eq!(from_quote.provenance(), Provenance::Verified);
    assert_eq!(from_file.provenance(), Provenance::Unverified);
    assert_same_facts(&from_quote, &from_file);
    assert_eq!(from_quote.secure_boot(), Some(false));
    assert_eq!(from_quote.exit_boot_services(), Some(true));
    let loader = from_quote.bootloader().unwrap();
    assert_eq!(
        (loader.name.as_str(), loader.shim, loader.basis),
        ("grub", true, "measured")
    );
    assert!(
        from_quote
            .kernel_cmdline()
            .unwrap()
            .contains("root=PARTUUID=6443a6ae-e5e9-4df7-9a06-d1329e50f33c")
    );

    // The same quote with the log of another boot of the same image: rejected.
    let other = std::fs::read(OTHER_LOG).unwrap();
    assert!(matches!(
        verify_event_log(&other, &verified_quote),
        Err(Error::EventLogReplayMismatch { .. })
    ));
}
