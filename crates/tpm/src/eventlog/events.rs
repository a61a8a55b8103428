//! Event types, PCR banks, and the typed decoding of event data.
//!
//! Decoding is best-effort and never fails the log: an unknown event type, or a known type
//! whose data does not have the expected shape, is kept as [`EventData::Raw`] with its bytes
//! in [`Event::data`]. Only the log's framing (headers, digest lists, the Spec ID event) is
//! strict; that lives in `parse.rs`.

use std::fmt;

use plinth_core::{Digest, HashAlg};

use super::efi::{
    self, DevicePath, Gpt, Guid, LoadOption, SignatureEntry, guids, parse_authority,
    parse_signature_lists, utf16_to_string,
};
use crate::alg;
use crate::codec::Reader;

/// A TCG event type (`UINT32 eventType`), with the names of the PC Client Platform
/// Firmware Profile.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventType(pub u32);

macro_rules! event_types {
    ($($name:ident = $value:expr),* $(,)?) => {
        impl EventType {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: Self = Self($value);
            )*

            /// The specification's name for this type, if it has one.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    EV_PREBOOT_CERT = 0x0,
    EV_POST_CODE = 0x1,
    EV_UNUSED = 0x2,
    EV_NO_ACTION = 0x3,
    EV_SEPARATOR = 0x4,
    EV_ACTION = 0x5,
    EV_EVENT_TAG = 0x6,
    EV_S_CRTM_CONTENTS = 0x7,
    EV_S_CRTM_VERSION = 0x8,
    EV_CPU_MICROCODE = 0x9,
    EV_PLATFORM_CONFIG_FLAGS = 0xa,
    EV_TABLE_OF_DEVICES = 0xb,
    EV_COMPACT_HASH = 0xc,
    EV_IPL = 0xd,
    EV_IPL_PARTITION_DATA = 0xe,
    EV_NONHOST_CODE = 0xf,
    EV_NONHOST_CONFIG = 0x10,
    EV_NONHOST_INFO = 0x11,
    EV_OMIT_BOOT_DEVICE_EVENTS = 0x12,
    EV_POST_CODE2 = 0x13,
    EV_EFI_EVENT_BASE = 0x8000_0000,
    EV_EFI_VARIABLE_DRIVER_CONFIG = 0x8000_0001,
    EV_EFI_VARIABLE_BOOT = 0x8000_0002,
    EV_EFI_BOOT_SERVICES_APPLICATION = 0x8000_0003,
    EV_EFI_BOOT_SERVICES_DRIVER = 0x8000_0004,
    EV_EFI_RUNTIME_SERVICES_DRIVER = 0x8000_0005,
    EV_EFI_GPT_EVENT = 0x8000_0006,
    EV_EFI_ACTION = 0x8000_0007,
    EV_EFI_PLATFORM_FIRMWARE_BLOB = 0x8000_0008,
    EV_EFI_HANDOFF_TABLES = 0x8000_0009,
    EV_EFI_PLATFORM_FIRMWARE_BLOB2 = 0x8000_000a,
    EV_EFI_HANDOFF_TABLES2 = 0x8000_000b,
    EV_EFI_VARIABLE_BOOT2 = 0x8000_000c,
    EV_EFI_GPT_EVENT2 = 0x8000_000d,
    EV_EFI_HCRTM_EVENT = 0x8000_0010,
    EV_EFI_VARIABLE_AUTHORITY = 0x8000_00e0,
    EV_EFI_SPDM_FIRMWARE_BLOB = 0x8000_00e1,
    EV_EFI_SPDM_FIRMWARE_CONFIG = 0x8000_00e2,
    EV_EFI_SPDM_DEVICE_POLICY = 0x8000_00e3,
    EV_EFI_SPDM_DEVICE_AUTHORITY = 0x8000_00e4,
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#010x}", self.0),
        }
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `TPM_ALG_SM3_256`: parsed, never replayed (the crypto provider has no SM3).
pub const TPM_ALG_SM3_256: u16 = 0x0012;

/// A PCR bank as an event log names it (a `TPM_ALG_ID` and its digest size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Bank {
    /// A hash plinth can compute: the bank is replayed.
    Hash(HashAlg),
    /// SM3-256: parsed, but not replayable here.
    Sm3,
    /// Another algorithm the Spec ID event declares, with its digest size.
    Other {
        /// The `TPM_ALG_ID`.
        alg: u16,
        /// Digest size in bytes, as the Spec ID event declares it.
        size: u16,
    },
}

