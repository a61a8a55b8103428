//! The generated wire code: go-plugin's broker and controller, and the SPIRE plugin SDK's
//! Init, Config and NodeAttestor services (from `proto/goplugin` and `proto/spire`).
//!
//! Kept out of the workspace lints by `plinth_api::generated!`.

use plinth_api::generated;

generated!(
    /// go-plugin (`plugin`): `GRPCBroker`, `GRPCController`.
    goplugin,
    "plugin"
);
generated!(
    /// `spire.service.private.init.v1`: `Init`, `Deinit`.
    init,
    "spire.service.private.init.v1"
);
generated!(
    /// `spire.service.common.config.v1`: `Configure`, `Validate`.
    config,
    "spire.service.common.config.v1"
);
generated!(
    /// `spire.plugin.server.nodeattestor.v1`: `Attest`.
    server_nodeattestor,
    "spire.plugin.server.nodeattestor.v1"
);
generated!(
    /// `spire.plugin.agent.nodeattestor.v1`: `AidAttestation`.
    agent_nodeattestor,
    "spire.plugin.agent.nodeattestor.v1"
);

/// Fully qualified name of the server NodeAttestor service (what `Init` must report).
pub const SERVER_NODE_ATTESTOR: &str = "spire.plugin.server.nodeattestor.v1.NodeAttestor";
/// Fully qualified name of the agent NodeAttestor service.
pub const AGENT_NODE_ATTESTOR: &str = "spire.plugin.agent.nodeattestor.v1.NodeAttestor";
/// Fully qualified name of the Config service.
pub const CONFIG: &str = "spire.service.common.config.v1.Config";
