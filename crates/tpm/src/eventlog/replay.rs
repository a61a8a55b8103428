//! Replay (every extended event into every bank the log carries) and the check against a
//! verified quote.
//!
//! # What a mismatch can tell
//!
//! A PCR is a hash chain: its final value depends on every event extended into it, so from
//! a differing final value alone no one can say *which* event differs. Two things are
//! determinable, and [`Error::EventLogReplayMismatch`] reports both:
//!
//! - `last_event`: the last event of the log extended into that PCR and bank — the replay
//!   after it is the value that was compared;
//! - `consistent_through`: when the quoted value equals the replay after some earlier event
//!   `k` of that PCR, the TPM is consistent with the log up to and including `k`, and the
//!   log diverges after it: the later events were never extended (or the quote was taken
//!   before they were). When no prefix of the log reproduces the quoted value this is
//!   `None`, and any event up to `last_event` may be the one that differs.

use std::collections::{BTreeMap, BTreeSet};

use plinth_core::{Digest, HashAlg};
use plinth_crypto::{Hasher, digest, verify_slices_equal};

use super::boot_state::{BootState, Provenance};
use super::events::{Bank, Event, EventData, EventType, Variable};
use super::parse::EventLog;
use crate::Error;
use crate::quote::{PcrValues, VerifiedQuote};

/// PCR values computed from a log, for every PCR the log extends, in every bank the log
/// carries that plinth can compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedPcrs {
    values: PcrValues,
    last_event: BTreeMap<(HashAlg, u8), usize>,
    unreplayable: Vec<Bank>,
    startup_locality: Option<u8>,
}

impl ReplayedPcrs {
    /// The replayed values, by bank and PCR.
    pub const fn values(&self) -> &PcrValues {
        &self.values
    }

    /// The replayed value of one PCR, if the log extends it.
    pub fn get(&self, bank: HashAlg, pcr: u8) -> Option<&Digest> {
        self.values.get(bank, pcr)
    }

    /// The index of the last event extended into `pcr` in `bank`.
    pub fn last_event(&self, bank: HashAlg, pcr: u8) -> Option<usize> {
        self.last_event.get(&(bank, pcr)).copied()
    }

    /// The replayed banks.
    pub fn banks(&self) -> Vec<HashAlg> {
        let mut banks: Vec<HashAlg> = self.values.iter().map(|(bank, _, _)| bank).collect();
        banks.dedup();
        banks
    }

    /// Banks the log carries that cannot be replayed here (SM3-256, unknown algorithms).
    /// Their digests are parsed and kept, but no PCR value is computed for them.
    pub fn unreplayable_banks(&self) -> &[Bank] {
        &self.unreplayable
    }

    /// The locality PCR 0 started at, from the `StartupLocality` event.
    pub const fn startup_locality(&self) -> Option<u8> {
        self.startup_locality
    }
}

/// The value a PCR holds before any event is extended into it: zero, except PCR 0 after a
/// TPM2_Startup at locality 3 or 4 (`StartupLocality` event), whose last byte is the
/// locality. (PCRs 17–22 reset to all ones but are only extended by a dynamic launch, which
/// zeroes them first.)
fn initial_value(bank: HashAlg, pcr: u8, locality: Option<u8>) -> Vec<u8> {
    let mut value = vec![0; bank.output_len()];
    if let (0, Some(locality), Some(last)) = (pcr, locality, value.last_mut()) {
        *last = locality;
    }
    value
}

/// The value a PCR holds when nothing was extended into it since reset.
fn reset_value(bank: HashAlg, pcr: u8, locality: Option<u8>) -> Vec<u8> {
    if (17..=22).contains(&pcr) {
        vec![0xff; bank.output_len()]
    } else {
        initial_value(bank, pcr, locality)
    }
}

fn extend(bank: HashAlg, value: &[u8], digest: &[u8]) -> Vec<u8> {
    let mut hasher = Hasher::new(bank);
    hasher.update(value);
    hasher.update(digest);
    hasher.finish().as_bytes().to_vec()
}

