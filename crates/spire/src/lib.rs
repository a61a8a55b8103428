//! plinth as external SPIRE NodeAttestor plugins, loaded by an unmodified `spire-server`
//! and `spire-agent` through `plugin_cmd` (`plinth spire-plugin server|agent`).
//!
//! ```text
//!  spire-agent ── plugin_cmd ──► plinth spire-plugin agent   (TPM: EK, AK, quote, log)
//!       │ payload / challenge response (plinth Hello / Evidence, protobuf)
//!  spire-server ─ plugin_cmd ──► plinth spire-plugin server  (verify + appraise)
//!       ◄── AgentAttributes: spiffe://<td>/spire/agent/plinth/<platform>/<hardware id>,
//!           selectors (platform, policy, policy hash, EK hash, Secure Boot, PCRs, ...),
//!           can_reattest = true
//! ```
//!
//! - [`goplugin`]: the go-plugin side SPIRE loads (cookie, socket, handshake line,
//!   broker stream, controller), see SPIFFE-SPIRE-FACTS §1;
//! - [`ServerPlugin`], [`AgentPlugin`]: the NodeAttestor services, with Init and Config;
//! - [`config`]: `plugin_data` (HCL) or `plugin_data_file` (JSON);
//! - [`Error::to_status`]: the one mapping to the gRPC statuses SPIRE relays;
//! - `host` (feature `host`): SPIRE's side, for tests and benchmarks.
//!
//! The SPIRE payloads are plinth's own attestation messages (`plinth.attestation.v1`):
//! payload = `Hello`, challenge = `ChallengeResponse`, challenge response = `Evidence`,
//! so a SPIRE deployment and a plinth server check exactly the same evidence the same way.

mod agent;
pub mod config;
mod error;
pub mod goplugin;
#[cfg(feature = "host")]
pub mod host;
mod log;
pub mod proto;
mod server;
mod services;

use std::process::ExitCode;
use std::sync::Arc;

pub use agent::AgentPlugin;
pub use error::Error;
use plinth_core::UnixTime;
pub use server::{Exchange, PLUGIN_NAME, ServerPlugin, agent_id, attributes, selector_values};
pub use services::Configurable;

/// Where "now" comes from. The plugins read it at the edge and hand it to the verifiers.
pub trait Clock: Send + Sync {
    /// The current time.
    ///
    /// # Errors
    /// [`Error::Clock`] when the clock is unusable; callers fail closed.
    fn now(&self) -> Result<UnixTime, Error>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Result<UnixTime, Error> {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| Error::Clock)?;
        u64::try_from(since.as_millis())
            .map(UnixTime::from_millis)
            .map_err(|_| Error::Clock)
    }
}

/// Which plugin to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The `spire-server` NodeAttestor.
    Server,
    /// The `spire-agent` NodeAttestor.
    Agent,
}

/// Runs a plugin as SPIRE starts it: checks the environment, binds the socket, prints the
/// handshake line, serves until the host's Shutdown. Returns 0 after a clean shutdown,
/// 1 on any failure (reported on stderr).
pub fn run(side: Side) -> ExitCode {
    log::init();
    match run_inner(side) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ (Error::NotAPluginHost { .. } | Error::ProtocolVersion { .. })) => {
            // A person ran it by hand: say so plainly (and also as a log line).
            tracing::error!(%error, "not started by a plugin host");
            ExitCode::FAILURE
        }
        Err(error) => {
            tracing::error!(%error, "plugin failed");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(side: Side) -> Result<(), Error> {
    goplugin::check_environment(|key| std::env::var(key).ok())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            context: "starting the runtime",
            source,
        })?;
    let result = runtime.block_on(async move {
        let socket_dir = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR").map(std::path::PathBuf::from);
        let socket = goplugin::PluginSocket::bind(socket_dir.as_deref())?;
        let routes = match side {
            Side::Server => Arc::new(ServerPlugin::new(
                Arc::new(SystemClock),
                Arc::new(plinth_crypto::SystemRandom),
            ))
            .routes(),
            Side::Agent => Arc::new(AgentPlugin::new()).routes(),
        };
        let shutdown = goplugin::ShutdownSignal::new();
        // The host owns the plugin's lifetime: an interrupt aimed at the terminal's
        // process group (Ctrl-C on spire-server) must not kill the plugin under it.
        let _interrupts = tokio::spawn(async {
            while tokio::signal::ctrl_c().await.is_ok() {
                tracing::debug!("interrupt ignored: the host unloads the plugin");
            }
        });
        goplugin::announce(&socket, &mut std::io::stdout().lock())?;
        tracing::info!(socket = %socket.path().display(), ?side, "plugin serving");
        goplugin::serve(socket, routes, shutdown).await?;
        tracing::info!("plugin stopped");
        Ok(())
    });
    // Blocking threads (a TPM call in flight) must not hold the exit past the host's
    // 2 s grace period.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    result
}
