//! The log's framing: the legacy SHA-1 format (`TCG_PCR_EVENT`) and the crypto-agile
//! format (`TCG_PCR_EVENT2` after a `Spec ID Event03`), both little-endian.
//!
//! This part is strict: a truncated event, an event over budget, a digest list that does not
//! match the Spec ID event, or an impossible PCR index fails the whole log with its own
//! error, because everything after such a fault would be read at the wrong offsets.

use plinth_core::HashAlg;

use super::events::{self, Bank, Event, EventData, EventDigest, EventType, SpecId};
use crate::Error;
use crate::codec::Reader;

/// Work limits for parsing one log. [`Budget::default`] fits every real log seen (the
/// largest has a few hundred events; the largest event, a dbx, tens of kilobytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most events a log may hold.
    pub max_events: usize,
    /// Largest event data, in bytes.
    pub max_event_size: usize,
    /// Largest log, in bytes.
    pub max_log_size: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max_events: 16_384,
            max_event_size: 1 << 20,
            max_log_size: 16 << 20,
        }
    }
}

/// Which of the two formats a log is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// `TCG_PCR_EVENT` throughout: one SHA-1 digest per event.
    Sha1,
    /// A `TCG_PCR_EVENT` carrying the Spec ID event, then `TCG_PCR_EVENT2`s with a digest
    /// for every bank the Spec ID event declares.
    CryptoAgile,
}

/// A parsed event log. Nothing about it is trusted: [`crate::verify_event_log`] checks it
/// against a verified quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    pub(crate) format: LogFormat,
    pub(crate) banks: Vec<Bank>,
    pub(crate) events: Vec<Event>,
}

/// Highest PCR index of a PC Client TPM.
pub(crate) const MAX_PCR: u32 = 23;
/// Most banks a Spec ID event may declare.
const MAX_BANKS: u32 = 8;
/// Largest digest a bank of unknown algorithm may declare.
const MAX_DIGEST_SIZE: u16 = 64;
const SPEC_ID_03: &[u8; 16] = b"Spec ID Event03\0";
const SPEC_ID_00: &[u8; 16] = b"Spec ID Event00\0";
/// `TCG_PCR_EVENT` header before the data: PCR, type, SHA-1 digest, data size.
const LEGACY_HEADER_LEN: usize = 32;

impl EventLog {
    /// Parses a log with the default [`Budget`].
    ///
    /// # Errors
    /// As [`EventLog::parse_with_budget`].
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        Self::parse_with_budget(bytes, Budget::default())
    }

    /// Parses a log in either format.
    ///
    /// # Errors
    /// [`Error::TooLarge`] (the whole log), [`Error::TooManyEvents`],
    /// [`Error::EventTooLarge`], [`Error::EventLogTruncated`], [`Error::InvalidSpecId`],
    /// [`Error::EventDigestMissing`], [`Error::EventDigestUndeclared`],
    /// [`Error::EventDigestDuplicate`], [`Error::EventPcrOutOfRange`].
    pub fn parse_with_budget(bytes: &[u8], budget: Budget) -> Result<Self, Error> {
        if bytes.len() > budget.max_log_size {
            return Err(Error::TooLarge {
                field: "event log",
                len: bytes.len(),
                max: budget.max_log_size,
            });
        }
        let mut cursor = Cursor {
            r: Reader::new(bytes, "event log"),
            len: bytes.len(),
            budget,
        };
        let first = cursor.legacy_event(0)?;
        let spec_id =
            if first.event_type == EventType::EV_NO_ACTION && first.data.starts_with(SPEC_ID_03) {
                if first.pcr != 0 || first.digest.iter().any(|&b| b != 0) {
                    return Err(Error::InvalidSpecId("not a zero-digest event in PCR 0"));
                }
                Some(parse_spec_id(first.data)?)
            } else {
                None
            };
        let mut events = Vec::new();
        let Some(spec) = spec_id else {
            events.push(first.into_event(0)?);
            while cursor.r.remaining() > 0 {
                let index = cursor.next_index(events.len())?;
                events.push(cursor.legacy_event(index)?.into_event(index)?);
            }
            return Ok(Self {
                format: LogFormat::Sha1,
                banks: vec![Bank::Hash(HashAlg::Sha1)],
                events,
            });
        };
        let banks = spec.banks.clone();
        let uintn = spec.uintn_size;
        events.push(Event {
            index: 0,
            pcr: 0,
            kind: first.event_type,
            digests: vec![EventDigest {
                bank: Bank::Hash(HashAlg::Sha1),
                bytes: first.digest.to_vec(),
            }],
            data: first.data.to_vec(),
            decoded: EventData::SpecId(spec),
        });
        while cursor.r.remaining() > 0 {
            let index = cursor.next_index(events.len())?;
            events.push(cursor.agile_event(index, &banks, uintn)?);
        }
        Ok(Self {
            format: LogFormat::CryptoAgile,
            banks,
            events,
        })
    }

    /// The log's format.
    pub const fn format(&self) -> LogFormat {
        self.format
    }

    /// The banks every event carries a digest for.
    pub fn banks(&self) -> &[Bank] {
        &self.banks
    }

    /// Every event, in log order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The Spec ID event's contents (crypto-agile logs, and SHA-1 logs that open with
    /// `Spec ID Event00`).
    pub fn spec_id(&self) -> Option<&SpecId> {
        self.events.first().and_then(|event| match &event.decoded {
            EventData::SpecId(spec) => Some(spec),
            _ => None,
        })
    }

    /// The locality of TPM2_Startup, from the `StartupLocality` event, if the log has one.
    pub fn startup_locality(&self) -> Option<u8> {
        self.events.iter().find_map(|event| match event.decoded {
            EventData::StartupLocality(locality) if event.pcr == 0 => Some(locality),
            _ => None,
        })
    }
}