/// The events extended into `pcr`, with their digest in `bank`.
fn extended_into(log: &EventLog, bank: HashAlg, pcr: u8) -> impl Iterator<Item = (usize, &[u8])> {
    log.events
        .iter()
        .filter(move |e| e.is_extended() && e.pcr == u32::from(pcr))
        .filter_map(move |e| {
            e.digests
                .iter()
                .find(|d| d.bank == Bank::Hash(bank))
                .map(|d| (e.index, d.bytes.as_slice()))
        })
}

impl EventLog {
    /// Replays the log: extends every event (except `EV_NO_ACTION`) into its PCR, in every
    /// bank the log carries that plinth can compute. The result is only as trustworthy as
    /// the log: compare it with a verified quote ([`verify_event_log`]).
    pub fn replay(&self) -> ReplayedPcrs {
        let locality = self.startup_locality();
        let mut running: BTreeMap<(HashAlg, u8), Vec<u8>> = BTreeMap::new();
        let mut last_event = BTreeMap::new();
        for event in self.events.iter().filter(|e| e.is_extended()) {
            // Parsing rejected extended events with a PCR above 23.
            let Ok(pcr) = u8::try_from(event.pcr) else {
                continue;
            };
            for digest in &event.digests {
                let Some(bank) = digest.bank.replayable() else {
                    continue;
                };
                let value = running
                    .entry((bank, pcr))
                    .or_insert_with(|| initial_value(bank, pcr, locality));
                *value = extend(bank, value, &digest.bytes);
                let _previous = last_event.insert((bank, pcr), event.index);
            }
        }
        let mut values = PcrValues::default();
        for ((bank, pcr), value) in running {
            if let Ok(value) = Digest::new(bank, &value) {
                // Indices are at most 23 and lengths match the bank, so this cannot fail.
                let _inserted = values.insert(bank, pcr, value);
            }
        }
        ReplayedPcrs {
            values,
            last_event,
            unreplayable: self
                .banks
                .iter()
                .copied()
                .filter(|bank| bank.replayable().is_none())
                .collect(),
            startup_locality: locality,
        }
    }

    /// The boot state as the log claims it, **without** checking the log against a quote:
    /// for inspecting a log file. Anything can be written into a file; only
    /// [`VerifiedEventLog::boot_state`] is evidence.
    pub fn boot_state_unverified(&self) -> BootState {
        let banks: Vec<HashAlg> = self
            .banks
            .iter()
            .filter_map(|bank| bank.replayable())
            .collect();
        let bindings = bindings(self, &banks);
        let pcrs: BTreeSet<u8> = self
            .events
            .iter()
            .filter_map(|e| u8::try_from(e.pcr).ok())
            .collect();
        BootState::build(self, &pcrs, &bindings, &banks, Provenance::Unverified)
    }
}

/// How an event's data relates to its measured digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataBinding {
    /// The digest is the hash of the data (as the event type defines it): the data is as
    /// trustworthy as the digest.
    Bound,
    /// The event type measures something else than the data (an image, a firmware region):
    /// the data is a description, not evidence.
    Description,
    /// The event type should measure its data, but the data does not hash to the digest:
    /// the data is not evidence.
    Unbound,
}

/// Event types whose digest the specification defines as the hash of the event data, and
/// which plinth therefore requires to be bound in a verified log.
const STRICT: [EventType; 4] = [
    EventType::EV_SEPARATOR,
    EventType::EV_EFI_VARIABLE_DRIVER_CONFIG,
    EventType::EV_EFI_ACTION,
    EventType::EV_EFI_GPT_EVENT,
];

/// Whether `bank`'s digest of `event` is the hash of its data, allowing for the
/// conventions real measurers follow.
fn binding(event: &Event, bank: HashAlg) -> DataBinding {
    let Some(measured) = event.digest(bank) else {
        return DataBinding::Unbound;
    };
    let matches = |bytes: &[u8]| {
        verify_slices_equal(digest(bank, bytes).as_bytes(), measured.as_bytes()).is_ok()
    };
    let candidates: Vec<&[u8]> = match event.kind {
        EventType::EV_SEPARATOR
        | EventType::EV_EFI_VARIABLE_DRIVER_CONFIG
        | EventType::EV_EFI_ACTION
        | EventType::EV_EFI_GPT_EVENT
        | EventType::EV_EFI_VARIABLE_BOOT2
        | EventType::EV_EFI_VARIABLE_AUTHORITY
        | EventType::EV_S_CRTM_VERSION
        | EventType::EV_EFI_HANDOFF_TABLES2 => vec![&event.data],
        // Some firmware (older EDK2) hashes only the variable's value for Boot####.
        EventType::EV_EFI_VARIABLE_BOOT => match &event.decoded {
            EventData::Variable(variable) => vec![&event.data, variable_value(variable)],
            _ => vec![&event.data],
        },
        EventType::EV_IPL => return ipl_binding(event, &matches),
        _ => return DataBinding::Description,
    };
    if candidates.into_iter().any(matches) {
        DataBinding::Bound
    } else {
        DataBinding::Unbound
    }
}

