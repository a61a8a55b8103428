//! What a log says about the boot: Secure Boot, its databases, the boot applications, the
//! kernel command line, separators and ExitBootServices.
//!
//! Every fact names where it comes from and is `None` when it cannot be determined: when its
//! PCR is not verified (for a [`VerifiedEventLog`](super::VerifiedEventLog)), or when the
//! event it would be read from is absent, or when that event's data does not hash to its
//! digest ([`DataBinding::Unbound`]). Absence is never reported as a negative fact unless
//! the PCR that would hold the event is verified.

use std::collections::BTreeSet;

use plinth_core::{Digest, HashAlg};
use plinth_crypto::digest;

use super::efi::{CertificateInfo, SignatureEntry, SignatureValue, guids};
use super::events::{Event, EventData, EventType, Separator, VariableValue};
use super::parse::EventLog;
use super::replay::{DataBinding, GRUB_LABELS};
use crate::Error;

/// Where a [`BootState`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Provenance {
    /// From a log whose replay equals a verified quote.
    Verified,
    /// From a log file alone: nothing is proven.
    Unverified,
}

/// The state of the separator of one of PCRs 0–7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeparatorState {
    /// A normal separator (`0x00000000`).
    Present,
    /// An error separator (`0x00000001`): the firmware reports a measurement error.
    Error,
    /// A separator with another value.
    Other(u32),
    /// The PCR is known and has no separator.
    Missing,
    /// The PCR is not verified (or its separator's data is not bound to its digest).
    Unknown,
}

/// An application the firmware loaded from boot services (PCR 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootApplication {
    /// The event's index in the log.
    pub event: usize,
    /// Its Authenticode digests, in the banks the state is drawn from. These are measured.
    pub digests: Vec<Digest>,
    /// The device path, as logged. The digest does not cover it: it is a description.
    pub device_path: String,
    /// The device path's last file node (`\EFI\ubuntu\shimx64.efi`), as logged.
    pub file: Option<String>,
}

/// A Secure Boot authority: the signature-database entry (or shim's built-in certificate)
/// that authorized a loaded image (PCR 7, `EV_EFI_VARIABLE_AUTHORITY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// The event's index in the log.
    pub event: usize,
    /// The variable named in the event (`db`, `MokListRT`, `Shim`, `SbatLevel`…).
    pub variable: String,
    /// The certificate, when the data is one.
    pub certificate: Option<CertificateInfo>,
    /// The data as measured, when it is not a certificate (SbatLevel text, flags).
    pub data: Vec<u8>,
}

/// Which boot loader ran, and how plinth knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootloader {
    /// `grub`, `systemd-boot`, or the loaded file's name.
    pub name: String,
    /// Whether shim ran first.
    pub shim: bool,
    /// `measured`: from event data bound to its digest (GRUB's command strings, shim's
    /// MOK measurements). `device-path`: only from the logged file names, which no digest
    /// covers.
    pub basis: &'static str,
}

/// The boot state a log describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootState {
    provenance: Provenance,
    pcrs: BTreeSet<u8>,
    secure_boot: Option<bool>,
    deployed_mode: Option<bool>,
    setup_mode: Option<bool>,
    pk: Option<Vec<SignatureEntry>>,
    kek: Option<Vec<SignatureEntry>>,
    db: Option<Vec<SignatureEntry>>,
    dbx: Option<Vec<SignatureEntry>>,
    authorities: Option<Vec<Authority>>,
    boot_applications: Option<Vec<BootApplication>>,
    kernel_cmdline: Option<String>,
    bootloader: Option<Bootloader>,
    separators: [SeparatorState; 8],
    exit_boot_services: Option<bool>,
    crtm_version: Option<String>,
    unbound_events: Vec<usize>,
}

/// Proof that a measured dbx holds every entry of a reference set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbxCurrent {
    entries: usize,
}

impl DbxCurrent {
    /// How many entries the measured dbx holds.
    pub const fn entries(&self) -> usize {
        self.entries
    }
}

/// PCRs for Secure Boot policy, boot applications, the boot loader's measurements, and
/// ExitBootServices.
const PCR_SECURE_BOOT: u8 = 7;
const PCR_BOOT_APPS: u8 = 4;
const PCR_EBS: u8 = 5;
const PCR_CRTM: u8 = 0;
const PCR_SHIM: u8 = 14;
/// GRUB (8: commands, 9: files), systemd-boot before v251 (8) and systemd-stub (12).
const PCRS_LOADER: [u8; 3] = [8, 9, 12];
const EXIT_BOOT_SERVICES: &str = "Exit Boot Services Invocation";

struct Source<'a> {
    log: &'a EventLog,
    pcrs: &'a BTreeSet<u8>,
    bindings: &'a [DataBinding],
}

