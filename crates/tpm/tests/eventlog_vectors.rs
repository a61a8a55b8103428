//! TCG event logs from real machines (GCE vTPMs, laptops, workstations, QEMU/OVMF):
//! parsing, replay against the PCR values recorded with them, an independent cross-check
//! with tpm2-tools' `tpm2_eventlog`, replay against a real verified GCE quote, the boot
//! state, and negatives that name their error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use plinth_core::{Digest, HashAlg};
use plinth_tpm::eventlog::{
    Budget, DataBinding, EventData, EventLog, EventType, LogFormat, Provenance, SeparatorState,
    VariableValue,
};
use plinth_tpm::{Error, PcrValues, Public, VerifiedQuote, verify_event_log, verify_quote};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/tpm");
const NONCE: [u8; 2] = [0x90, 0x09];

/// One vector log: `<dir>/<name>` under testdata/tpm/eventlogs, with its bytes decoded.
struct VectorLog {
    dir: String,
    name: String,
    bytes: Vec<u8>,
}

impl VectorLog {
    fn id(&self) -> String {
        format!("{}/{}", self.dir, self.name)
    }
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    let path = path.as_ref();
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every log under testdata/tpm/eventlogs (keylime/mb_log.b64 is base64 text).
fn vector_logs() -> Vec<VectorLog> {
    let mut logs = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(format!("{DATA}/eventlogs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let extension = file
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default();
            if extension == "json" || extension == "md" {
                continue;
            }
            let mut bytes = read(&file);
            if extension == "b64" {
                let text: String = String::from_utf8(bytes)
                    .unwrap()
                    .split_whitespace()
                    .collect();
                bytes = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .unwrap();
            }
            let dir = dir.file_name().unwrap().to_string_lossy().into_owned();
            logs.push(VectorLog { dir, name, bytes });
        }
    }
    assert_eq!(logs.len(), 25, "the vector set has 25 logs");
    logs
}

fn vector(id: &str) -> Vec<u8> {
    vector_logs()
        .into_iter()
        .find(|log| log.id() == id)
        .unwrap_or_else(|| panic!("no log {id}"))
        .bytes
}

fn parse(id: &str) -> EventLog {
    EventLog::parse(&vector(id)).unwrap_or_else(|e| panic!("{id}: {e}"))
}

/// `{bank: {pcr: hex}}` recorded for a log, if its folder's expected_pcrs.json has it.
fn expected_pcrs(log: &VectorLog) -> Option<BTreeMap<HashAlg, BTreeMap<u8, String>>> {
    let path = format!("{DATA}/eventlogs/{}/expected_pcrs.json", log.dir);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).unwrap();
    let banks = json.get(&log.name)?.as_object()?;
    Some(
        banks
            .iter()
            .map(|(bank, pcrs)| {
                let pcrs = pcrs.as_object().unwrap();
                (
                    bank.parse().unwrap(),
                    pcrs.iter()
                        .map(|(i, v)| (i.parse().unwrap(), v.as_str().unwrap().to_owned()))
                        .collect(),
                )
            })
            .collect(),
    )
}

/// PCRs whose recorded value the log cannot explain because it has no events for them
/// (SOURCES.md: the go-attestation sb_cert_eventlog lacks PCR 10, IMA's). PCRs 17–22 at
/// their reset value need no entry.
const NOT_IN_LOG: &[(&str, u8)] = &[("go-attestation/sb_cert_eventlog", 10)];

fn is_reset(pcr: u8, hex: &str) -> bool {
    let fill = if (17..=22).contains(&pcr) { 'f' } else { '0' };
    hex.chars().all(|c| c == fill)
}

#[test]
fn every_vector_log_replays_to_its_expected_pcrs() {
    let mut with_expected = 0;
    let mut compared = 0;
    for log in vector_logs() {
        let parsed = EventLog::parse(&log.bytes).unwrap_or_else(|e| panic!("{}: {e}", log.id()));
        let replay = parsed.replay();
        let Some(expected) = expected_pcrs(&log) else {
            // No recorded PCRs: the log must parse, and replay whatever it extends.
            continue;
        };
        with_expected += 1;
        for (bank, pcrs) in expected {
            for (pcr, hex) in pcrs {
                match replay.get(bank, pcr) {
                    Some(value) => {
                        assert_eq!(value.to_hex(), hex, "{} {bank}:{pcr}", log.id());
                        compared += 1;
                    }
                    None => assert!(
                        is_reset(pcr, &hex) || NOT_IN_LOG.contains(&(log.id().as_str(), pcr)),
                        "{} {bank}:{pcr} is recorded as {hex} but the log never extends it",
                        log.id()
                    ),
                }
            }
        }
    }
    assert_eq!(with_expected, 17, "logs with recorded PCR values");
    assert_eq!(
        compared, 267,
        "PCR values compared (every recorded PCR the log extends)"
    );
}

// ---- tpm2_eventlog cross-check ----------------------------------------------------------

