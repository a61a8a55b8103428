//! Event-log parse + replay throughput beside `tpm2_eventlog` (tpm2-tools) on the same
//! files, in the same run.
//!
//! For every vector log under testdata/tpm/eventlogs it measures, interleaved so both
//! share the machine's noise:
//! - `tools`: one `tpm2_eventlog <file>` process (spawn, parse, replay, print YAML) — what
//!   a verifier shelling out to tpm2-tools would pay per log;
//! - `plinth`: `EventLog::parse` + `replay()` in process, on the same bytes.
//!
//! It prints, per log, the median time of each, their ratio, and whether both agree on the
//! event count and every replayed PCR (the test suite checks the same, with the reasons for
//! the known differences); then plinth's aggregate events/s and MB/s.
//!
//! Run: `cargo bench -p plinth-tpm --bench eventlog [-- <rounds>]` (default 15 rounds).
//! Goal: ≥ 10× faster per log than tpm2_eventlog.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::as_conversions,
    reason = "a benchmark harness: any failure should abort loudly; timings are printed as floats"
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use plinth_tpm::eventlog::EventLog;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/tpm/eventlogs");
/// In-process iterations per round, so that one sample is well above timer resolution.
const INNER: u32 = 50;

struct Log {
    id: String,
    bytes: Vec<u8>,
    path: PathBuf,
}

fn logs(tmp: &Path) -> Vec<Log> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(DATA)
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
            let extension = file
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default();
            if extension == "json" || extension == "md" {
                continue;
            }
            let id = format!(
                "{}/{}",
                dir.file_name().unwrap().to_string_lossy(),
                file.file_name().unwrap().to_string_lossy()
            );
            let mut bytes = std::fs::read(&file).unwrap();
            let mut path = file.clone();
            if extension == "b64" {
                let text: String = String::from_utf8(bytes)
                    .unwrap()
                    .split_whitespace()
                    .collect();
                bytes = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .unwrap();
                path = tmp.join("mb_log.bin");
                std::fs::write(&path, &bytes).unwrap();
            }
            out.push(Log { id, bytes, path });
        }
    }
    out
}

type Pcrs = BTreeMap<String, BTreeMap<u8, String>>;

/// tpm2_eventlog's event count and `pcrs:` section, or `None` when it fails.
fn tools_view(path: &Path) -> Option<(usize, Pcrs)> {
    let out = Command::new("tpm2_eventlog")
        .arg(path)
        .output()
        .expect("tpm2_eventlog (tpm2-tools) must be installed");
    if !out.status.success() {
        return None;
    }
    let yaml = String::from_utf8_lossy(&out.stdout);
    let events = yaml
        .lines()
        .filter(|l| l.starts_with("  PCRIndex: "))
        .count();
    let mut pcrs: Pcrs = BTreeMap::new();
    let mut bank = String::new();
    let mut section = false;
    for line in yaml.lines() {
        if line == "pcrs:" {
            section = true;
        } else if section {
            if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
                name.trim().clone_into(&mut bank);
            } else if let Some((index, value)) = line.trim().split_once(':') {
                let value = value.trim().trim_start_matches("0x").to_owned();
                let _previous = pcrs
                    .entry(bank.clone())
                    .or_default()
                    .insert(index.trim().parse().unwrap(), value);
            }
        }
    }
    Some((events, pcrs))
}

fn plinth_view(bytes: &[u8]) -> (usize, Pcrs) {
    let log = EventLog::parse(bytes).unwrap();
    let mut pcrs: Pcrs = BTreeMap::new();
    for (bank, pcr, value) in log.replay().values().iter() {
        let _previous = pcrs
            .entry(bank.name().to_owned())
            .or_default()
            .insert(pcr, value.to_hex());
    }
    (log.events().len(), pcrs)
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    // `cargo test --all-targets` runs this without `--bench`: one round, as a smoke test.
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if measuring { 15 } else { 1 });
    let tmp = std::env::temp_dir().join(format!("plinth-eventlog-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let logs = logs(&tmp);

    println!(
        "event log parse + replay: plinth (in process) vs tpm2_eventlog (one process per log)"
    );
    println!("{rounds} rounds; plinth sample = mean of {INNER} iterations; medians shown\n");
    println!(
        "{:<58} {:>6} {:>7} {:>11} {:>11} {:>8}  agree",
        "log", "events", "KiB", "tools µs", "plinth µs", "ratio"
    );
    let (mut total_events, mut total_bytes, mut total_plinth) = (0usize, 0usize, Duration::ZERO);
    let (mut agree, mut compared, mut ratios) = (0, 0, Vec::new());
    for log in &logs {
        let mut tools = Vec::new();
        let mut ours = Vec::new();
        let mut tools_ok = true;
        for _ in 0..rounds {
            let start = Instant::now();
            let status = Command::new("tpm2_eventlog")
                .arg(&log.path)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            tools.push(start.elapsed());
            tools_ok &= status.success();
            let start = Instant::now();
            for _ in 0..INNER {
                let parsed = EventLog::parse(black_box(&log.bytes)).unwrap();
                let _ = black_box(parsed.replay());
            }
            ours.push(start.elapsed() / INNER);
        }
        let (tools_median, ours_median) = (median(&mut tools), median(&mut ours));
        let (events, pcrs) = plinth_view(&log.bytes);
        let verdict = match tools_view(&log.path) {
            Some(view) => {
                compared += 1;
                if view == (events, pcrs) {
                    agree += 1;
                    "yes".to_owned()
                } else {
                    "no (see eventlog_vectors.rs: tpm2_eventlog extends EV_NO_ACTION)".to_owned()
                }
            }
            None => "tpm2_eventlog fails (see eventlog_vectors.rs)".to_owned(),
        };
        let ratio = micros(tools_median) / micros(ours_median);
        if tools_ok {
            ratios.push(ratio);
        }
        total_events += events;
        total_bytes += log.bytes.len();
        total_plinth += ours_median;
        println!(
            "{:<58} {:>6} {:>7.1} {:>11.0} {:>11.1} {:>7.0}×  {verdict}",
            log.id,
            events,
            log.bytes.len() as f64 / 1024.0,
            micros(tools_median),
            micros(ours_median),
            ratio
        );
    }
    ratios.sort_by(f64::total_cmp);
    let secs = total_plinth.as_secs_f64();
    println!(
        "\nplinth: {} logs, {total_events} events, {:.2} MiB in {:.2} ms: {:.0} events/s, {:.0} MB/s",
        logs.len(),
        total_bytes as f64 / (1024.0 * 1024.0),
        secs * 1e3,
        total_events as f64 / secs,
        total_bytes as f64 / secs / 1e6
    );
    println!(
        "speed-up over tpm2_eventlog (logs it completes): min {:.0}×, median {:.0}×, max {:.0}×",
        ratios.first().copied().unwrap_or(0.0),
        ratios.get(ratios.len() / 2).copied().unwrap_or(0.0),
        ratios.last().copied().unwrap_or(0.0)
    );
    println!(
        "exact agreement (events + every PCR): {agree} of {compared} logs tpm2_eventlog completes"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