impl<'a> Source<'a> {
    fn known(&self, pcr: u8) -> bool {
        self.pcrs.contains(&pcr)
    }

    /// Events in verified `pcr`.
    fn events(&self, pcr: u8) -> impl Iterator<Item = &'a Event> + '_ {
        self.log
            .events
            .iter()
            .filter(move |e| e.is_extended() && e.pcr == u32::from(pcr) && self.known(pcr))
    }

    fn bound(&self, event: &Event) -> bool {
        self.bindings.get(event.index) == Some(&DataBinding::Bound)
    }

    /// Events in verified `pcr` whose data is bound to their digest.
    fn bound_events(&self, pcr: u8) -> impl Iterator<Item = &'a Event> + '_ {
        self.events(pcr).filter(|e| self.bound(e))
    }

    /// The last bound `EV_EFI_VARIABLE_DRIVER_CONFIG` value of a Secure Boot variable.
    fn variable(&self, guid: super::efi::Guid, name: &str) -> Option<&'a VariableValue> {
        self.bound_events(PCR_SECURE_BOOT)
            .filter(|e| e.kind == EventType::EV_EFI_VARIABLE_DRIVER_CONFIG)
            .filter_map(|e| match &e.decoded {
                EventData::Variable(v) if v.guid == guid && v.name == name => Some(&v.value),
                _ => None,
            })
            .last()
    }

    fn flag(&self, guid: super::efi::Guid, name: &str) -> Option<bool> {
        match self.variable(guid, name)? {
            VariableValue::Flag(value) => Some(*value == 1),
            VariableValue::Empty => Some(false),
            _ => None,
        }
    }

    fn database(&self, guid: super::efi::Guid, name: &str) -> Option<Vec<SignatureEntry>> {
        match self.variable(guid, name)? {
            VariableValue::Signatures(entries) => Some(entries.clone()),
            VariableValue::Empty => Some(Vec::new()),
            _ => None,
        }
    }
}

fn text(event: &Event) -> Option<(&str, bool)> {
    match &event.decoded {
        EventData::Text { text, utf16 } => Some((text.as_str(), *utf16)),
        _ => None,
    }
}

impl BootState {
    pub(crate) fn build(
        log: &EventLog,
        pcrs: &BTreeSet<u8>,
        bindings: &[DataBinding],
        banks: &[HashAlg],
        provenance: Provenance,
    ) -> Self {
        let source = Source {
            log,
            pcrs,
            bindings,
        };
        let g = guids::EFI_GLOBAL_VARIABLE;
        let sec = guids::EFI_IMAGE_SECURITY_DATABASE;
        let boot_applications = source
            .known(PCR_BOOT_APPS)
            .then(|| boot_applications(&source, banks));
        let (kernel_cmdline, measured_loader) = loader_measurements(&source);
        let shim_measured = source
            .bound_events(PCR_SHIM)
            .filter_map(text)
            .any(|(text, _)| text.starts_with("MokList") || text == "MokSBState");
        let bootloader = bootloader(measured_loader, shim_measured, boot_applications.as_deref());
        let unbound_events = log
            .events
            .iter()
            .filter(|e| {
                u8::try_from(e.pcr).is_ok_and(|pcr| pcrs.contains(&pcr))
                    && bindings.get(e.index) == Some(&DataBinding::Unbound)
                    && e.is_extended()
            })
            .map(|e| e.index)
            .collect();
        Self {
            provenance,
            pcrs: pcrs.clone(),
            secure_boot: source.flag(g, "SecureBoot"),
            deployed_mode: source.flag(g, "DeployedMode"),
            setup_mode: source.flag(g, "SetupMode"),
            pk: source.database(g, "PK"),
            kek: source.database(g, "KEK"),
            db: source.database(sec, "db"),
            dbx: source.database(sec, "dbx"),
            authorities: source.known(PCR_SECURE_BOOT).then(|| authorities(&source)),
            boot_applications,
            kernel_cmdline,
            bootloader,
            separators: separators(&source),
            exit_boot_services: source.known(PCR_EBS).then(|| {
                source
                    .bound_events(PCR_EBS)
                    .filter(|e| e.kind == EventType::EV_EFI_ACTION)
                    .filter_map(text)
                    .any(|(text, _)| text == EXIT_BOOT_SERVICES)
            }),
            crtm_version: source
                .bound_events(PCR_CRTM)
                .filter(|e| e.kind == EventType::EV_S_CRTM_VERSION)
                .find_map(text)
                .map(|(text, _)| text.to_owned()),
            unbound_events,
        }
    }