/// What `tpm2_eventlog` (tpm2-tools 5.4) printed for a log: its event count and PCRs.
struct ToolsView {
    events: usize,
    pcrs: BTreeMap<HashAlg, BTreeMap<u8, String>>,
}

/// Runs tpm2_eventlog on `bytes`; `Err` carries its exit status and stderr.
fn tpm2_eventlog(
    label: &str,
    bytes: &[u8],
) -> Result<ToolsView, (std::process::ExitStatus, String)> {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("eventlog-{}", label.replace('/', "_")));
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("tpm2_eventlog").arg(&path).output().expect(
        "tpm2_eventlog (Debian package tpm2-tools) must be installed: the cross-check never skips",
    );
    if !out.status.success() {
        return Err((
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    Ok(parse_tools_yaml(&String::from_utf8_lossy(&out.stdout)))
}

/// Reads the two things the cross-check needs from tpm2_eventlog's YAML: the events (each
/// has exactly one `  PCRIndex:` line at event level, in both output versions) and the
/// `pcrs:` section (`  <bank>:` then `    <index> : 0x<hex>`).
fn parse_tools_yaml(yaml: &str) -> ToolsView {
    let events = yaml
        .lines()
        .filter(|line| line.starts_with("  PCRIndex: "))
        .count();
    let mut pcrs: BTreeMap<HashAlg, BTreeMap<u8, String>> = BTreeMap::new();
    let mut bank = None;
    let mut in_pcrs = false;
    for line in yaml.lines() {
        if line == "pcrs:" {
            in_pcrs = true;
        } else if in_pcrs {
            if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
                bank = Some(name.trim().parse::<HashAlg>().unwrap());
            } else if let Some((index, value)) = line.trim().split_once(':') {
                let value = value.trim().strip_prefix("0x").unwrap().to_owned();
                let _previous = pcrs
                    .entry(bank.unwrap())
                    .or_default()
                    .insert(index.trim().parse().unwrap(), value);
            }
        }
    }
    ToolsView { events, pcrs }
}

fn plinth_pcrs(log: &EventLog) -> BTreeMap<HashAlg, BTreeMap<u8, String>> {
    let mut pcrs: BTreeMap<HashAlg, BTreeMap<u8, String>> = BTreeMap::new();
    for (bank, pcr, value) in log.replay().values().iter() {
        let _previous = pcrs.entry(bank).or_default().insert(pcr, value.to_hex());
    }
    pcrs
}

/// Logs on which tpm2_eventlog 5.4 itself fails, and why (checked exactly below).
const TOOLS_FAILURES: &[(&str, &str)] = &[
    (
        "go-attestation/option_rom_eventlog",
        "tpm2_eventlog dies with SIGSEGV (inside SHA1_Update) on the log's last event, a Windows \
         EV_NO_ACTION event with PCR index 0xFFFFFFFF; on the log without that event it agrees \
         with plinth",
    ),
    (
        "go-attestation/short_no_action_eventlog",
        "tpm2_eventlog takes any first EV_NO_ACTION event for a Spec ID event and rejects this \
         one, a StartupLocality event: 'ERROR: invalid eventDataSize in specid event'",
    ),
];

/// Logs with `EV_NO_ACTION` events in PCR 0 besides the Spec ID event: SP 800-155
/// reference-manifest events (the two GCE logs) or a StartupLocality event (the ThinkPad).
/// tpm2_eventlog 5.4 extends those events' zero digests into PCR 0, and starts PCR 0 at zero
/// whatever the StartupLocality. The PC Client profile says `EV_NO_ACTION` events are never
/// extended and PCR 0 starts at the locality, and the TPMs agree: for the GCE logs the PCR 0
/// values recorded from the TPM (expected_pcrs.json) are plinth's. Every other PCR and the
/// event count agree; [`tools_extends_no_action_into_pcr0`] proves the reason.
const TOOLS_EXTEND_NO_ACTION: &[&str] = &[
    "go-tpm-tools/confidential-gke-debug-251000_eventlog.bin",
    "go-tpm-tools/eventlogwithsp800155.bin",
    "keylime/binary_bios_measurements",
];

fn tools_extends_no_action_into_pcr0(log: &VectorLog, parsed: &EventLog, tools: &ToolsView) {
    let id = log.id();
    let ours = plinth_pcrs(parsed);
    let expected = expected_pcrs(log);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        tools.pcrs.keys().collect::<Vec<_>>(),
        "{id}"
    );
    for (bank, pcrs) in &ours {
        for (pcr, value) in pcrs {
            if *pcr != 0 {
                assert_eq!(Some(value), tools.pcrs[bank].get(pcr), "{id} {bank}:{pcr}");
            }
        }
        // tpm2_eventlog's PCR 0: every PCR 0 event after the Spec ID event extended,
        // EV_NO_ACTION included.
        let mut value = vec![0u8; bank.output_len()];
        for event in parsed.events().iter().skip(1).filter(|e| e.pcr() == 0) {
            let mut data = value.clone();
            data.extend_from_slice(event.digest(*bank).unwrap().as_bytes());
            value = plinth_crypto::digest(*bank, &data).as_bytes().to_vec();
        }
        assert!(
            parsed
                .events()
                .iter()
                .skip(1)
                .any(|e| e.pcr() == 0 && !e.is_extended())
        );
        assert_eq!(
            tools.pcrs[bank][&0],
            hex::encode(&value),
            "{id} {bank}: tpm2_eventlog's PCR 0"
        );
        assert_ne!(pcrs[&0], tools.pcrs[bank][&0]);
        if let Some(recorded) = expected.as_ref().and_then(|e| e.get(bank)) {
            assert_eq!(
                pcrs[&0], recorded[&0],
                "{id} {bank}: plinth's PCR 0 is the TPM's"
            );
        }
    }
}

