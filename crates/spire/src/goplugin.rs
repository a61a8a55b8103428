//! The plugin side of hashicorp/go-plugin's protocol, as SPIRE loads external plugins.
//!
//! ```text
//!  host env: NodeAttestor=NodeAttestor, PLUGIN_PROTOCOL_VERSIONS=1
//!  plugin:   bind a unix socket in a private temporary directory
//!            stdout: "1|1|unix|<socket>|grpc\n"   (the only line ever written there)
//!            serve plaintext HTTP/2 gRPC on the socket:
//!              plugin.GRPCBroker/StartStream     kept open until shutdown
//!              plugin.GRPCController/Shutdown    reply, then stop serving and exit
//!              + the plugin's own services (Init, Config, NodeAttestor)
//!  logs:     stderr, one JSON object per line (see `crate::log`)
//! ```
//!
//! `plugin.GRPCStdio` is not served: the host tolerates Unimplemented, and nothing is
//! written to stdout after the handshake line, so there is nothing to forward.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt as _};
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::service::Routes;
use tonic::{Request, Response, Status, Streaming};

use crate::Error;
use crate::proto::goplugin::grpc_broker_server::{GrpcBroker, GrpcBrokerServer};
use crate::proto::goplugin::grpc_controller_server::{GrpcController, GrpcControllerServer};
use crate::proto::goplugin::{ConnInfo, Empty};

/// The magic cookie variable SPIRE sets for a node attestor (key and value are both the
/// plugin type).
pub const MAGIC_COOKIE_KEY: &str = "NodeAttestor";
/// Its value.
pub const MAGIC_COOKIE_VALUE: &str = "NodeAttestor";
/// go-plugin's core protocol version.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The application protocol version SPIRE's catalog speaks.
pub const APP_PROTOCOL_VERSION: u32 = 1;
/// How long a graceful stop may take after Shutdown before the server is dropped (the
/// host kills the process 2 s after Shutdown).
const DRAIN: Duration = Duration::from_millis(500);

/// Checks that a go-plugin host started this process and speaks protocol version 1.
///
/// # Errors
/// [`Error::NotAPluginHost`] without the magic cookie; [`Error::ProtocolVersion`] when
/// `PLUGIN_PROTOCOL_VERSIONS` does not list 1.
pub fn check_environment(var: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
    if var(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
        return Err(Error::NotAPluginHost {
            key: MAGIC_COOKIE_KEY,
            expected: MAGIC_COOKIE_VALUE,
        });
    }
    // go-plugin: absent means "the host's default", which for SPIRE is 1.
    if let Some(offered) = var("PLUGIN_PROTOCOL_VERSIONS") {
        let ours = APP_PROTOCOL_VERSION.to_string();
        if !offered.split(',').any(|v| v.trim() == ours) {
            return Err(Error::ProtocolVersion { offered });
        }
    }
    Ok(())
}

/// A listening unix socket in a private directory (mode 0700), removed on drop.
#[derive(Debug)]
pub struct PluginSocket {
    _dir: tempfile::TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl PluginSocket {
    /// Binds `plugin.sock` in a fresh private directory under `parent` (go-plugin's
    /// `PLUGIN_UNIX_SOCKET_DIR` when the host sets it, else the system temporary directory).
    /// Must run inside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn bind(parent: Option<&Path>) -> Result<Self, Error> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let dir = tempfile::Builder::new()
            .prefix("plinth-plugin-")
            .tempdir_in(parent)
            .map_err(|source| Error::Io {
                context: "creating the socket directory",
                source,
            })?;
        let path = dir.path().join("plugin.sock");
        let listener = UnixListener::bind(&path).map_err(|source| Error::Io {
            context: "binding the plugin socket",
            source,
        })?;
        Ok(Self {
            _dir: dir,
            path,
            listener,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The handshake line (without the newline): `1|1|unix|<path>|grpc`. No server
    /// certificate: SPIRE runs go-plugin without AutoMTLS, and a certificate here would
    /// make the host expect TLS.
    pub fn handshake_line(&self) -> String {
        format!(
            "{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|unix|{}|grpc",
            self.path.display()
        )
    }
}

/// Signals the end of the plugin: sent by `GRPCController/Shutdown`.
#[derive(Debug, Clone)]
pub struct ShutdownSignal(Arc<watch::Sender<bool>>);

impl ShutdownSignal {
    /// A signal not yet raised.
    pub fn new() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }

    /// Raises it.
    pub fn raise(&self) {
        let _previous = self.0.send_replace(true);
    }

    /// Resolves once raised.
    pub async fn raised(&self) {
        let mut receiver = self.0.subscribe();
        // An error means the sender is gone, which cannot happen while `self` holds it.
        let _raised = receiver.wait_for(|raised| *raised).await;
    }
}

impl Default for ShutdownSignal {
    fn default() -> Self {
        Self::new()
    }
}

/// `plugin.GRPCBroker`: the host announces its services (service 1: SPIRE's host
/// services) on this stream, and go-plugin fails the load if the stream is missing or
/// closes. It stays open until shutdown; plinth uses no host service, so the
/// announcements are only logged.
#[derive(Debug)]
struct Broker {
    shutdown: ShutdownSignal,
}

type BrokerStream = Pin<Box<dyn Stream<Item = Result<ConnInfo, Status>> + Send>>;

#[tonic::async_trait]
impl GrpcBroker for Broker {
    type StartStreamStream = BrokerStream;

    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<BrokerStream>, Status> {
        let mut inbound = request.into_inner();
        let _reader = tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(info)) => tracing::debug!(
                        service_id = info.service_id,
                        network = %info.network,
                        address = %info.address,
                        "host broker connection info"
                    ),
                    Ok(None) => {
                        tracing::debug!("host closed the broker stream");
                        break;
                    }
                    Err(status) => {
                        tracing::debug!(%status, "broker stream error");
                        break;
                    }
                }
            }
        });
        let shutdown = self.shutdown.clone();
        let outbound = futures_util::stream::once(async move { shutdown.raised().await })
            .filter_map(|()| async { None::<Result<ConnInfo, Status>> });
        Ok(Response::new(Box::pin(outbound)))
    }
}