impl Bank {
    pub(crate) fn from_spec(alg: u16, size: u16) -> Self {
        match (alg::hash_alg("digestSizes", alg), alg) {
            (Ok(hash), _) => Self::Hash(hash),
            (Err(_), TPM_ALG_SM3_256) => Self::Sm3,
            (Err(_), _) => Self::Other { alg, size },
        }
    }

    /// The `TPM_ALG_ID`.
    pub const fn alg_id(self) -> u16 {
        match self {
            Self::Hash(hash) => alg::hash_alg_id(hash),
            Self::Sm3 => TPM_ALG_SM3_256,
            Self::Other { alg, .. } => alg,
        }
    }

    /// Digest size in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Hash(hash) => hash.output_len(),
            Self::Sm3 => 32,
            Self::Other { size, .. } => usize::from(size),
        }
    }

    /// The hash, when plinth can replay this bank.
    pub const fn replayable(self) -> Option<HashAlg> {
        match self {
            Self::Hash(hash) => Some(hash),
            Self::Sm3 | Self::Other { .. } => None,
        }
    }
}

impl fmt::Display for Bank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hash(hash) => write!(f, "{hash}"),
            Self::Sm3 => f.write_str("sm3_256"),
            Self::Other { alg, .. } => write!(f, "alg_{alg:#06x}"),
        }
    }
}

/// One digest of an event, in one bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDigest {
    /// The bank.
    pub bank: Bank,
    /// The digest bytes (of the bank's size).
    pub bytes: Vec<u8>,
}

/// One event of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub(crate) index: usize,
    pub(crate) pcr: u32,
    pub(crate) kind: EventType,
    pub(crate) digests: Vec<EventDigest>,
    pub(crate) data: Vec<u8>,
    pub(crate) decoded: EventData,
}

impl Event {
    /// Position in the log, from 0 (the Spec ID event of a crypto-agile log is event 0,
    /// as tpm2_eventlog counts).
    pub const fn index(&self) -> usize {
        self.index
    }
    /// The PCR the event was extended into (`EV_NO_ACTION` events are not extended).
    pub const fn pcr(&self) -> u32 {
        self.pcr
    }
    /// The event type.
    pub const fn event_type(&self) -> EventType {
        self.kind
    }
    /// The digests, one per bank the log carries.
    pub fn digests(&self) -> &[EventDigest] {
        &self.digests
    }
    /// The digest in `hash`'s bank, if the log carries it.
    pub fn digest(&self, hash: HashAlg) -> Option<Digest> {
        self.digests
            .iter()
            .find(|d| d.bank == Bank::Hash(hash))
            .and_then(|d| Digest::new(hash, &d.bytes).ok())
    }
    /// The event data exactly as logged.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    /// The event data, decoded by type (or [`EventData::Raw`]).
    pub const fn decoded(&self) -> &EventData {
        &self.decoded
    }
    /// Whether replay extends this event into its PCR.
    pub const fn is_extended(&self) -> bool {
        self.kind.0 != EventType::EV_NO_ACTION.0
    }
}