#[test]
fn every_vector_log_agrees_with_tpm2_eventlog() {
    let mut agreed = 0;
    let mut differed = 0;
    for log in vector_logs() {
        let id = log.id();
        let parsed = EventLog::parse(&log.bytes).unwrap_or_else(|e| panic!("{id}: {e}"));
        match tpm2_eventlog(&id, &log.bytes) {
            Ok(tools) => {
                assert!(
                    !TOOLS_FAILURES.iter().any(|(known, _)| *known == id),
                    "{id} no longer fails in tpm2_eventlog"
                );
                assert_eq!(parsed.events().len(), tools.events, "{id}: event count");
                if TOOLS_EXTEND_NO_ACTION.contains(&id.as_str()) {
                    tools_extends_no_action_into_pcr0(&log, &parsed, &tools);
                    differed += 1;
                } else {
                    assert_eq!(plinth_pcrs(&parsed), tools.pcrs, "{id}: replayed PCRs");
                    agreed += 1;
                }
            }
            Err((status, stderr)) => {
                let reason = TOOLS_FAILURES
                    .iter()
                    .find(|(known, _)| *known == id)
                    .unwrap_or_else(|| {
                        panic!("{id}: tpm2_eventlog failed unexpectedly ({status}): {stderr}")
                    })
                    .1;
                match id.as_str() {
                    "go-attestation/option_rom_eventlog" => {
                        assert_eq!(status.signal(), Some(11), "{reason}");
                        let last = parsed.events().last().unwrap();
                        assert_eq!(
                            (last.pcr(), last.event_type()),
                            (0xffff_ffff, EventType::EV_NO_ACTION)
                        );
                        // The same log without its last event: tpm2_eventlog runs, and agrees.
                        let cut = log.bytes.len() - 32 - last.data().len();
                        let tools =
                            tpm2_eventlog("option_rom_without_last", &log.bytes[..cut]).unwrap();
                        assert_eq!(parsed.events().len() - 1, tools.events, "{reason}");
                        assert_eq!(plinth_pcrs(&parsed), tools.pcrs, "{reason}");
                    }
                    "go-attestation/short_no_action_eventlog" => {
                        assert_eq!(status.code(), Some(1), "{reason}");
                        assert!(
                            stderr.contains("invalid eventDataSize in specid event"),
                            "{reason}: {stderr}"
                        );
                        assert_eq!(parsed.format(), LogFormat::Sha1);
                        assert_eq!(parsed.events().len(), 1);
                        assert_eq!(parsed.startup_locality(), Some(3));
                        assert!(plinth_pcrs(&parsed).is_empty());
                    }
                    _ => unreachable!(),
                }
            }
        }
    }
    assert_eq!(
        agreed, 20,
        "logs on which plinth and tpm2_eventlog agree exactly"
    );
    assert_eq!(
        differed, 3,
        "logs on which tpm2_eventlog extends EV_NO_ACTION events"
    );
}

// ---- a real quote and its log -----------------------------------------------------------

fn gce_pcrs() -> PcrValues {
    let json: serde_json::Value =
        serde_json::from_slice(&read(format!("{DATA}/quotes/gce-cos85/pcrs.json"))).unwrap();
    let mut pcrs = PcrValues::default();
    for (bank, values) in json["pcrs"].as_object().unwrap() {
        let bank: HashAlg = bank.parse().unwrap();
        for (index, hex) in values.as_object().unwrap() {
            pcrs.insert(
                bank,
                index.parse().unwrap(),
                Digest::from_hex(bank, hex.as_str().unwrap()).unwrap(),
            )
            .unwrap();
        }
    }
    pcrs
}

fn gce_quote(bank: &str) -> VerifiedQuote {
    let q = |name: &str| read(format!("{DATA}/quotes/gce-cos85/{name}"));
    let ak = Public::from_tpmt(&q("ak_pub.tpmt_public.bin")).unwrap();
    let attest = q(&format!("quote_{bank}.tpms_attest.bin"));
    let signature = q(&format!("quote_{bank}.tpmt_signature.bin"));
    verify_quote(&ak, &attest, &signature, &NONCE, &gce_pcrs()).unwrap()
}

fn gce_log() -> Vec<u8> {
    read(format!("{DATA}/quotes/gce-cos85/eventlog.bin"))
}

