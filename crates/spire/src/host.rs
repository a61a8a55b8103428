//! SPIRE's side of the plugin protocol, for tests and benchmarks (feature `host`).
//!
//! It does what `spire-server`/`spire-agent` do when they load an external plugin
//! (SPIFFE-SPIRE-FACTS §1, §2): start the process with go-plugin's environment, read and
//! check the handshake line, dial the unix socket (plaintext HTTP/2), open the broker
//! stream and announce the host services as service 1, call Init, Configure, then Attest
//! (server) or AidAttestation (agent) exactly as SPIRE relays them, and finally Deinit and
//! Shutdown.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::proto;
use crate::proto::agent_nodeattestor::node_attestor_client::NodeAttestorClient as AgentClient;
use crate::proto::agent_nodeattestor::{Challenge, payload_or_challenge_response};
use crate::proto::config::config_client::ConfigClient;
use crate::proto::config::{ConfigureRequest, CoreConfiguration};
use crate::proto::goplugin::grpc_broker_client::GrpcBrokerClient;
use crate::proto::goplugin::grpc_controller_client::GrpcControllerClient;
use crate::proto::goplugin::{ConnInfo, Empty};
use crate::proto::init::init_client::InitClient;
use crate::proto::init::{DeinitRequest, InitRequest};
use crate::proto::server_nodeattestor::node_attestor_client::NodeAttestorClient as ServerClient;
use crate::proto::server_nodeattestor::{
    AgentAttributes, AttestRequest, attest_request, attest_response,
};

/// How long go-plugin waits for the handshake line.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// The host services SPIRE announces to server plugins in Init.
pub const SERVER_HOST_SERVICES: [&str; 3] = [
    "spire.hostservice.server.identityprovider.v1.IdentityProvider",
    "spire.hostservice.server.agentstore.v1.AgentStore",
    "spire.hostservice.common.metrics.v1.Metrics",
];

/// What went wrong on the host side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// Starting or talking to the process failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No handshake line in time, or the process exited first.
    #[error("no handshake line: {0}")]
    NoHandshake(String),
    /// The handshake line breaks go-plugin's rules.
    #[error("bad handshake line {line:?}: {reason}")]
    BadHandshake {
        /// The line.
        line: String,
        /// The rule broken.
        reason: &'static str,
    },
    /// Dialing the socket failed.
    #[error("connecting to the plugin: {0}")]
    Connect(#[from] tonic::transport::Error),
    /// An RPC failed.
    #[error("{rpc}: {status}")]
    Rpc {
        /// Which call.
        rpc: &'static str,
        /// Its status.
        status: Status,
    },
    /// Init did not list the service SPIRE needs.
    #[error("the plugin does not serve {0}")]
    MissingService(&'static str),
}

/// A parsed handshake line (`CORE|APP|NETWORK|ADDR|PROTOCOL[|CERT[|MUX]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The socket path.
    pub address: PathBuf,
}

/// Parses the handshake line as go-plugin's client does for SPIRE: at least four parts,
/// core version 1, app version among those offered (1), network `unix` with an absolute
/// path, protocol `grpc` (SPIRE allows no other), and no server certificate (SPIRE runs
/// without AutoMTLS).
///
/// # Errors
/// [`HostError::BadHandshake`].
pub fn parse_handshake(line: &str) -> Result<Handshake, HostError> {
    let bad = |reason| HostError::BadHandshake {
        line: line.to_owned(),
        reason,
    };
    let parts: Vec<&str> = line.trim().split('|').collect();
    let [core, app, network, address, rest @ ..] = parts.as_slice() else {
        return Err(bad("fewer than four parts"));
    };
    if *core != "1" {
        return Err(bad("core protocol version is not 1"));
    }
    if *app != "1" {
        return Err(bad("app protocol version is not one the host offered"));
    }
    if *network != "unix" {
        return Err(bad("network is not unix"));
    }
    let address = PathBuf::from(address);
    if !address.is_absolute() {
        return Err(bad("socket path is not absolute"));
    }
    match rest {
        [protocol, extra @ ..] if *protocol == "grpc" => {
            if extra.first().is_some_and(|cert| !cert.is_empty()) {
                return Err(bad("a server certificate, but SPIRE runs without TLS"));
            }
        }
        _ => return Err(bad("protocol is not grpc")),
    }
    Ok(Handshake { address })
}