fn variable_value(variable: &Variable) -> &[u8] {
    &variable.data
}

/// The labels GRUB puts before the strings it measures into PCR 8. GRUB hashes only the
/// string after the label, without the trailing NUL it logs: the label itself is not covered.
pub(crate) const GRUB_LABELS: [&str; 3] = ["grub_cmd: ", "kernel_cmdline: ", "module_cmdline: "];

/// `EV_IPL` is used for strings (GRUB's commands, systemd-boot's command line) and for
/// descriptions of measured files (GRUB's PCR 9, shim's PCR 14). A string that hashes to
/// the digest — whole, without its NUL, after a GRUB label, or with the NUL byte old
/// systemd-boot left out of the log — is bound; a GRUB-labelled string that does not is
/// unbound; anything else is a description.
fn ipl_binding(event: &Event, matches: &dyn Fn(&[u8]) -> bool) -> DataBinding {
    let data = event.data.as_slice();
    let without_nul = data.strip_suffix(&[0]).unwrap_or(data);
    let grub_payload = GRUB_LABELS
        .iter()
        .find_map(|label| without_nul.strip_prefix(label.as_bytes()));
    let mut with_nul = data.to_vec();
    with_nul.push(0);
    let candidates = [
        Some(data),
        Some(without_nul),
        grub_payload,
        (data.len() % 2 == 1).then_some(with_nul.as_slice()),
    ];
    if candidates.into_iter().flatten().any(matches) {
        DataBinding::Bound
    } else if grub_payload.is_some() {
        DataBinding::Unbound
    } else {
        DataBinding::Description
    }
}

/// The binding of every event, judged in the first of `banks` in order of preference
/// (SHA-256, SHA-384, SHA-512, SHA-1).
pub(crate) fn bindings(log: &EventLog, banks: &[HashAlg]) -> Vec<DataBinding> {
    let preferred = [
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
        HashAlg::Sha1,
    ]
    .into_iter()
    .find(|bank| banks.contains(bank));
    log.events
        .iter()
        .map(|event| match preferred {
            Some(bank) if event.is_extended() => binding(event, bank),
            _ => DataBinding::Unbound,
        })
        .collect()
}

/// An event log whose replay equals the PCR values of a verified quote. Only
/// [`verify_event_log`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEventLog {
    log: EventLog,
    replayed: ReplayedPcrs,
    banks: Vec<HashAlg>,
    verified_pcrs: BTreeSet<u8>,
    uncovered: Vec<(HashAlg, u8)>,
    bindings: Vec<DataBinding>,
}

impl VerifiedEventLog {
    /// The log.
    pub const fn log(&self) -> &EventLog {
        &self.log
    }

    /// The replay.
    pub const fn replayed(&self) -> &ReplayedPcrs {
        &self.replayed
    }

    /// The banks both the log and the quote carry, in which every quoted PCR was checked.
    pub fn verified_banks(&self) -> &[HashAlg] {
        &self.banks
    }

    /// The PCRs whose quoted value the log accounts for exactly (by its events, or by
    /// having none while the PCR is at its reset value). Only events in these PCRs are
    /// evidence.
    pub const fn verified_pcrs(&self) -> &BTreeSet<u8> {
        &self.verified_pcrs
    }

    /// Quoted PCRs the log has no event for although their value is not the reset value
    /// (PCR 10 after IMA, for example): the log says nothing about them.
    pub fn uncovered_pcrs(&self) -> &[(HashAlg, u8)] {
        &self.uncovered
    }

    /// How each event's data relates to its digest (indexed like [`EventLog::events`]).
    pub fn bindings(&self) -> &[DataBinding] {
        &self.bindings
    }