#[test]
fn gce_cos85_log_replays_to_its_verified_quote_in_every_bank() {
    let log = gce_log();
    for (name, bank) in [
        ("sha1", HashAlg::Sha1),
        ("sha256", HashAlg::Sha256),
        ("sha384", HashAlg::Sha384),
    ] {
        let quote = gce_quote(name);
        let verified = verify_event_log(&log, &quote).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.verified_banks(), [bank]);
        // PCRs 0–9 replay exactly; 11–23 hold their reset values; PCR 10 (IMA, extended by
        // the kernel after boot) is quoted but not in the firmware log.
        let expected: Vec<u8> = (0..=23).filter(|pcr| *pcr != 10).collect();
        assert_eq!(
            verified.verified_pcrs().iter().copied().collect::<Vec<_>>(),
            expected
        );
        assert_eq!(verified.uncovered_pcrs(), [(bank, 10)]);
        for pcr in 0..=9 {
            assert_eq!(
                verified.replayed().get(bank, pcr),
                quote.pcrs().get(bank, pcr),
                "{name} PCR {pcr}"
            );
        }
    }
}

#[test]
fn gce_cos85_verified_boot_state() {
    let verified = verify_event_log(&gce_log(), &gce_quote("sha256")).unwrap();
    let state = verified.boot_state();
    assert_eq!(state.provenance(), Provenance::Verified);
    assert_eq!(state.secure_boot(), Some(true));
    assert_eq!(
        state.deployed_mode(),
        None,
        "GCE firmware does not measure DeployedMode"
    );
    assert_eq!(state.pk().unwrap().len(), 1);
    let db = state.db().unwrap();
    assert_eq!(db.len(), 1);
    assert_eq!(state.dbx().unwrap().len(), 4);
    assert_eq!(state.exit_boot_services(), Some(true));
    assert_eq!(state.separators(), &[SeparatorState::Present; 8]);
    assert_eq!(state.crtm_version(), Some("GCE Virtual Firmware v1"));
    let cmdline = state.kernel_cmdline().unwrap();
    assert!(
        cmdline.starts_with("/syslinux/vmlinuz.A init=/usr/lib/systemd/systemd boot=local"),
        "{cmdline}"
    );
    let loader = state.bootloader().unwrap();
    assert_eq!(
        (loader.name.as_str(), loader.shim, loader.basis),
        ("grub", false, "measured")
    );
    // shim-less COS: the firmware loads BOOTX64.EFI (GRUB), which loads the kernel twice
    // (A/B), each from memory (no device path).
    let apps = state.boot_applications().unwrap();
    assert_eq!(apps.len(), 3);
    assert_eq!(apps[0].file.as_deref(), Some("\\EFI\\BOOT\\BOOTX64.EFI"));
    assert!(
        apps.iter()
            .all(|app| app.digests.len() == 1 && app.digests[0].alg() == HashAlg::Sha256)
    );
    // The two db authority events carry six stray bytes (a firmware bug): their data does
    // not hash to the digest, so they are not reported as authorities.
    assert_eq!(state.unbound_events(), [24, 41]);
    assert_eq!(verified.bindings()[24], DataBinding::Unbound);
    // The firmware's own authority event for GRUB is well formed.
    let authorities = state.authorities().unwrap();
    assert_eq!(authorities.len(), 1);
    assert_eq!(authorities[0].variable, "db");
    let cert = authorities[0].certificate.as_ref().unwrap();
    assert!(
        cert.subject()
            .unwrap()
            .ends_with("OU=Container Optimized OS, CN=UEFI DB Key v10")
    );
    assert_eq!(
        db[0].value,
        plinth_tpm::eventlog::efi::SignatureValue::Certificate(cert.clone())
    );
    // The same log read from the file alone gives the same state, marked unverified.
    let unverified = verified.log().boot_state_unverified();
    assert_eq!(unverified.provenance(), Provenance::Unverified);
    assert_eq!(unverified.secure_boot(), state.secure_boot());
    assert_eq!(unverified.kernel_cmdline(), state.kernel_cmdline());
}

// ---- boot state from vector logs ----------------------------------------------------------

#[test]
fn systemd_boot_command_line_is_read_from_its_measured_utf16_string() {
    // Old systemd-boot logged its UTF-16 command line one byte short of what it hashed.
    let log = parse("go-tpm-tools/arch-linux-workstation.bin");
    let state = log.boot_state_unverified();
    assert_eq!(state.secure_boot(), Some(false));
    let loader = state.bootloader().unwrap();
    assert_eq!(
        (loader.name.as_str(), loader.basis),
        ("systemd-boot", "measured")
    );
    assert!(
        state
            .kernel_cmdline()
            .unwrap()
            .starts_with("initrd=\\intel-ucode.img initrd=\\initramfs-linux-lts.img cryptdevice=")
    );
    let files: Vec<_> = state
        .boot_applications()
        .unwrap()
        .iter()
        .map(|a| a.file.clone().unwrap())
        .collect();
    assert_eq!(
        files,
        ["\\EFI\\SYSTEMD\\SYSTEMD-BOOTX64.EFI", "\\vmlinuz-linux-lts"]
    );
}

