//! How verification outcomes are printed and turned into exit codes.

use std::process::ExitCode;

use serde_json::{Value, json};

/// Prints a successful verification (`json` or human text) and returns success.
pub(crate) fn success(as_json: bool, value: &Value, human: &str) -> ExitCode {
    if as_json {
        println!("{value:#}");
    } else {
        println!("{human}");
    }
    ExitCode::SUCCESS
}

/// Prints why verification failed and returns failure. The reason is the full error chain.
pub(crate) fn failure(as_json: bool, error: &anyhow::Error) -> ExitCode {
    let reason = format!("{error:#}");
    if as_json {
        println!("{:#}", json!({ "verified": false, "error": reason }));
    } else {
        eprintln!("verification failed: {reason}");
    }
    ExitCode::FAILURE
}