/// The `TCG_EfiSpecIDEvent` that opens a crypto-agile log (or the `Spec ID Event00` of a
/// SHA-1 log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecId {
    /// The signature: `Spec ID Event03` (crypto agile) or `Spec ID Event00` (SHA-1).
    pub signature: String,
    /// `platformClass` (0 = client, 1 = server).
    pub platform_class: u32,
    /// `specVersionMajor`, `specVersionMinor`, `specErrata`.
    pub version: (u8, u8, u8),
    /// Size of a firmware UINTN in bytes (4 or 8).
    pub uintn_size: usize,
    /// The banks every event carries a digest for, in order.
    pub banks: Vec<Bank>,
    /// `vendorInfo`.
    pub vendor_info: Vec<u8>,
}

/// The separator's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Separator {
    /// `0x00000000`: the normal end of pre-OS measurements to this PCR.
    Normal,
    /// `0x00000001`: the firmware met an error measuring into this PCR.
    Error,
    /// Any other 4-byte value.
    Other(u32),
}

/// An SP 800-155 platform identifier / reference-manifest event (`SP800-155 Event2`/`3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceManifest {
    /// `SP800-155 Event2` or `SP800-155 Event3`.
    pub signature: String,
    /// `PlatformManufacturerId` (an IANA private enterprise number).
    pub platform_manufacturer_id: u32,
    /// `ReferenceManifestGuid`.
    pub reference_manifest_guid: Guid,
    /// `PlatformManufacturerStr`.
    pub platform_manufacturer: String,
    /// `PlatformModel`.
    pub platform_model: String,
    /// `PlatformVersion`.
    pub platform_version: String,
    /// `FirmwareManufacturerStr`.
    pub firmware_manufacturer: String,
    /// `FirmwareManufacturerId`.
    pub firmware_manufacturer_id: u32,
    /// `FirmwareVersion`.
    pub firmware_version: String,
    /// Event3 only: `RIMLocatorType` and `RIMLocator`.
    pub rim_locator: Option<(u32, Vec<u8>)>,
    /// Event3 only: `PlatformCertLocatorType` and `PlatformCertLocator`.
    pub platform_cert_locator: Option<(u32, Vec<u8>)>,
}

/// A UEFI variable as measured (`UEFI_VARIABLE_DATA`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// `VariableName` (the vendor GUID).
    pub guid: Guid,
    /// `UnicodeName`.
    pub name: String,
    /// `VariableData` as measured.
    pub data: Vec<u8>,
    /// `VariableData`, decoded by variable.
    pub value: VariableValue,
}

/// What a measured variable holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VariableValue {
    /// A one-byte flag (SecureBoot, DeployedMode, AuditMode, SetupMode, MokSBState).
    Flag(u8),
    /// A signature database (PK, KEK, db, dbx, dbt, dbr, MokList…).
    Signatures(Vec<SignatureEntry>),
    /// One signature (`EV_EFI_VARIABLE_AUTHORITY`: the entry that authorized an image).
    Authority(SignatureEntry),
    /// BootOrder.
    BootOrder(Vec<u16>),
    /// A Boot#### load option.
    LoadOption(LoadOption),
    /// Empty data (the variable does not exist).
    Empty,
    /// Anything else, or data that did not decode.
    Raw,
}

/// A `UEFI_IMAGE_LOAD_EVENT`: an application or driver the firmware loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLoad {
    /// `ImageLocationInMemory`.
    pub location: u64,
    /// `ImageLengthInMemory`.
    pub length: u64,
    /// `ImageLinkTimeAddress`.
    pub link_time_address: u64,
    /// The image's device path.
    pub device_path: DevicePath,
}

/// One `TCG_PCClientTaggedEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedEvent {
    /// `taggedEventID`.
    pub id: u32,
    /// `taggedEventData`.
    pub data: Vec<u8>,
}