struct Cursor<'a> {
    r: Reader<'a>,
    len: usize,
    budget: Budget,
}

struct LegacyEvent<'a> {
    pcr: u32,
    event_type: EventType,
    digest: &'a [u8],
    data: &'a [u8],
}

impl LegacyEvent<'_> {
    fn into_event(self, index: usize) -> Result<Event, Error> {
        check_pcr(index, self.pcr, self.event_type)?;
        let decoded =
            if self.data.starts_with(SPEC_ID_00) && self.event_type == EventType::EV_NO_ACTION {
                parse_spec_id_00(self.data).map_or(EventData::Raw, EventData::SpecId)
            } else {
                events::decode(self.event_type, self.data, 8)
            };
        Ok(Event {
            index,
            pcr: self.pcr,
            kind: self.event_type,
            digests: vec![EventDigest {
                bank: Bank::Hash(HashAlg::Sha1),
                bytes: self.digest.to_vec(),
            }],
            data: self.data.to_vec(),
            decoded,
        })
    }
}

impl<'a> Cursor<'a> {
    const fn offset(&self) -> usize {
        self.len.saturating_sub(self.r.remaining())
    }

    fn next_index(&self, count: usize) -> Result<usize, Error> {
        if count >= self.budget.max_events {
            return Err(Error::TooManyEvents {
                max: self.budget.max_events,
            });
        }
        Ok(count)
    }

    /// Runs one read of event `index`, turning a short read into an error naming the event.
    fn read<T>(
        &mut self,
        index: usize,
        start: usize,
        f: impl FnOnce(&mut Reader<'a>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        f(&mut self.r).map_err(|error| match error {
            Error::Truncated { .. } => Error::EventLogTruncated {
                event: index,
                offset: start,
            },
            other => other,
        })
    }

    fn event_data(&mut self, index: usize, start: usize) -> Result<&'a [u8], Error> {
        let size = self.read(index, start, Reader::u32_le)?;
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size > self.budget.max_event_size {
            return Err(Error::EventTooLarge {
                event: index,
                size,
                max: self.budget.max_event_size,
            });
        }
        self.read(index, start, |r| r.take(size))
    }

    fn legacy_event(&mut self, index: usize) -> Result<LegacyEvent<'a>, Error> {
        let start = self.offset();
        if self.r.remaining() < LEGACY_HEADER_LEN {
            return Err(Error::EventLogTruncated {
                event: index,
                offset: start,
            });
        }
        let pcr = self.read(index, start, Reader::u32_le)?;
        let event_type = EventType(self.read(index, start, Reader::u32_le)?);
        let digest = self.read(index, start, |r| r.take(20))?;
        let data = self.event_data(index, start)?;
        Ok(LegacyEvent {
            pcr,
            event_type,
            digest,
            data,
        })
    }

    fn agile_event(&mut self, index: usize, banks: &[Bank], uintn: usize) -> Result<Event, Error> {
        let start = self.offset();
        let pcr = self.read(index, start, Reader::u32_le)?;
        let event_type = EventType(self.read(index, start, Reader::u32_le)?);
        check_pcr(index, pcr, event_type)?;
        let count = self.read(index, start, Reader::u32_le)?;
        let mut digests: Vec<EventDigest> = Vec::with_capacity(banks.len());
        for _ in 0..count {
            let alg = self.read(index, start, Reader::u16_le)?;
            let bank = banks
                .iter()
                .copied()
                .find(|bank| bank.alg_id() == alg)
                .ok_or(Error::EventDigestUndeclared { event: index, alg })?;
            if digests.iter().any(|d| d.bank == bank) {
                return Err(Error::EventDigestDuplicate { event: index, alg });
            }
            let bytes = self.read(index, start, |r| r.take(bank.digest_len()))?;
            digests.push(EventDigest {
                bank,
                bytes: bytes.to_vec(),
            });
        }
        if let Some(missing) = banks
            .iter()
            .find(|bank| !digests.iter().any(|d| d.bank == **bank))
        {
            return Err(Error::EventDigestMissing {
                event: index,
                alg: missing.alg_id(),
            });
        }
        let data = self.event_data(index, start)?;
        Ok(Event {
            index,
            pcr,
            kind: event_type,
            digests,
            data: data.to_vec(),
            decoded: events::decode(event_type, data, uintn),
        })
    }
}

