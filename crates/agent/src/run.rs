//! `plinth agent`: the node identity, the workload identities and the Workload API,
//! together until shutdown.

use std::sync::Arc;

use plinth_client::ServerTrust;
use tokio::sync::watch;

use crate::node::{AgentClock, Node, ServerEndpoint, SystemClock};
use crate::workload::{IdentitySource, SocketConfig};
use crate::workloads::Workloads;
use crate::{AgentConfig, Error};

/// Runs the agent until `shutdown` resolves: attests the node and keeps it attested,
/// keeps the registered workloads' SVIDs fresh, and serves the Workload API on
/// `config.socket`.
///
/// # Errors
/// [`Error::Agent`] for an unreadable bundle, the evidence device's error at start, or
/// the Workload API socket's.
pub async fn run(
    config: AgentConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let bundle = std::fs::read(&config.bundle).map_err(|e| {
        Error::Agent(format!(
            "reading the trust bundle {}: {e}",
            config.bundle.display()
        ))
    })?;
    let trust = ServerTrust::from_pem(&bundle, config.server_id()?)?;
    let source = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || config.open_evidence_source())
            .await
            .map_err(|e| Error::Agent(e.to_string()))??
    };
    let clock: Arc<dyn AgentClock> = Arc::new(SystemClock);
    let node = Arc::new(Node::new(
        source,
        ServerEndpoint {
            addr: config.server,
            trust,
            tls_time: None,
        },
        Arc::clone(&clock),
    )?);
    let workloads = Arc::new(Workloads::new(Arc::clone(&node)));
    let listener =
        crate::workload::bind(&SocketConfig::new(config.socket.clone()).mode(config.socket_mode))?;
    tracing::info!(
        server = %config.server,
        platform = ?config.platform,
        socket = %listener.path().display(),
        "plinth agent started"
    );

    let (stop, stopped) = watch::channel(false);
    let wait = |mut signal: watch::Receiver<bool>| async move {
        let _ = signal.wait_for(|stop| *stop).await;
    };
    let node_task = {
        let node = Arc::clone(&node);
        let signal = stopped.clone();
        tokio::spawn(async move { node.run(wait(signal)).await })
    };
    let workload_task = {
        let workloads = Arc::clone(&workloads);
        let signal = stopped.clone();
        tokio::spawn(async move { workloads.run(clock, wait(signal)).await })
    };
    let source: Arc<dyn IdentitySource> = workloads;
    let api = tokio::spawn(listener.serve(source, wait(stopped)));
    shutdown.await;
    let _sent = stop.send(true);
    node_task.await.map_err(|e| Error::Agent(e.to_string()))?;
    workload_task
        .await
        .map_err(|e| Error::Agent(e.to_string()))?;
    api.await.map_err(|e| Error::Agent(e.to_string()))??;
    tracing::info!("plinth agent stopped");
    Ok(())
}