/// Event data decoded according to the event type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventData {
    /// `EV_NO_ACTION`: the Spec ID event.
    SpecId(SpecId),
    /// `EV_NO_ACTION`: `StartupLocality` — the locality of TPM2_Startup, which sets the
    /// initial value of PCR 0.
    StartupLocality(u8),
    /// `EV_NO_ACTION`: an SP 800-155 reference-manifest event.
    ReferenceManifest(Box<ReferenceManifest>),
    /// Another `EV_NO_ACTION` event, identified by its 16-byte signature.
    NoAction {
        /// The signature (up to its first NUL).
        signature: String,
    },
    /// Text: `EV_S_CRTM_VERSION`, `EV_EFI_ACTION`, `EV_ACTION`, `EV_IPL`, textual
    /// `EV_POST_CODE`, `EV_OMIT_BOOT_DEVICE_EVENTS`.
    Text {
        /// The text, without a trailing NUL.
        text: String,
        /// Whether it was UTF-16 in the log (systemd-boot, S-CRTM version strings).
        utf16: bool,
    },
    /// `EV_EFI_PLATFORM_FIRMWARE_BLOB(2)`, or an `EV_POST_CODE` blob.
    FirmwareBlob {
        /// `EV_EFI_PLATFORM_FIRMWARE_BLOB2`'s description.
        description: Option<String>,
        /// `BlobBase`.
        base: u64,
        /// `BlobLength`.
        length: u64,
    },
    /// `EV_EFI_VARIABLE_*`.
    Variable(Box<Variable>),
    /// `EV_EFI_BOOT_SERVICES_APPLICATION`, `_DRIVER`, `EV_EFI_RUNTIME_SERVICES_DRIVER`.
    ImageLoad(ImageLoad),
    /// `EV_EFI_GPT_EVENT`.
    Gpt(Gpt),
    /// `EV_SEPARATOR`.
    Separator(Separator),
    /// `EV_EVENT_TAG`.
    Tagged(Vec<TaggedEvent>),
    /// `EV_EFI_HANDOFF_TABLES`: configuration-table GUIDs and addresses.
    HandoffTables(Vec<(Guid, u64)>),
    /// Unknown type, or data that does not have the type's shape: see [`Event::data`].
    Raw,
}

/// `StartupLocality\0`.
const STARTUP_LOCALITY: &[u8; 16] = b"StartupLocality\0";
/// Signature prefix of the SP 800-155 events.
const SP800_155: &[u8] = b"SP800-155 Event";
/// How many handoff tables are decoded.
const MAX_HANDOFF_TABLES: u64 = 256;
/// How many tagged events one `EV_EVENT_TAG` may hold before it is left raw.
const MAX_TAGGED_EVENTS: usize = 64;

/// Decodes `data` for `event_type`. `uintn` is the firmware's UINTN width in bytes.
pub(crate) fn decode(event_type: EventType, data: &[u8], uintn: usize) -> EventData {
    decode_known(event_type, data, uintn).unwrap_or(EventData::Raw)
}

fn decode_known(event_type: EventType, data: &[u8], uintn: usize) -> Option<EventData> {
    let decoded = match event_type {
        EventType::EV_NO_ACTION => decode_no_action(data)?,
        EventType::EV_S_CRTM_VERSION
        | EventType::EV_EFI_ACTION
        | EventType::EV_ACTION
        | EventType::EV_IPL
        | EventType::EV_OMIT_BOOT_DEVICE_EVENTS => decode_text(data)?,
        EventType::EV_POST_CODE | EventType::EV_POST_CODE2 => {
            decode_blob(data).or_else(|| decode_text(data))?
        }
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB => decode_blob(data)?,
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2 => decode_blob2(data)?,
        EventType::EV_EFI_VARIABLE_DRIVER_CONFIG
        | EventType::EV_EFI_VARIABLE_BOOT
        | EventType::EV_EFI_VARIABLE_BOOT2
        | EventType::EV_EFI_VARIABLE_AUTHORITY => {
            EventData::Variable(Box::new(decode_variable(event_type, data)?))
        }
        EventType::EV_EFI_BOOT_SERVICES_APPLICATION
        | EventType::EV_EFI_BOOT_SERVICES_DRIVER
        | EventType::EV_EFI_RUNTIME_SERVICES_DRIVER => decode_image_load(data, uintn)?,
        EventType::EV_EFI_GPT_EVENT => EventData::Gpt(Gpt::parse(data, uintn)?),
        EventType::EV_SEPARATOR => EventData::Separator(match <[u8; 4]>::try_from(data).ok()? {
            [0, 0, 0, 0] => Separator::Normal,
            [1, 0, 0, 0] => Separator::Error,
            other => Separator::Other(u32::from_le_bytes(other)),
        }),
        EventType::EV_EVENT_TAG => decode_tagged(data)?,
        EventType::EV_EFI_HANDOFF_TABLES => decode_handoff_tables(data, uintn)?,
        _ => return None,
    };
    Some(decoded)
}