    /// Whether this state is drawn from a verified log.
    pub const fn provenance(&self) -> Provenance {
        self.provenance
    }
    /// The PCRs the facts are drawn from.
    pub const fn pcrs(&self) -> &BTreeSet<u8> {
        &self.pcrs
    }
    /// The SecureBoot variable as measured into PCR 7 (absent variable = off).
    pub const fn secure_boot(&self) -> Option<bool> {
        self.secure_boot
    }
    /// The DeployedMode variable, when the firmware measured it.
    pub const fn deployed_mode(&self) -> Option<bool> {
        self.deployed_mode
    }
    /// The SetupMode variable, when the firmware measured it.
    pub const fn setup_mode(&self) -> Option<bool> {
        self.setup_mode
    }
    /// PK as measured.
    pub fn pk(&self) -> Option<&[SignatureEntry]> {
        self.pk.as_deref()
    }
    /// KEK as measured.
    pub fn kek(&self) -> Option<&[SignatureEntry]> {
        self.kek.as_deref()
    }
    /// db as measured.
    pub fn db(&self) -> Option<&[SignatureEntry]> {
        self.db.as_deref()
    }
    /// dbx as measured.
    pub fn dbx(&self) -> Option<&[SignatureEntry]> {
        self.dbx.as_deref()
    }
    /// The Secure Boot authorities that verified loaded images, in order.
    pub fn authorities(&self) -> Option<&[Authority]> {
        self.authorities.as_deref()
    }
    /// The boot-services applications, in load order (shim, boot loader, kernel or UKI…).
    pub fn boot_applications(&self) -> Option<&[BootApplication]> {
        self.boot_applications.as_deref()
    }
    /// The kernel command line the boot loader measured (the last one).
    pub fn kernel_cmdline(&self) -> Option<&str> {
        self.kernel_cmdline.as_deref()
    }
    /// The boot loader.
    pub const fn bootloader(&self) -> Option<&Bootloader> {
        self.bootloader.as_ref()
    }
    /// The separator state of PCRs 0–7.
    pub const fn separators(&self) -> &[SeparatorState; 8] {
        &self.separators
    }
    /// Whether ExitBootServices was reached (`Exit Boot Services Invocation` in PCR 5).
    pub const fn exit_boot_services(&self) -> Option<bool> {
        self.exit_boot_services
    }
    /// The S-CRTM version string.
    pub fn crtm_version(&self) -> Option<&str> {
        self.crtm_version.as_deref()
    }
    /// Events in the state's PCRs whose data should hash to their digest but does not:
    /// their data was ignored.
    pub fn unbound_events(&self) -> &[usize] {
        &self.unbound_events
    }

    /// Checks that the measured dbx holds every entry of `reference` — the hashes of a
    /// published dbx update: image hashes (`EFI_CERT_SHA256` entries) or certificate
    /// fingerprints (SHA-256 of the DER of `EFI_CERT_X509` entries).
    ///
    /// # Errors
    /// [`Error::DbxNotMeasured`] when no dbx is known; [`Error::DbxOutdated`] with the
    /// number of reference entries it lacks.
    pub fn check_dbx(&self, reference: &[Digest]) -> Result<DbxCurrent, Error> {
        let dbx = self.dbx.as_ref().ok_or(Error::DbxNotMeasured)?;
        let present: BTreeSet<Vec<u8>> = dbx
            .iter()
            .filter_map(|entry| match &entry.value {
                SignatureValue::Hash { hash, .. } => Some(hash.clone()),
                SignatureValue::Certificate(cert) => {
                    Some(digest(HashAlg::Sha256, cert.der()).as_bytes().to_vec())
                }
                _ => None,
            })
            .collect();
        let missing = reference
            .iter()
            .filter(|r| !present.contains(r.as_bytes()))
            .count();
        if missing > 0 {
            return Err(Error::DbxOutdated {
                missing,
                reference: reference.len(),
            });
        }
        Ok(DbxCurrent { entries: dbx.len() })
    }
}

fn boot_applications(source: &Source<'_>, banks: &[HashAlg]) -> Vec<BootApplication> {
    source
        .events(PCR_BOOT_APPS)
        .filter(|e| e.kind == EventType::EV_EFI_BOOT_SERVICES_APPLICATION)
        .map(|e| {
            let (device_path, file) = match &e.decoded {
                EventData::ImageLoad(image) => (
                    image.device_path.to_string(),
                    image.device_path.file().map(str::to_owned),
                ),
                _ => (String::new(), None),
            };
            BootApplication {
                event: e.index,
                digests: banks.iter().filter_map(|bank| e.digest(*bank)).collect(),
                device_path,
                file,
            }
        })
        .collect()
}

