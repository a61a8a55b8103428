//! `plinth server`: runs the attestation server until SIGINT or SIGTERM, then drains.
//!
//! With no configuration at all it generates a CA in `./plinth-data`, uses SQLite there,
//! loads `./firmware-policies` and listens on localhost (see `plinth_server::Config`).
//! `PLINTH_*` environment variables override the file. Logs go to stderr (`RUST_LOG`,
//! default `info`); stdout carries one line once the server is listening.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

use crate::output::out;

/// `plinth server` options.
#[derive(Args)]
pub(crate) struct ServerArgs {
    /// TOML configuration file (every key optional; `PLINTH_*` variables override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// How logs are written to stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// Log line format.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Runs the server; exit 0 after a clean shutdown, 1 with the error otherwise.
pub(crate) fn run(args: ServerArgs) -> ExitCode {
    let ServerArgs { config, log_format } = args;
    match serve(config.as_deref(), log_format) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("plinth server: {}", crate::output::reason(&error));
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A subscriber already installed (there is none in the binary) is not an error.
    let _installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn serve(config_file: Option<&Path>, log_format: LogFormat) -> Result<()> {
    let config = plinth_server::Config::load(config_file, std::env::vars())?;
    init_logging(log_format);
    let trust_domain = config.trust_domain.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        // Handlers first, so a signal sent as soon as the line below is read is not lost.
        let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let server = plinth_server::start(config).await?;
        let metrics = server
            .metrics_addr()
            .map_or_else(|| "disabled".to_owned(), |addr| addr.to_string());
        out!(
            "plinth server listening on {} (admin socket {}, metrics {metrics}, trust domain {trust_domain})",
            server.local_addr(),
            server.admin_socket().display(),
        );
        let handle = server.shutdown_handle();
        let signals = tokio::spawn(async move {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutting down: draining in-flight attestations");
            handle.shutdown();
        });
        // Returns once shutdown was asked for and everything drained, or a task failed.
        let result = server.wait().await;
        signals.abort();
        result?;
        tracing::info!("plinth server stopped");
        Ok(())
    })
}