    /// The boot state, drawn only from events in [`VerifiedEventLog::verified_pcrs`] and,
    /// where it reads event data, only from data bound to its verified digest.
    pub fn boot_state(&self) -> BootState {
        BootState::build(
            &self.log,
            &self.verified_pcrs,
            &self.bindings,
            &self.banks,
            Provenance::Verified,
        )
    }
}

/// Parses `log_bytes`, replays it, and checks it against `quote`.
///
/// - The banks compared are those both the log and the quote carry (at least one, else
///   [`Error::EventLogNoQuotedBank`]).
/// - Every quoted PCR in those banks that the log extends must equal its replay exactly,
///   else [`Error::EventLogReplayMismatch`]. A PCR is a hash chain, so a differing final
///   value alone cannot say *which* event differs. The error names the PCR, the bank, the
///   last event extended into it (`last_event`), and — when the quoted value equals the
///   replay after some earlier event `k` — `consistent_through: Some(k)`: the TPM agrees
///   with the log up to `k`, and the log's later events for that PCR were never extended
///   (or were extended after the quote). Otherwise `consistent_through` is `None` and any
///   event up to `last_event` may be the one that differs.
/// - A quoted PCR the log never extends is verified when it holds its reset value, and
///   otherwise reported as uncovered ([`VerifiedEventLog::uncovered_pcrs`]) — never
///   silently trusted.
/// - In verified PCRs, events whose type defines the digest as the hash of the data
///   (separators, Secure Boot variables, EFI actions, the GPT) must have data that hashes to
///   the verified digest ([`Error::EventDataMismatch`]): otherwise the boot state would be
///   read from forged data.
///
/// # Errors
/// Any parse error of [`EventLog::parse`], and the errors above.
pub fn verify_event_log(
    log_bytes: &[u8],
    quote: &VerifiedQuote,
) -> Result<VerifiedEventLog, Error> {
    let log = EventLog::parse(log_bytes)?;
    let replayed = log.replay();
    let log_banks = replayed.banks();
    let mut banks: Vec<HashAlg> = quote
        .pcrs()
        .iter()
        .map(|(bank, _, _)| bank)
        .filter(|b| log_banks.contains(b))
        .collect();
    banks.dedup();
    if banks.is_empty() {
        return Err(Error::EventLogNoQuotedBank);
    }
    let locality = replayed.startup_locality();
    let mut quoted_pcrs = BTreeSet::new();
    let mut uncovered = Vec::new();
    for (bank, pcr, quoted) in quote
        .pcrs()
        .iter()
        .filter(|(bank, _, _)| banks.contains(bank))
    {
        let _new = quoted_pcrs.insert(pcr);
        match replayed.get(bank, pcr) {
            Some(value) => {
                if verify_slices_equal(value.as_bytes(), quoted.as_bytes()).is_err() {
                    return Err(Error::EventLogReplayMismatch {
                        bank,
                        pcr,
                        last_event: replayed.last_event(bank, pcr),
                        consistent_through: consistent_through(&log, bank, pcr, quoted, locality),
                    });
                }
            }
            None => {
                if quoted.as_bytes() != reset_value(bank, pcr, locality).as_slice() {
                    uncovered.push((bank, pcr));
                }
            }
        }
    }
    let verified_pcrs: BTreeSet<u8> = quoted_pcrs
        .into_iter()
        .filter(|pcr| !uncovered.iter().any(|(_, p)| p == pcr))
        .collect();
    let bindings = bindings(&log, &banks);
    for (event, binding) in log.events.iter().zip(&bindings) {
        let verified = u8::try_from(event.pcr).is_ok_and(|pcr| verified_pcrs.contains(&pcr));
        if verified && *binding == DataBinding::Unbound && STRICT.contains(&event.kind) {
            return Err(Error::EventDataMismatch {
                event: event.index,
                event_type: event.kind.0,
            });
        }
    }
    Ok(VerifiedEventLog {
        log,
        replayed,
        banks,
        verified_pcrs,
        uncovered,
        bindings,
    })
}