fn authorities(source: &Source<'_>) -> Vec<Authority> {
    source
        .bound_events(PCR_SECURE_BOOT)
        .filter(|e| e.kind == EventType::EV_EFI_VARIABLE_AUTHORITY)
        .filter_map(|e| match &e.decoded {
            EventData::Variable(v) => Some(Authority {
                event: e.index,
                variable: v.name.clone(),
                certificate: match &v.value {
                    VariableValue::Authority(SignatureEntry {
                        value: SignatureValue::Certificate(cert),
                        ..
                    }) => Some(cert.clone()),
                    _ => None,
                },
                data: match &v.value {
                    VariableValue::Authority(_) => Vec::new(),
                    _ => v.data.clone(),
                },
            }),
            _ => None,
        })
        .collect()
}

/// The kernel command line and the boot loader named by measured strings.
///
/// GRUB: GRUB's labels are not covered by the digest (see `GRUB_LABELS`), so the command
/// line is taken from what is: the arguments of the last measured `linux` command (which
/// GRUB measures before loading the kernel), preferring a `kernel_cmdline` string equal to
/// one of them. systemd-boot and systemd-stub: the last bound UTF-16 string in PCR 8 or 12.
fn loader_measurements(source: &Source<'_>) -> (Option<String>, Option<&'static str>) {
    let mut linux_args: Vec<&str> = Vec::new();
    let mut kernel_cmdlines: Vec<&str> = Vec::new();
    let mut utf16_cmdline = None;
    let mut grub = false;
    for pcr in PCRS_LOADER {
        for event in source
            .bound_events(pcr)
            .filter(|e| e.kind == EventType::EV_IPL)
        {
            let Some((text, utf16)) = text(event) else {
                continue;
            };
            let labelled = GRUB_LABELS
                .iter()
                .find_map(|label| text.strip_prefix(label).map(|rest| (*label, rest)));
            match labelled {
                Some((label, payload)) => {
                    grub = true;
                    let command = ["linux ", "linuxefi ", "linux16 "]
                        .iter()
                        .find_map(|c| payload.strip_prefix(c));
                    if let Some(args) = command {
                        linux_args.push(args);
                    } else if label == "kernel_cmdline: " {
                        kernel_cmdlines.push(payload);
                    }
                }
                None if utf16 && pcr != 9 => utf16_cmdline = Some(text),
                None => {}
            }
        }
    }
    if grub {
        let confirmed = kernel_cmdlines
            .iter()
            .rev()
            .find(|k| linux_args.contains(k));
        let cmdline = confirmed.or(linux_args.last()).map(|c| (*c).to_owned());
        return (cmdline, Some("grub"));
    }
    (
        utf16_cmdline.map(str::to_owned),
        utf16_cmdline.map(|_| "systemd-boot"),
    )
}

fn bootloader(
    measured: Option<&'static str>,
    shim_measured: bool,
    apps: Option<&[BootApplication]>,
) -> Option<Bootloader> {
    let files: Vec<&str> = apps
        .unwrap_or_default()
        .iter()
        .filter_map(|app| app.file.as_deref())
        .collect();
    let lower: Vec<String> = files.iter().map(|f| f.to_ascii_lowercase()).collect();
    let shim = shim_measured || lower.iter().any(|f| f.contains("shim"));
    if let Some(name) = measured {
        return Some(Bootloader {
            name: name.to_owned(),
            shim,
            basis: "measured",
        });
    }
    let from_path = lower
        .iter()
        .find_map(|f| {
            if f.contains("systemd-boot") {
                Some("systemd-boot".to_owned())
            } else if f.contains("grub") {
                Some("grub".to_owned())
            } else {
                None
            }
        })
        .or_else(|| {
            files
                .iter()
                .zip(&lower)
                .rfind(|(_, f)| !f.contains("shim"))
                .map(|(f, _)| (*f).to_owned())
        });
    match from_path {
        Some(name) => Some(Bootloader {
            name,
            shim,
            basis: "device-path",
        }),
        None if shim_measured => Some(Bootloader {
            name: "shim".to_owned(),
            shim,
            basis: "measured",
        }),
        None => None,
    }
}

fn separators(source: &Source<'_>) -> [SeparatorState; 8] {
    let mut states = [SeparatorState::Unknown; 8];
    for (pcr, state) in (0u8..).zip(states.iter_mut()) {
        if !source.known(pcr) {
            continue;
        }
        let separator = source
            .events(pcr)
            .find(|e| e.kind == EventType::EV_SEPARATOR);
        *state = match separator {
            None => SeparatorState::Missing,
            Some(event) if !source.bound(event) => SeparatorState::Unknown,
            Some(event) => match event.decoded {
                EventData::Separator(Separator::Normal) => SeparatorState::Present,
                EventData::Separator(Separator::Error) => SeparatorState::Error,
                EventData::Separator(Separator::Other(value)) => SeparatorState::Other(value),
                _ => SeparatorState::Unknown,
            },
        };
    }
    states
}