fn decode_no_action(data: &[u8]) -> Option<EventData> {
    let (signature, rest) = data.split_first_chunk::<16>()?;
    if signature == STARTUP_LOCALITY {
        return match rest {
            [locality] => Some(EventData::StartupLocality(*locality)),
            _ => None,
        };
    }
    if signature.starts_with(SP800_155)
        && let Some(manifest) = decode_reference_manifest(signature, rest)
    {
        return Some(EventData::ReferenceManifest(Box::new(manifest)));
    }
    Some(EventData::NoAction {
        signature: ascii_until_nul(signature),
    })
}

fn decode_reference_manifest(signature: &[u8; 16], rest: &[u8]) -> Option<ReferenceManifest> {
    let mut r = Reader::new(rest, "SP800-155 event");
    let short_string = |r: &mut Reader<'_>| -> Option<String> {
        let len = usize::from(r.u8().ok()?);
        Some(ascii_until_nul(r.take(len).ok()?))
    };
    let platform_manufacturer_id = r.u32_le().ok()?;
    let reference_manifest_guid = Guid::read(&mut r)?;
    let platform_manufacturer = short_string(&mut r)?;
    let platform_model = short_string(&mut r)?;
    let platform_version = short_string(&mut r)?;
    let firmware_manufacturer = short_string(&mut r)?;
    let firmware_manufacturer_id = r.u32_le().ok()?;
    let firmware_version = short_string(&mut r)?;
    let locator = |r: &mut Reader<'_>| -> Option<(u32, Vec<u8>)> {
        let kind = r.u32_le().ok()?;
        let len = usize::try_from(r.u32_le().ok()?).ok()?;
        Some((kind, r.take(len).ok()?.to_vec()))
    };
    let (rim_locator, platform_cert_locator) = if signature == b"SP800-155 Event3" {
        (Some(locator(&mut r)?), Some(locator(&mut r)?))
    } else {
        (None, None)
    };
    Some(ReferenceManifest {
        signature: ascii_until_nul(signature),
        platform_manufacturer_id,
        reference_manifest_guid,
        platform_manufacturer,
        platform_model,
        platform_version,
        firmware_manufacturer,
        firmware_manufacturer_id,
        firmware_version,
        rim_locator,
        platform_cert_locator,
    })
}

/// Bytes up to the first NUL, as text (non-UTF-8 replaced).
pub(crate) fn ascii_until_nul(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned()
}

