//! `plinth`: verify hardware evidence from the command line.
//!
//! Every verifying subcommand exits 0 only when verification succeeds; on failure it
//! prints the specific reason (as JSON with `--json`) and exits 1. Usage errors exit 2.

mod admin;
mod agent;
mod audit;
mod ca;
mod clock;
mod input;
mod measure;
mod nitro;
mod output;
mod policy;
mod server;
mod snp;
mod spire;
mod tpm;
mod tpm_ek;
mod tpm_eventlog;
mod workload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "plinth",
    version,
    about = "Hardware-rooted attestation: verify TPM, Nitro and SEV-SNP evidence"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// TPM 2.0 evidence: quotes, EK certificates.
    #[command(subcommand)]
    Tpm(tpm::TpmCommand),
    /// AWS Nitro Enclaves attestation documents.
    #[command(subcommand)]
    Nitro(nitro::NitroCommand),
    /// AMD SEV-SNP attestation reports.
    #[command(subcommand)]
    Snp(snp::SnpCommand),
    /// The SPIFFE CA: create, show, rotate (prepare, activate, retire).
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// Mint SVIDs from the CA (X.509 for a public key, JWT).
    #[command(subcommand)]
    Svid(ca::SvidCommand),
    /// The CA's trust bundle (PEM, or the SPIFFE JWKS).
    #[command(subcommand)]
    Bundle(ca::BundleCommand),
    /// Appraisal policies: lint files, dry-run evidence against one.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Reference values from artifacts: Authenticode digests, SEV-SNP launch measurements.
    #[command(subcommand)]
    Measure(measure::MeasureCommand),
    /// Run as an external SPIRE NodeAttestor plugin (started by spire-server or spire-agent).
    #[command(subcommand, name = "spire-plugin")]
    SpirePlugin(spire::SpirePluginCommand),
    /// Run the attestation server until SIGINT/SIGTERM (CA, SQLite and policies by default).
    Server(server::ServerArgs),
    /// Run the node agent until SIGINT/SIGTERM: TPM, Nitro or SEV-SNP attestation, SVID
    /// renewal, the SPIFFE Workload API.
    Agent(agent::AgentArgs),
    /// What a workload gets from the agent's Workload API: its SVIDs, chain-checked.
    Workload(workload::WorkloadArgs),
    /// Registrations on a running server (admin socket): create, list, delete.
    Registration(admin::RegistrationArgs),
    /// Attested nodes on a running server (admin socket): list, ban, unban, evict.
    Node(admin::NodeArgs),
    /// The audit log: verify the hash chain and checkpoints, export for offline audit.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Tpm(command) => tpm::run(command),
        Command::Nitro(command) => nitro::run(command),
        Command::Snp(command) => snp::run(command),
        Command::Ca(command) => ca::run_ca(command),
        Command::Svid(command) => ca::run_svid(command),
        Command::Bundle(command) => ca::run_bundle(command),
        Command::Policy(command) => policy::run(command),
        Command::Measure(command) => measure::run(command),
        Command::SpirePlugin(command) => spire::run(command),
        Command::Server(args) => server::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Workload(args) => workload::run(&args),
        Command::Registration(args) => admin::run_registration(args),
        Command::Node(args) => admin::run_node(args),
        Command::Audit(command) => audit::run(command),
    }
}