#[test]
fn shim_and_grub_with_secure_boot_on_qemu() {
    let state = parse("keylime/binary_bios_measurements-secureboot").boot_state_unverified();
    assert_eq!(state.secure_boot(), Some(true));
    let loader = state.bootloader().unwrap();
    assert_eq!((loader.name.as_str(), loader.shim), ("grub", true));
    let files: Vec<_> = state
        .boot_applications()
        .unwrap()
        .iter()
        .filter_map(|a| a.file.clone())
        .collect();
    assert_eq!(
        files,
        ["\\EFI\\redhat\\shimx64.efi", "\\EFI\\redhat\\grubx64.efi"]
    );
    let authorities: Vec<_> = state
        .authorities()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a.variable.as_str(),
                a.certificate
                    .as_ref()
                    .and_then(plinth_tpm::eventlog::efi::CertificateInfo::subject),
            )
        })
        .collect();
    assert_eq!(authorities[0].0, "db");
    assert!(
        authorities[0]
            .1
            .as_deref()
            .unwrap()
            .ends_with("CN=Microsoft Corporation UEFI CA 2011")
    );
    assert_eq!(authorities[1], ("SbatLevel", None));
    assert_eq!(authorities[2].0, "vendor_db");
    assert!(
        authorities[2]
            .1
            .as_deref()
            .unwrap()
            .contains("CN=Red Hat Secure Boot CA 5")
    );
    let kek = state.kek().unwrap();
    assert_eq!(kek.len(), 3);
    assert!(
        state
            .kernel_cmdline()
            .unwrap()
            .contains("root=/dev/mapper/rhel_rhel--9-root")
    );
}

#[test]
fn windows_boot_with_option_roms() {
    let state = parse("go-attestation/option_rom_eventlog").boot_state_unverified();
    assert_eq!(state.secure_boot(), Some(true));
    assert_eq!(state.exit_boot_services(), Some(true));
    assert_eq!(state.separators(), &[SeparatorState::Present; 8]);
    let loader = state.bootloader().unwrap();
    assert_eq!(
        (loader.name.as_str(), loader.basis),
        ("\\EFI\\Microsoft\\Boot\\bootmgfw.efi", "device-path")
    );
    let subjects: Vec<_> = state
        .authorities()
        .unwrap()
        .iter()
        .map(|a| a.certificate.clone().unwrap().subject().unwrap())
        .collect();
    assert!(subjects[0].ends_with("CN=Microsoft Corporation UEFI CA 2011"));
    assert!(subjects[1].ends_with("CN=Microsoft Windows Production PCA 2011"));
}

#[test]
fn missing_exit_boot_services_event_is_reported() {
    let state = parse("go-attestation/ebs_event_missing_eventlog").boot_state_unverified();
    assert_eq!(state.exit_boot_services(), Some(false));
}

#[test]
fn startup_locality_three_sets_pcr0_initial_value() {
    let log = parse("keylime/binary_bios_measurements");
    assert_eq!(log.startup_locality(), Some(3));
    for bank in [HashAlg::Sha1, HashAlg::Sha256] {
        let mut value = vec![0u8; bank.output_len()];
        *value.last_mut().unwrap() = 3;
        for event in log
            .events()
            .iter()
            .filter(|e| e.is_extended() && e.pcr() == 0)
        {
            let mut data = value.clone();
            data.extend_from_slice(event.digest(bank).unwrap().as_bytes());
            value = plinth_crypto::digest(bank, &data).as_bytes().to_vec();
        }
        assert_eq!(
            log.replay().get(bank, 0).unwrap().as_bytes(),
            value.as_slice(),
            "{bank}"
        );
    }
}