/// Text as firmware and boot loaders log it: UTF-8/ASCII with an optional trailing NUL, or
/// UTF-16LE (detected by its NUL high bytes). Text with other control characters is not
/// text.
fn decode_text(data: &[u8]) -> Option<EventData> {
    if data.is_empty() {
        return Some(EventData::Text {
            text: String::new(),
            utf16: false,
        });
    }
    // Old systemd-boot logged its UTF-16 command line one byte short (half its NUL).
    let even = if data.len() % 2 == 1 && data.last() == Some(&0) {
        data.get(..data.len().saturating_sub(1)).unwrap_or_default()
    } else {
        data
    };
    let looks_utf16 = even.len() >= 2
        && even.len() % 2 == 0
        && even.get(1) == Some(&0)
        && even
            .chunks_exact(2)
            .all(|pair| pair.get(1) == Some(&0) || pair.first() == Some(&0));
    if looks_utf16 && let Some(text) = utf16_to_string(even) {
        return printable(&text).then_some(EventData::Text { text, utf16: true });
    }
    let trimmed = data.strip_suffix(&[0]).unwrap_or(data);
    let text = std::str::from_utf8(trimmed).ok()?;
    printable(text).then(|| EventData::Text {
        text: text.to_owned(),
        utf16: false,
    })
}

fn printable(text: &str) -> bool {
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
}

fn decode_blob(data: &[u8]) -> Option<EventData> {
    let mut r = Reader::new(data, "UEFI_PLATFORM_FIRMWARE_BLOB");
    let base = r.u64_le().ok()?;
    let length = r.u64_le().ok()?;
    r.finish().ok()?;
    Some(EventData::FirmwareBlob {
        description: None,
        base,
        length,
    })
}

fn decode_blob2(data: &[u8]) -> Option<EventData> {
    let mut r = Reader::new(data, "UEFI_PLATFORM_FIRMWARE_BLOB2");
    let len = usize::from(r.u8().ok()?);
    let description = ascii_until_nul(r.take(len).ok()?);
    let base = r.u64_le().ok()?;
    let length = r.u64_le().ok()?;
    r.finish().ok()?;
    Some(EventData::FirmwareBlob {
        description: Some(description),
        base,
        length,
    })
}

fn decode_variable(event_type: EventType, data: &[u8]) -> Option<Variable> {
    let mut r = Reader::new(data, "UEFI_VARIABLE_DATA");
    let guid = Guid::read(&mut r)?;
    let name_len = usize::try_from(r.u64_le().ok()?).ok()?;
    let data_len = usize::try_from(r.u64_le().ok()?).ok()?;
    let name = utf16_to_string(r.take(name_len.checked_mul(2)?).ok()?)?;
    let value_bytes = r.take(data_len).ok()?;
    // Older shim and GCE firmware log six stray bytes after the variable: ignored.
    let value = decode_variable_value(event_type, guid, &name, value_bytes);
    Some(Variable {
        guid,
        name,
        data: value_bytes.to_vec(),
        value,
    })
}

fn decode_variable_value(
    event_type: EventType,
    guid: Guid,
    name: &str,
    data: &[u8],
) -> VariableValue {
    if event_type == EventType::EV_EFI_VARIABLE_AUTHORITY {
        return parse_authority(data).map_or(VariableValue::Raw, VariableValue::Authority);
    }
    if data.is_empty() {
        return VariableValue::Empty;
    }
    let is_database = matches!(
        (guid, name),
        (
            guids::EFI_GLOBAL_VARIABLE,
            "PK" | "KEK" | "PKDefault" | "KEKDefault"
        ) | (
            guids::EFI_IMAGE_SECURITY_DATABASE,
            "db" | "dbx" | "dbt" | "dbr"
        ) | (
            guids::SHIM_LOCK,
            "MokList" | "MokListX" | "MokListRT" | "MokListXRT" | "MokListTrusted"
        )
    );
    if is_database {
        return parse_signature_lists(data).map_or(VariableValue::Raw, VariableValue::Signatures);
    }
    match (guid, name, data) {
        (
            guids::EFI_GLOBAL_VARIABLE,
            "SecureBoot" | "DeployedMode" | "AuditMode" | "SetupMode",
            [flag],
        )
        | (guids::SHIM_LOCK, "MokSBState" | "MokListTrusted", [flag]) => VariableValue::Flag(*flag),
        (guids::EFI_GLOBAL_VARIABLE, "BootOrder", _) if data.len().is_multiple_of(2) => {
            VariableValue::BootOrder(
                data.chunks_exact(2)
                    .filter_map(|pair| Some(u16::from_le_bytes([*pair.first()?, *pair.get(1)?])))
                    .collect(),
            )
        }
        (guids::EFI_GLOBAL_VARIABLE, _, _) if is_boot_option(name) => {
            LoadOption::parse(data).map_or(VariableValue::Raw, VariableValue::LoadOption)
        }
        _ => VariableValue::Raw,
    }
}