/// `plugin.GRPCController`: Shutdown replies, then stops the server.
#[derive(Debug)]
struct Controller {
    shutdown: ShutdownSignal,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::info!("shutdown requested by the host");
        self.shutdown.raise();
        Ok(Response::new(Empty {}))
    }
}

/// Serves `routes` (the plugin's services) plus the broker and the controller on `socket`
/// until `shutdown` is raised (by the controller or by the caller), then drains for at
/// most half a second.
///
/// # Errors
/// [`Error::Transport`] if the server fails.
pub async fn serve(
    socket: PluginSocket,
    routes: Routes,
    shutdown: ShutdownSignal,
) -> Result<(), Error> {
    let routes = routes
        .add_service(GrpcBrokerServer::new(Broker {
            shutdown: shutdown.clone(),
        }))
        .add_service(GrpcControllerServer::new(Controller {
            shutdown: shutdown.clone(),
        }));
    let incoming = UnixListenerStream::new(socket.listener);
    let stop = shutdown.clone();
    let server = tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, async move { stop.raised().await });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(Error::from),
        () = shutdown.raised() => {}
    }
    // Raised: the server is draining; give in-flight replies (the Shutdown answer itself)
    // a moment, then stop regardless of connections the host keeps open.
    match tokio::time::timeout(DRAIN, server).await {
        Ok(result) => result.map_err(Error::from),
        Err(_elapsed) => Ok(()),
    }
}

/// Writes the handshake line to `stdout` and flushes it.
///
/// # Errors
/// [`Error::Io`].
pub fn announce(socket: &PluginSocket, stdout: &mut dyn Write) -> Result<(), Error> {
    writeln!(stdout, "{}", socket.handshake_line())
        .and_then(|()| stdout.flush())
        .map_err(|source| Error::Io {
            context: "writing the handshake line",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn accepts_spire_environment() {
        check_environment(env(&[
            ("NodeAttestor", "NodeAttestor"),
            ("PLUGIN_PROTOCOL_VERSIONS", "1"),
        ]))
        .unwrap();
        check_environment(env(&[
            ("NodeAttestor", "NodeAttestor"),
            ("PLUGIN_PROTOCOL_VERSIONS", "2,1"),
        ]))
        .unwrap();
    }

    #[test]
    fn rejects_missing_cookie_with_not_a_plugin_host() {
        assert!(matches!(
            check_environment(env(&[("PLUGIN_PROTOCOL_VERSIONS", "1")])),
            Err(Error::NotAPluginHost { .. })
        ));
        assert!(matches!(
            check_environment(env(&[("NodeAttestor", "KeyManager")])),
            Err(Error::NotAPluginHost { .. })
        ));
    }

    #[test]
    fn rejects_other_versions_with_protocol_version() {
        assert!(matches!(
            check_environment(env(&[
                ("NodeAttestor", "NodeAttestor"),
                ("PLUGIN_PROTOCOL_VERSIONS", "2,3")
            ])),
            Err(Error::ProtocolVersion { .. })
        ));
    }
}