#[test]
fn sp800_155_reference_manifest_events_are_decoded() {
    let log = parse("go-tpm-tools/eventlogwithsp800155.bin");
    let manifests: Vec<_> = log
        .events()
        .iter()
        .filter_map(|e| match e.decoded() {
            EventData::ReferenceManifest(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(manifests.len(), 2);
    for m in &manifests {
        assert_eq!(m.signature, "SP800-155 Event3");
        assert_eq!(m.platform_manufacturer, "Google, Inc.");
        assert_eq!(m.platform_model, "Google Compute Engine");
        assert_eq!(m.firmware_version, "2.7");
    }
    let (kind, locator) = manifests[1].rim_locator.clone().unwrap();
    assert_eq!(kind, 1);
    assert!(
        String::from_utf8_lossy(&locator)
            .starts_with("https://storage.googleapis.com/gce_tcb_integrity/")
    );
}

#[test]
fn dbx_is_checked_against_a_reference_set() {
    let sha256_entries = |id: &str| -> Vec<Digest> {
        parse(id)
            .boot_state_unverified()
            .dbx()
            .unwrap()
            .iter()
            .filter_map(|entry| match &entry.value {
                plinth_tpm::eventlog::efi::SignatureValue::Hash { hash, .. }
                    if hash.len() == 32 =>
                {
                    Some(Digest::new(HashAlg::Sha256, hash).unwrap())
                }
                _ => None,
            })
            .collect()
    };
    let older = sha256_entries("go-tpm-tools/ubuntu-2104-no-secure-boot.bin");
    let newer = sha256_entries("rust-keylime/uefi_log.bin");
    assert_eq!((older.len(), newer.len()), (183, 480));
    let old_state = parse("go-tpm-tools/ubuntu-2104-no-secure-boot.bin").boot_state_unverified();
    let new_state = parse("rust-keylime/uefi_log.bin").boot_state_unverified();
    // A dbx holds itself; the newer one holds every entry of the older one, not vice versa.
    assert_eq!(old_state.check_dbx(&older).unwrap().entries(), 186);
    assert_eq!(new_state.check_dbx(&older).unwrap().entries(), 482);
    let missing = newer.iter().filter(|d| !older.contains(d)).count();
    assert_eq!(
        old_state.check_dbx(&newer),
        Err(Error::DbxOutdated {
            missing,
            reference: 480
        })
    );
    // An empty dbx lacks everything; an unmeasured one cannot be checked.
    let empty = parse("go-tpm-tools/ubuntu-2104-no-dbx.bin").boot_state_unverified();
    assert_eq!(
        empty.check_dbx(&older),
        Err(Error::DbxOutdated {
            missing: 183,
            reference: 183
        })
    );
    let nothing = parse("go-attestation/short_no_action_eventlog").boot_state_unverified();
    assert_eq!(nothing.check_dbx(&older), Err(Error::DbxNotMeasured));
}

#[test]
fn signature_databases_carry_fingerprints_and_subjects() {
    let state = parse("keylime/binary_bios_measurements-secureboot").boot_state_unverified();
    let pk = &state.pk().unwrap()[0];
    let plinth_tpm::eventlog::efi::SignatureValue::Certificate(cert) = &pk.value else {
        panic!("PK is a certificate")
    };
    assert_eq!(
        cert.sha256_fingerprint(),
        plinth_crypto::digest(HashAlg::Sha256, cert.der()).to_hex()
    );
    assert!(cert.subject().is_some());
    let db_subjects: Vec<_> = state
        .db()
        .unwrap()
        .iter()
        .filter_map(|e| match &e.value {
            plinth_tpm::eventlog::efi::SignatureValue::Certificate(c) => c.subject(),
            _ => None,
        })
        .collect();
    assert!(
        db_subjects
            .iter()
            .any(|s| s.ends_with("CN=Microsoft Windows Production PCA 2011")),
        "{db_subjects:?}"
    );
    let secure_boot = parse("keylime/binary_bios_measurements-secureboot");
    let flags: Vec<_> = secure_boot
        .events()
        .iter()
        .filter_map(|e| match e.decoded() {
            EventData::Variable(v) if v.name == "SecureBoot" => Some(v.value.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(flags, [VariableValue::Flag(1)]);
}

// ---- negatives ----------------------------------------------------------------------------

/// Where each event of a crypto-agile log with SHA-1, SHA-256 and SHA-384 digests lies.
fn spans(log: &EventLog) -> Vec<std::ops::Range<usize>> {
    let mut offset = 0;
    log.events()
        .iter()
        .map(|event| {
            let header = if event.index() == 0 {
                32
            } else {
                4 + 4 + 4 + (2 + 20) + (2 + 32) + (2 + 48) + 4
            };
            let span = offset..offset + header + event.data().len();
            offset = span.end;
            span
        })
        .collect()
}

/// The byte offset of `needle` in `haystack` (which must hold it exactly once).
fn find_once(haystack: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "needle must occur once");
    hits[0]
}

#[test]
fn rejects_flipped_digest_byte_with_event_log_replay_mismatch() {
    let mut log = gce_log();
    let parsed = EventLog::parse(&log).unwrap();
    // The first boot application (PCR 4): flip one byte of its SHA-256 digest.
    let app = parsed
        .events()
        .iter()
        .find(|e| e.event_type() == EventType::EV_EFI_BOOT_SERVICES_APPLICATION)
        .unwrap();
    let at = find_once(&log, app.digest(HashAlg::Sha256).unwrap().as_bytes());
    log[at + 5] ^= 0x01;
    let last_pcr4 = parsed
        .events()
        .iter()
        .rfind(|e| e.is_extended() && e.pcr() == 4)
        .unwrap()
        .index();
    assert_eq!(
        verify_event_log(&log, &gce_quote("sha256")),
        Err(Error::EventLogReplayMismatch {
            bank: HashAlg::Sha256,
            pcr: 4,
            last_event: Some(last_pcr4),
            consistent_through: None,
        })
    );
    // The SHA-1 digests are untouched: against the SHA-1 quote the log still verifies.
    assert!(verify_event_log(&log, &gce_quote("sha1")).is_ok());
}

#[test]
fn rejects_extra_events_with_event_log_replay_mismatch_located_after_the_last_good_event() {
    // Append a copy of the log's last PCR 8 event: the TPM never saw it, and the quoted
    // PCR 8 equals the replay up to the original last PCR 8 event, which is reported.
    let log = gce_log();
    let parsed = EventLog::parse(&log).unwrap();
    let spans = spans(&parsed);
    assert_eq!(spans.last().unwrap().end, log.len());
    let last8 = parsed.events().iter().rfind(|e| e.pcr() == 8).unwrap();
    let mut longer = log.clone();
    longer.extend_from_slice(&log[spans[last8.index()].clone()]);
    assert_eq!(
        verify_event_log(&longer, &gce_quote("sha384")),
        Err(Error::EventLogReplayMismatch {
            bank: HashAlg::Sha384,
            pcr: 8,
            last_event: Some(parsed.events().len()),
            consistent_through: Some(last8.index()),
        })
    );
}

#[test]
fn rejects_truncated_log_with_event_log_truncated() {
    let log = gce_log();
    let parsed = EventLog::parse(&log).unwrap();
    let last = parsed.events().last().unwrap();
    let start = log.len() - (4 + 4 + 4 + (2 + 20) + (2 + 32) + (2 + 48) + 4 + last.data().len());
    for cut in [log.len() - 1, log.len() - last.data().len() - 1, start + 3] {
        assert_eq!(
            EventLog::parse(&log[..cut]),
            Err(Error::EventLogTruncated {
                event: last.index(),
                offset: start
            }),
            "cut at {cut}"
        );
        assert_eq!(
            verify_event_log(&log[..cut], &gce_quote("sha256")).unwrap_err(),
            Error::EventLogTruncated {
                event: last.index(),
                offset: start
            }
        );
    }
}

#[test]
fn rejects_event_over_budget_with_event_too_large() {
    // A real log under a 1 KiB per-event budget: the first larger event is named.
    let log = vector("keylime/binary_bios_measurements-secureboot");
    let parsed = EventLog::parse(&log).unwrap();
    let big = parsed
        .events()
        .iter()
        .find(|e| e.data().len() > 1024)
        .unwrap();
    let budget = Budget {
        max_event_size: 1024,
        ..Budget::default()
    };
    assert_eq!(
        EventLog::parse_with_budget(&log, budget),
        Err(Error::EventTooLarge {
            event: big.index(),
            size: big.data().len(),
            max: 1024
        })
    );
    // A forged size of 4 GiB - 1 in the default budget is refused before anything is read.
    let mut forged = gce_log();
    let last = parsed.events().len();
    forged.extend_from_slice(&8u32.to_le_bytes()); // PCR
    forged.extend_from_slice(&0x0du32.to_le_bytes()); // EV_IPL
    forged.extend_from_slice(&3u32.to_le_bytes());
    for (alg, len) in [(4u16, 20), (0xb, 32), (0xc, 48)] {
        forged.extend_from_slice(&alg.to_le_bytes());
        forged.extend(std::iter::repeat_n(0u8, len));
    }
    forged.extend_from_slice(&u32::MAX.to_le_bytes());
    let gce_events = EventLog::parse(&gce_log()).unwrap().events().len();
    let _ = last;
    assert_eq!(
        EventLog::parse(&forged),
        Err(Error::EventTooLarge {
            event: gce_events,
            size: usize::try_from(u32::MAX).unwrap(),
            max: 1 << 20
        })
    );
}

#[test]
fn rejects_spec_id_banks_the_events_lack_with_event_digest_missing() {
    // A SHA-256-only log whose Spec ID event is rewritten to also declare SHA-384.
    let log = vector("go-attestation/crypto_agile_eventlog");
    let size = usize::try_from(u32::from_le_bytes(log[28..32].try_into().unwrap())).unwrap();
    let spec = &log[32..32 + size];
    assert_eq!(
        u32::from_le_bytes(spec[24..28].try_into().unwrap()),
        1,
        "one bank declared"
    );
    let mut new_spec = spec[..24].to_vec();
    new_spec.extend_from_slice(&2u32.to_le_bytes());
    new_spec.extend_from_slice(&spec[28..32]); // sha256, 32
    new_spec.extend_from_slice(&[0x0c, 0x00, 48, 0x00]); // sha384, 48
    new_spec.extend_from_slice(&spec[32..]);
    let mut forged = log[..28].to_vec();
    forged.extend_from_slice(&u32::try_from(new_spec.len()).unwrap().to_le_bytes());
    forged.extend_from_slice(&new_spec);
    forged.extend_from_slice(&log[32 + size..]);
    assert_eq!(
        EventLog::parse(&forged),
        Err(Error::EventDigestMissing {
            event: 1,
            alg: 0x000c
        })
    );
}

#[test]
fn rejects_log_of_another_boot_with_event_log_replay_mismatch() {
    // The same image (COS 85 on GCE) booted another time: a real log that replays, but to
    // other values than the quote's.
    let other = vector("go-tpm-tools/cos-85-amd-sev.bin");
    let quote = gce_quote("sha256");
    let replay = EventLog::parse(&other).unwrap().replay();
    let first_difference = (0..=23u8)
        .find(|pcr| {
            replay
                .get(HashAlg::Sha256, *pcr)
                .is_some_and(|v| Some(v) != quote.pcrs().get(HashAlg::Sha256, *pcr))
        })
        .unwrap();
    let result = verify_event_log(&other, &quote);
    assert!(
        matches!(result, Err(Error::EventLogReplayMismatch { bank: HashAlg::Sha256, pcr, .. }) if pcr == first_difference),
        "{result:?}"
    );
}

#[test]
fn rejects_forged_secure_boot_data_with_event_data_mismatch() {
    // Flip the SecureBoot variable's value byte but not its digest: the replay still
    // matches, the data no longer hashes to the verified digest.
    let mut log = gce_log();
    let parsed = EventLog::parse(&log).unwrap();
    let event = parsed
        .events()
        .iter()
        .find(|e| matches!(e.decoded(), EventData::Variable(v) if v.name == "SecureBoot"))
        .unwrap();
    let at = find_once(&log, event.data());
    let last = at + event.data().len() - 1;
    assert_eq!(log[last], 1);
    log[last] = 0;
    assert_eq!(
        verify_event_log(&log, &gce_quote("sha256")),
        Err(Error::EventDataMismatch {
            event: event.index(),
            event_type: 0x8000_0001
        })
    );
    // Read from the file alone, the forged value is not believed either.
    let state = EventLog::parse(&log).unwrap().boot_state_unverified();
    assert_eq!(state.secure_boot(), None);
    assert!(state.unbound_events().contains(&event.index()));
}

#[test]
fn rejects_quote_without_a_log_bank_with_event_log_no_quoted_bank() {
    // A SHA-256-only log against a SHA-384 quote.
    let log = vector("go-attestation/crypto_agile_eventlog");
    assert_eq!(
        verify_event_log(&log, &gce_quote("sha384")).unwrap_err(),
        Error::EventLogNoQuotedBank
    );
}

#[test]
fn log_that_omits_a_quoted_pcr_leaves_it_unverified() {
    // Drop every PCR 9 event from the log (the quote still covers PCR 9): the rest verifies,
    // and PCR 9 is reported as uncovered, not trusted.
    let log = gce_log();
    let parsed = EventLog::parse(&log).unwrap();
    let mut kept = Vec::new();
    for (event, span) in parsed.events().iter().zip(spans(&parsed)) {
        if event.pcr() != 9 {
            kept.extend_from_slice(&log[span]);
        }
    }
    let verified = verify_event_log(&kept, &gce_quote("sha256")).unwrap();
    assert_eq!(
        verified.uncovered_pcrs(),
        [(HashAlg::Sha256, 9), (HashAlg::Sha256, 10)]
    );
    assert!(!verified.verified_pcrs().contains(&9));
}

#[test]
fn every_event_of_a_typed_kind_decodes_in_every_vector_log() {
    // Types plinth decodes; in the vectors each such event decodes, except S-CRTM version
    // events that hold a binary GUID instead of a version string (kept raw, as specified).
    let typed = [
        EventType::EV_NO_ACTION,
        EventType::EV_POST_CODE,
        EventType::EV_SEPARATOR,
        EventType::EV_IPL,
        EventType::EV_EFI_ACTION,
        EventType::EV_EVENT_TAG,
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB,
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2,
        EventType::EV_EFI_VARIABLE_DRIVER_CONFIG,
        EventType::EV_EFI_VARIABLE_BOOT,
        EventType::EV_EFI_VARIABLE_AUTHORITY,
        EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
        EventType::EV_EFI_BOOT_SERVICES_DRIVER,
        EventType::EV_EFI_GPT_EVENT,
        EventType::EV_EFI_HANDOFF_TABLES,
    ];
    let mut decoded: BTreeMap<EventType, usize> = BTreeMap::new();
    let mut gpt_partitions = 0;
    for log in vector_logs() {
        let parsed = EventLog::parse(&log.bytes).unwrap();
        for event in parsed
            .events()
            .iter()
            .filter(|e| typed.contains(&e.event_type()))
        {
            if let EventData::Gpt(gpt) = event.decoded() {
                gpt_partitions += gpt.partitions.len();
            }
            assert!(
                !matches!(event.decoded(), EventData::Raw),
                "{} event {} ({}) did not decode",
                log.id(),
                event.index(),
                event.event_type()
            );
            *decoded.entry(event.event_type()).or_default() += 1;
        }
    }
    assert!(gpt_partitions > 0);
    // Every typed kind occurs in the vectors except EV_EFI_PLATFORM_FIRMWARE_BLOB2.
    let unseen: Vec<String> = typed
        .iter()
        .filter(|t| !decoded.contains_key(t))
        .map(ToString::to_string)
        .collect();
    assert_eq!(unseen, ["EV_EFI_PLATFORM_FIRMWARE_BLOB2"]);
}