/// `Boot####` with four hex digits.
fn is_boot_option(name: &str) -> bool {
    name.len() == 8
        && name.starts_with("Boot")
        && name
            .get(4..)
            .is_some_and(|digits| digits.chars().all(|c| c.is_ascii_hexdigit()))
}

fn decode_image_load(data: &[u8], uintn: usize) -> Option<EventData> {
    let mut r = Reader::new(data, "UEFI_IMAGE_LOAD_EVENT");
    let location = r.u64_le().ok()?;
    let length = efi::read_uintn(&mut r, uintn)?;
    let link_time_address = efi::read_uintn(&mut r, uintn)?;
    let path_len = usize::try_from(efi::read_uintn(&mut r, uintn)?).ok()?;
    let device_path = DevicePath::parse(r.take(path_len).ok()?);
    // Some firmware logs a few stray bytes after the device path: they are ignored.
    Some(EventData::ImageLoad(ImageLoad {
        location,
        length,
        link_time_address,
        device_path,
    }))
}

fn decode_tagged(data: &[u8]) -> Option<EventData> {
    let mut r = Reader::new(data, "TCG_PCClientTaggedEvent");
    let mut tagged = Vec::new();
    while r.remaining() > 0 {
        if tagged.len() >= MAX_TAGGED_EVENTS {
            return None;
        }
        let id = r.u32_le().ok()?;
        let len = usize::try_from(r.u32_le().ok()?).ok()?;
        tagged.push(TaggedEvent {
            id,
            data: r.take(len).ok()?.to_vec(),
        });
    }
    Some(EventData::Tagged(tagged))
}

fn decode_handoff_tables(data: &[u8], uintn: usize) -> Option<EventData> {
    let mut r = Reader::new(data, "UEFI_HANDOFF_TABLE_POINTERS");
    let count = efi::read_uintn(&mut r, uintn)?;
    if count > MAX_HANDOFF_TABLES {
        return None;
    }
    let mut tables = Vec::new();
    for _ in 0..count {
        let guid = Guid::read(&mut r)?;
        tables.push((guid, r.u64_le().ok()?));
    }
    r.finish().ok()?;
    Some(EventData::HandoffTables(tables))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_names() {
        assert_eq!(
            EventType(0x8000_0003).to_string(),
            "EV_EFI_BOOT_SERVICES_APPLICATION"
        );
        assert_eq!(EventType(0x1234).to_string(), "0x00001234");
    }

    #[test]
    fn text_detection() {
        assert_eq!(
            decode_text(b"Exit Boot Services Invocation"),
            Some(EventData::Text {
                text: "Exit Boot Services Invocation".into(),
                utf16: false
            })
        );
        assert_eq!(
            decode_text(b"a\0b\0\0\0"),
            Some(EventData::Text {
                text: "ab".into(),
                utf16: true
            })
        );
        assert_eq!(decode_text(&[0x80, 0x01, 0x02]), None);
    }

    #[test]
    fn separators() {
        assert_eq!(
            decode(EventType::EV_SEPARATOR, &[0; 4], 8),
            EventData::Separator(Separator::Normal)
        );
        assert_eq!(
            decode(EventType::EV_SEPARATOR, &[1, 0, 0, 0], 8),
            EventData::Separator(Separator::Error)
        );
        assert_eq!(decode(EventType::EV_SEPARATOR, &[0; 3], 8), EventData::Raw);
    }
}
