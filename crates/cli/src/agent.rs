//! `plinth agent`: the node agent until SIGINT or SIGTERM — attest the node with its
//! hardware (TPM, Nitro Enclave or SEV-SNP guest), keep its SVID renewed, and serve the
//! SPIFFE Workload API to registered workloads.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use crate::output::out;
use crate::server::{LogFormat, init_logging};

/// `plinth agent` options.
#[derive(Args)]
pub(crate) struct AgentArgs {
    /// TOML configuration file (every key optional; `PLINTH_AGENT_*` variables override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// How logs are written to stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// Runs the agent; exit 0 after a clean shutdown, 1 with the error otherwise.
pub(crate) fn run(args: AgentArgs) -> ExitCode {
    let AgentArgs { config, log_format } = args;
    match serve(config.as_deref(), log_format) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("plinth agent: {}", crate::output::reason(&error));
            ExitCode::FAILURE
        }
    }
}

fn serve(config_file: Option<&Path>, log_format: LogFormat) -> Result<()> {
    let config = plinth_agent::AgentConfig::load(config_file, std::env::vars())?;
    init_logging(log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        out!(
            "plinth agent: server {}, Workload API on unix://{}",
            config.server,
            config.socket.display()
        );
        plinth_agent::run(config, async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
        .await?;
        Ok(())
    })
}
