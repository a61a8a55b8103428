//! TCG event log parsing (both formats), replay, typed decoding and the boot state drawn
//! from it; with the first byte choosing a small budget so that budget paths are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_tpm::eventlog::efi::SignatureValue;
use plinth_tpm::eventlog::{Budget, EventLog};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, log)) = data.split_first() else {
        return;
    };
    let budget = if choice & 1 == 0 {
        Budget::default()
    } else {
        Budget {
            max_events: usize::from(choice >> 1) + 1,
            max_event_size: 4096,
            max_log_size: 1 << 16,
        }
    };
    if let Ok(log) = EventLog::parse_with_budget(log, budget) {
        let replay = log.replay();
        let _ = replay.values().iter().count();
        let state = log.boot_state_unverified();
        let _ = state.check_dbx(&[]);
        for database in [state.pk(), state.kek(), state.db(), state.dbx()]
            .into_iter()
            .flatten()
        {
            for entry in database {
                if let SignatureValue::Certificate(cert) = &entry.value {
                    let _ = cert.subject();
                }
            }
        }
        for event in log.events() {
            let _ = format!("{:?}", event.decoded());
        }
    }
});
