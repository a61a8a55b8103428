//! `plinth spire-plugin server|agent`: plinth as an external SPIRE NodeAttestor plugin,
//! started by spire-server or spire-agent through `plugin_cmd` (see docs/spire.md).

use std::process::ExitCode;

use clap::Subcommand;

/// The SPIRE plugin to run.
#[derive(Subcommand, Clone, Copy)]
pub(crate) enum SpirePluginCommand {
    /// The spire-server NodeAttestor: verifies and appraises the agent's evidence.
    Server,
    /// The spire-agent NodeAttestor: gathers TPM evidence (EK, AK, quote, event log).
    Agent,
}

/// Serves the plugin until the SPIRE host shuts it down.
pub(crate) fn run(command: SpirePluginCommand) -> ExitCode {
    plinth_spire::run(match command {
        SpirePluginCommand::Server => plinth_spire::Side::Server,
        SpirePluginCommand::Agent => plinth_spire::Side::Agent,
    })
}