/// Extended events must name a PCR the TPM has; `EV_NO_ACTION` events are not extended and
/// may carry any index.
const fn check_pcr(index: usize, pcr: u32, event_type: EventType) -> Result<(), Error> {
    if pcr > MAX_PCR && event_type.0 != EventType::EV_NO_ACTION.0 {
        return Err(Error::EventPcrOutOfRange { event: index, pcr });
    }
    Ok(())
}

fn parse_spec_id(data: &[u8]) -> Result<SpecId, Error> {
    let invalid = |_| Error::InvalidSpecId("truncated");
    let mut r = Reader::new(data, "TCG_EfiSpecIDEvent");
    let signature = r.take(16).map_err(invalid)?;
    let platform_class = r.u32_le().map_err(invalid)?;
    let minor = r.u8().map_err(invalid)?;
    let major = r.u8().map_err(invalid)?;
    let errata = r.u8().map_err(invalid)?;
    let uintn_size = match r.u8().map_err(invalid)? {
        1 => 4,
        2 => 8,
        _ => return Err(Error::InvalidSpecId("uintnSize is neither 1 nor 2")),
    };
    let count = r.u32_le().map_err(invalid)?;
    if count == 0 || count > MAX_BANKS {
        return Err(Error::InvalidSpecId(
            "numberOfAlgorithms is 0 or more than 8",
        ));
    }
    let mut banks: Vec<Bank> = Vec::new();
    for _ in 0..count {
        let alg = r.u16_le().map_err(invalid)?;
        let size = r.u16_le().map_err(invalid)?;
        let bank = Bank::from_spec(alg, size);
        if usize::from(size) != bank.digest_len() || size == 0 || size > MAX_DIGEST_SIZE {
            return Err(Error::InvalidSpecId(
                "digestSize does not match its algorithm",
            ));
        }
        if banks.iter().any(|b| b.alg_id() == alg) {
            return Err(Error::InvalidSpecId("an algorithm is declared twice"));
        }
        banks.push(bank);
    }
    let vendor_len = usize::from(r.u8().map_err(invalid)?);
    let vendor_info = r.take(vendor_len).map_err(invalid)?.to_vec();
    r.finish()
        .map_err(|_| Error::InvalidSpecId("trailing bytes"))?;
    Ok(SpecId {
        signature: events::ascii_until_nul(signature),
        platform_class,
        version: (major, minor, errata),
        uintn_size,
        banks,
        vendor_info,
    })
}

/// The TPM 1.2-era `TCG_EfiSpecIdEventStruct` (`Spec ID Event00`): no algorithm list.
fn parse_spec_id_00(data: &[u8]) -> Option<SpecId> {
    let mut r = Reader::new(data, "TCG_EfiSpecIdEventStruct");
    let signature = r.take(16).ok()?;
    let platform_class = r.u32_le().ok()?;
    let minor = r.u8().ok()?;
    let major = r.u8().ok()?;
    let errata = r.u8().ok()?;
    let uintn_size = if r.u8().ok()? == 1 { 4 } else { 8 };
    let vendor_len = usize::from(r.u8().ok()?);
    let vendor_info = r.take(vendor_len).ok()?.to_vec();
    Some(SpecId {
        signature: events::ascii_until_nul(signature),
        platform_class,
        version: (major, minor, errata),
        uintn_size,
        banks: vec![Bank::Hash(HashAlg::Sha1)],
        vendor_info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(pcr: u32, event_type: u32, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&pcr.to_le_bytes());
        out.extend_from_slice(&event_type.to_le_bytes());
        out.extend_from_slice(&[0; 20]);
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn empty_log_is_truncated() {
        assert_eq!(
            EventLog::parse(&[]),
            Err(Error::EventLogTruncated {
                event: 0,
                offset: 0
            })
        );
    }

    #[test]
    fn legacy_pcr_out_of_range() {
        let log = legacy(24, 4, &[0; 4]);
        assert_eq!(
            EventLog::parse(&log),
            Err(Error::EventPcrOutOfRange { event: 0, pcr: 24 })
        );
    }

    #[test]
    fn spec_id_with_no_banks_is_invalid() {
        let mut spec = SPEC_ID_03.to_vec();
        spec.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 2]);
        spec.extend_from_slice(&0u32.to_le_bytes());
        spec.push(0);
        let log = legacy(0, 3, &spec);
        assert!(matches!(
            EventLog::parse(&log),
            Err(Error::InvalidSpecId(_))
        ));
    }

    #[test]
    fn too_many_events() {
        let mut log = legacy(0, 4, &[0; 4]);
        log.extend(legacy(1, 4, &[0; 4]));
        let budget = Budget {
            max_events: 1,
            ..Budget::default()
        };
        assert_eq!(
            EventLog::parse_with_budget(&log, budget),
            Err(Error::TooManyEvents { max: 1 })
        );
    }
}