/// A plugin process started the way SPIRE starts it. Killed on drop if still running.
#[derive(Debug)]
pub struct PluginProcess {
    child: Child,
    handshake: Handshake,
    line: String,
    stdout_after: Arc<Mutex<Vec<u8>>>,
    stdout_reader: Option<thread::JoinHandle<()>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl PluginProcess {
    /// Starts `program args` with the host's environment plus go-plugin's variables, and
    /// waits for the handshake line.
    ///
    /// # Errors
    /// [`HostError::Io`], [`HostError::NoHandshake`], [`HostError::BadHandshake`].
    pub fn spawn(program: &Path, args: &[&str]) -> Result<Self, HostError> {
        let mut child = Command::new(program)
            .args(args)
            .env("NodeAttestor", "NodeAttestor")
            .env("PLUGIN_MIN_PORT", "10000")
            .env("PLUGIN_MAX_PORT", "25000")
            .env("PLUGIN_PROTOCOL_VERSIONS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| HostError::Io {
                context: "starting the plugin",
                source,
            })?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            let _reader = thread::spawn(move || {
                let mut buffer = [0; 4096];
                while let Ok(n) = pipe.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    if let Some(chunk) = buffer.get(..n) {
                        sink.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .extend_from_slice(chunk);
                    }
                }
            });
        }
        let stdout = child.stdout.take().ok_or_else(|| HostError::Io {
            context: "taking the plugin's stdout",
            source: std::io::Error::other("no pipe"),
        })?;
        let (line_sender, line_receiver) = std::sync::mpsc::channel();
        let stdout_after = Arc::new(Mutex::new(Vec::new()));
        let after = Arc::clone(&stdout_after);
        let stdout_reader = thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line).map(|_| line);
            let _sent = line_sender.send(read);
            let mut rest = Vec::new();
            let _read = reader.read_to_end(&mut rest);
            after
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(&rest);
        });
        let line = match line_receiver.recv_timeout(HANDSHAKE_TIMEOUT) {
            Ok(Ok(line)) if !line.is_empty() => line,
            other => {
                let _killed = child.kill();
                let _status = child.wait();
                let stderr =
                    String::from_utf8_lossy(&stderr.lock().unwrap_or_else(PoisonError::into_inner))
                        .into_owned();
                return Err(HostError::NoHandshake(format!(
                    "{other:?}; stderr: {stderr}"
                )));
            }
        };
        let handshake = parse_handshake(&line)?;
        Ok(Self {
            child,
            handshake,
            line,
            stdout_after,
            stdout_reader: Some(stdout_reader),
            stderr,
        })
    }

    /// The handshake.
    pub const fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The handshake line as printed (with its newline).
    pub fn handshake_line(&self) -> &str {
        &self.line
    }

    /// Everything the plugin wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned()
    }

    /// Dials the plugin's socket.
    ///
    /// # Errors
    /// [`HostError::Connect`].
    pub async fn connect(&self) -> Result<Channel, HostError> {
        connect(&self.handshake.address).await
    }

    /// Waits for the process to exit within `limit` (polling); kills it otherwise.
    ///
    /// Returns the exit status, or `None` if it had to be killed, and what it wrote to
    /// stdout after the handshake line.
    ///
    /// # Errors
    /// [`HostError::Io`].
    pub fn wait_exit(
        &mut self,
        limit: Duration,
    ) -> Result<(Option<ExitStatus>, Vec<u8>), HostError> {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().map_err(|source| HostError::Io {
                context: "waiting for the plugin",
                source,
            })? {
                break Some(status);
            }
            if start.elapsed() > limit {
                let _killed = self.child.kill();
                let _status = self.child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(10));
        };
        if let Some(reader) = self.stdout_reader.take() {
            let _joined = reader.join();
        }
        let after = self
            .stdout_after
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Ok((status, after))
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _killed = self.child.kill();
            let _status = self.child.wait();
        }
    }
}

/// Dials a plugin socket the way go-plugin does: plaintext HTTP/2 over the unix socket,
/// authority `unused`.
///
/// # Errors
/// [`HostError::Connect`].
pub async fn connect(path: &Path) -> Result<Channel, HostError> {
    let path = path.to_path_buf();
    let channel = Endpoint::from_static("http://unused")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await?;
    Ok(channel)
}

fn rpc(rpc: &'static str) -> impl FnOnce(Status) -> HostError {
    move |status| HostError::Rpc { rpc, status }
}

/// A loaded plugin, as SPIRE holds it: the channel, the open broker stream, the names it
/// reported in Init.
#[derive(Debug)]
pub struct LoadedPlugin {
    channel: Channel,
    _broker: mpsc::Sender<ConnInfo>,
    /// The services the plugin listed in Init.
    pub plugin_services: Vec<String>,
}

