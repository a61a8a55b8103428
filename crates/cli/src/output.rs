//! How verification outcomes are printed and turned into exit codes.
//!
//! Everything the CLI prints to stdout goes through [`out!`] / [`write_stdout`]: a closed
//! pipe (`plinth ... | head`) then ends the process with exit code 1 instead of a panic.

use std::fmt;
use std::io::{self, Write as _};
use std::process::ExitCode;

use serde_json::{Value, json};

/// Prints a successful verification (`json` or human text) and returns success.
pub(crate) fn success(as_json: bool, value: &Value, human: &str) -> ExitCode {
    if as_json {
        out!("{value:#}");
    } else {
        out!("{human}");
    }
    ExitCode::SUCCESS
}

/// Prints why verification failed and returns failure. The reason is the full error chain.
pub(crate) fn failure(as_json: bool, error: &anyhow::Error) -> ExitCode {
    let reason = reason(error);
    if as_json {
        out!("{:#}", json!({ "verified": false, "error": reason }));
    } else {
        eprintln!("verification failed: {reason}");
    }
    ExitCode::FAILURE
}

/// The error and its causes, joined with ": ", leaving out a cause whose text the message
/// before it already ends with (library errors often print their source themselves).
pub(crate) fn reason(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if text.ends_with(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

/// `println!` for the CLI: see the module documentation.
macro_rules! out {
    () => {
        $crate::output::write_stdout(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*), true)
    };
}
pub(crate) use out;

/// `print!` (no newline) for the CLI.
macro_rules! out_raw {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*), false)
    };
}
pub(crate) use out_raw;

/// Writes to stdout; if stdout is gone, exits with 1 at once (a result that could not be
/// reported is not a success).
pub(crate) fn write_stdout(args: fmt::Arguments<'_>, newline: bool) {
    let mut stdout = io::stdout().lock();
    let written = stdout
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                stdout.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| stdout.flush());
    if written.is_err() {
        std::process::exit(1);
    }
}