/// The last event of `pcr` after which the replay equals `quoted`, if any.
fn consistent_through(
    log: &EventLog,
    bank: HashAlg,
    pcr: u8,
    quoted: &Digest,
    locality: Option<u8>,
) -> Option<usize> {
    let mut value = initial_value(bank, pcr, locality);
    let mut found = None;
    for (index, digest) in extended_into(log, bank, pcr) {
        value = extend(bank, &value, digest);
        if value.as_slice() == quoted.as_bytes() {
            found = Some(index);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventlog::TPM_ALG_SM3_256;

    /// A crypto-agile log whose Spec ID declares `banks` (alg, size), with one separator in
    /// each of PCRs 0 and 7 carrying a digest of `fill` bytes per bank.
    fn agile_log(banks: &[(u16, u16)]) -> Vec<u8> {
        let mut spec = b"Spec ID Event03\0".to_vec();
        spec.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 2]);
        spec.extend_from_slice(&u32::try_from(banks.len()).unwrap().to_le_bytes());
        for (alg, size) in banks {
            spec.extend_from_slice(&alg.to_le_bytes());
            spec.extend_from_slice(&size.to_le_bytes());
        }
        spec.push(0);
        let mut log = Vec::new();
        log.extend_from_slice(&0u32.to_le_bytes());
        log.extend_from_slice(&3u32.to_le_bytes());
        log.extend_from_slice(&[0; 20]);
        log.extend_from_slice(&u32::try_from(spec.len()).unwrap().to_le_bytes());
        log.extend_from_slice(&spec);
        for pcr in [0u32, 7] {
            log.extend_from_slice(&pcr.to_le_bytes());
            log.extend_from_slice(&4u32.to_le_bytes());
            log.extend_from_slice(&u32::try_from(banks.len()).unwrap().to_le_bytes());
            for (alg, size) in banks {
                log.extend_from_slice(&alg.to_le_bytes());
                log.extend(std::iter::repeat_n(0x5a, usize::from(*size)));
            }
            log.extend_from_slice(&4u32.to_le_bytes());
            log.extend_from_slice(&[0; 4]);
        }
        log
    }

    #[test]
    fn sm3_bank_is_parsed_but_not_replayed() {
        let log = EventLog::parse(&agile_log(&[(0x000b, 32), (TPM_ALG_SM3_256, 32)])).unwrap();
        assert_eq!(log.banks(), [Bank::Hash(HashAlg::Sha256), Bank::Sm3]);
        assert!(log.events().iter().skip(1).all(|e| e.digests().len() == 2));
        let replay = log.replay();
        assert_eq!(replay.banks(), [HashAlg::Sha256]);
        assert_eq!(replay.unreplayable_banks(), [Bank::Sm3]);
        let expected = extend(HashAlg::Sha256, &[0; 32], &[0x5a; 32]);
        assert_eq!(
            replay.get(HashAlg::Sha256, 7).unwrap().as_bytes(),
            expected.as_slice()
        );
    }

    #[test]
    fn sm3_only_log_replays_nothing() {
        let log = EventLog::parse(&agile_log(&[(TPM_ALG_SM3_256, 32)])).unwrap();
        let replay = log.replay();
        assert!(replay.values().iter().next().is_none());
        assert_eq!(replay.unreplayable_banks(), [Bank::Sm3]);
    }

    #[test]
    fn undeclared_digest_is_rejected() {
        // The Spec ID declares SHA-256 and SHA-384; the events carry SHA-256 and SM3.
        let mut log = agile_log(&[(0x000b, 32), (TPM_ALG_SM3_256, 32)]);
        let at = log
            .windows(4)
            .position(|w| w == [0x12, 0x00, 0x20, 0x00])
            .unwrap();
        log[at] = 0x0c;
        log[at + 2] = 48;
        assert_eq!(
            EventLog::parse(&log),
            Err(Error::EventDigestUndeclared {
                event: 1,
                alg: TPM_ALG_SM3_256
            })
        );
    }

    #[test]
    fn startup_locality_and_reset_values() {
        assert_eq!(initial_value(HashAlg::Sha1, 0, Some(3)).last(), Some(&3));
        assert_eq!(initial_value(HashAlg::Sha1, 1, Some(3)), vec![0; 20]);
        assert_eq!(reset_value(HashAlg::Sha256, 17, None), vec![0xff; 32]);
    }
}