impl LoadedPlugin {
    /// Opens the broker stream, announces the host services as service 1 (as SPIRE's
    /// `Accept(1)` does) and calls Init; checks the plugin lists `required`.
    ///
    /// # Errors
    /// [`HostError::Rpc`], [`HostError::MissingService`].
    pub async fn load(channel: Channel, required: &'static str) -> Result<Self, HostError> {
        let (broker, outbound) = mpsc::channel(4);
        let mut broker_client = GrpcBrokerClient::new(channel.clone());
        broker
            .send(ConnInfo {
                service_id: 1,
                network: "unix".into(),
                address: "/tmp/plinth-host-services.sock".into(),
                knock: None,
            })
            .await
            .map_err(|_| HostError::Rpc {
                rpc: "broker",
                status: Status::internal("broker closed"),
            })?;
        let inbound = broker_client
            .start_stream(ReceiverStream::new(outbound))
            .await
            .map_err(rpc("GRPCBroker/StartStream"))?
            .into_inner();
        let _drain = tokio::spawn(async move {
            let mut inbound = inbound;
            while let Ok(Some(_info)) = inbound.message().await {}
        });
        let init = InitClient::new(channel.clone())
            .init(InitRequest {
                host_service_names: SERVER_HOST_SERVICES.map(str::to_owned).to_vec(),
            })
            .await
            .map_err(rpc("Init"))?
            .into_inner();
        if !init.plugin_service_names.iter().any(|s| s == required) {
            return Err(HostError::MissingService(required));
        }
        Ok(Self {
            channel,
            _broker: broker,
            plugin_services: init.plugin_service_names,
        })
    }

    /// Config/Configure.
    ///
    /// # Errors
    /// The plugin's status.
    pub async fn configure(&self, trust_domain: &str, hcl: &str) -> Result<(), Status> {
        ConfigClient::new(self.channel.clone())
            .configure(ConfigureRequest {
                core_configuration: Some(CoreConfiguration {
                    trust_domain: trust_domain.to_owned(),
                }),
                hcl_configuration: hcl.to_owned(),
            })
            .await
            .map(drop)
    }

    /// Init/Deinit then GRPCController/Shutdown, as SPIRE unloads a plugin.
    ///
    /// # Errors
    /// [`HostError::Rpc`] for Deinit (Shutdown errors are ignored, as SPIRE does).
    pub async fn unload(self) -> Result<(), HostError> {
        let _deinit = InitClient::new(self.channel.clone())
            .deinit(DeinitRequest {})
            .await
            .map_err(rpc("Deinit"))?;
        let _shutdown = GrpcControllerClient::new(self.channel.clone())
            .shutdown(Empty {})
            .await;
        Ok(())
    }

    /// The server side of SPIRE's node attestation (`pkg/server/plugin/nodeattestor/v1.go`):
    /// sends `payload`, relays each challenge through `answer`, returns the attributes.
    /// Missing attributes, an empty SPIFFE ID or an early end are `Internal`, as in SPIRE.
    ///
    /// # Errors
    /// The plugin's status, or `answer`'s.
    pub async fn attest(
        &self,
        payload: Vec<u8>,
        mut answer: impl AsyncAnswer,
    ) -> Result<AgentAttributes, Status> {
        let (sender, outbound) = mpsc::channel(2);
        sender
            .send(AttestRequest {
                request: Some(attest_request::Request::Payload(payload)),
            })
            .await
            .map_err(|_| Status::internal("host stream closed"))?;
        let mut inbound = ServerClient::new(self.channel.clone())
            .attest(ReceiverStream::new(outbound))
            .await?
            .into_inner();
        loop {
            let Some(response) = inbound.message().await? else {
                return Err(Status::internal(
                    "plugin closed stream before returning attestation result",
                ));
            };
            match response.response {
                Some(attest_response::Response::AgentAttributes(attributes)) => {
                    if attributes.spiffe_id.is_empty() {
                        return Err(Status::internal("plugin returned an empty SPIFFE ID"));
                    }
                    return Ok(attributes);
                }
                Some(attest_response::Response::Challenge(challenge)) => {
                    let response = answer.answer(challenge).await?;
                    sender
                        .send(AttestRequest {
                            request: Some(attest_request::Request::ChallengeResponse(response)),
                        })
                        .await
                        .map_err(|_| Status::internal("host stream closed"))?;
                }
                None => return Err(Status::internal("plugin sent an empty response")),
            }
        }
    }

