//! `plinth`: verify hardware evidence from the command line.
//!
//! Every verifying subcommand exits 0 only when verification succeeds; on failure it
//! prints the specific reason (as JSON with `--json`) and exits 1. Usage errors exit 2.

mod input;
mod output;
mod tpm;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "plinth", version, about = "Hardware-rooted attestation: verify TPM evidence")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// TPM 2.0 evidence: quotes, EK certificates.
    #[command(subcommand)]
    Tpm(tpm::TpmCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Tpm(command) => tpm::run(command),
    }
}