    /// The agent side (`pkg/agent/plugin/nodeattestor/v1.go`): opens AidAttestation and
    /// returns the payload and a handle that relays challenges.
    ///
    /// # Errors
    /// The plugin's status; `Internal` if the first message is not the payload.
    pub async fn aid_attestation(&self) -> Result<(Vec<u8>, AgentStream), Status> {
        let (sender, outbound) = mpsc::channel(2);
        let mut inbound = AgentClient::new(self.channel.clone())
            .aid_attestation(ReceiverStream::new(outbound))
            .await?
            .into_inner();
        let first = inbound.message().await?.ok_or_else(|| {
            Status::internal("plugin closed stream before returning attestation data")
        })?;
        match first.data {
            Some(payload_or_challenge_response::Data::Payload(payload)) if !payload.is_empty() => {
                Ok((payload, AgentStream { sender, inbound }))
            }
            _ => Err(Status::internal(
                "plugin response missing attestation payload",
            )),
        }
    }
}

/// The open AidAttestation stream of an agent plugin.
#[derive(Debug)]
pub struct AgentStream {
    sender: mpsc::Sender<Challenge>,
    inbound: tonic::Streaming<proto::agent_nodeattestor::PayloadOrChallengeResponse>,
}

impl AgentStream {
    /// Relays one challenge and returns the plugin's challenge response.
    ///
    /// # Errors
    /// The plugin's status; `Internal` for a missing response.
    pub async fn challenge(&mut self, challenge: Vec<u8>) -> Result<Vec<u8>, Status> {
        self.sender
            .send(Challenge { challenge })
            .await
            .map_err(|_| Status::internal("agent stream closed"))?;
        let response = self.inbound.message().await?.ok_or_else(|| {
            Status::internal("plugin closed stream before returning the challenge response")
        })?;
        match response.data {
            Some(payload_or_challenge_response::Data::ChallengeResponse(answer)) => Ok(answer),
            _ => Err(Status::new(
                Code::Internal,
                "plugin response missing challenge response",
            )),
        }
    }
}

/// Produces the challenge response for a challenge (the agent, through SPIRE).
pub trait AsyncAnswer: Send {
    /// Answers one challenge.
    fn answer(
        &mut self,
        challenge: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<Vec<u8>, Status>> + Send;
}

impl AsyncAnswer for &mut AgentStream {
    async fn answer(&mut self, challenge: Vec<u8>) -> Result<Vec<u8>, Status> {
        self.challenge(challenge).await
    }
}

/// An answer computed from the challenge alone (a recorded or forged response).
#[derive(Debug)]
pub struct FnAnswer<F>(pub F);

impl<F> AsyncAnswer for FnAnswer<F>
where
    F: FnMut(Vec<u8>) -> Result<Vec<u8>, Status> + Send,
{
    async fn answer(&mut self, challenge: Vec<u8>) -> Result<Vec<u8>, Status> {
        (self.0)(challenge)
    }
}

/// An agent stream whose answers pass through `tamper` on the way to the server (what an
/// attacker between agent and server could do).
#[derive(Debug)]
pub struct Tampered<'a, F> {
    /// The agent.
    pub agent: &'a mut AgentStream,
    /// The change.
    pub tamper: F,
}

impl<F> AsyncAnswer for Tampered<'_, F>
where
    F: FnMut(Vec<u8>) -> Vec<u8> + Send,
{
    async fn answer(&mut self, challenge: Vec<u8>) -> Result<Vec<u8>, Status> {
        let answer = self.agent.challenge(challenge).await?;
        Ok((self.tamper)(answer))
    }
}

/// A whole node attestation as SPIRE runs it: the agent plugin's payload to the server
/// plugin, each challenge back to the agent plugin, the attributes out.
///
/// # Errors
/// Either plugin's status.
pub async fn attest_through(
    agent: &LoadedPlugin,
    server: &LoadedPlugin,
) -> Result<AgentAttributes, Status> {
    let (payload, mut stream) = agent.aid_attestation().await?;
    server.attest(payload, &mut stream).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spire_handshake_lines() {
        let h = parse_handshake("1|1|unix|/tmp/plugin1/plugin.sock|grpc\n").unwrap();
        assert_eq!(h.address, PathBuf::from("/tmp/plugin1/plugin.sock"));
        assert!(parse_handshake("1|1|unix|/tmp/p|grpc|").is_ok());
    }

    #[test]
    fn rejects_bad_handshake_lines_with_bad_handshake() {
        for line in [
            "1|1|unix",
            "2|1|unix|/tmp/p|grpc",
            "1|2|unix|/tmp/p|grpc",
            "1|1|tcp|127.0.0.1:1234|grpc",
            "1|1|unix|relative|grpc",
            "1|1|unix|/tmp/p|netrpc",
            "1|1|unix|/tmp/p",
            "1|1|unix|/tmp/p|grpc|MIIBcert",
        ] {
            assert!(
                matches!(parse_handshake(line), Err(HostError::BadHandshake { .. })),
                "{line}"
            );
        }
    }
}
