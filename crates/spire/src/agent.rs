//! The agent plugin: `spire.plugin.agent.nodeattestor.v1.NodeAttestor`.
//!
//! ```text
//!  spire-agent opens AidAttestation
//!    plugin ─ payload = Hello { TPM: EK certificate, EK public, AK public } ─►
//!    ◄─ challenge = ChallengeResponse { nonce, credential, PCR selection }
//!    plugin: TPM2_ActivateCredential, TPM2_Quote(selection, nonce), event log
//!    plugin ─ challenge_response = Evidence { nonce, activated secret, quote, PCRs, log } ─►
//! ```
//!
//! The TPM is reached through tss-esapi, which blocks, so each attestation runs on its own
//! blocking thread holding one [`TpmCollector`]: the AK announced in the hello is the AK
//! that quotes. No SVID key is certified: SPIRE issues the agent's SVID for its own key.

use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use futures_util::Stream;
use plinth_agent::TpmCollector;
use plinth_api::attestation::{ChallengeResponse, Evidence, Hello};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::Routes;
use tonic::{Request, Response, Status, Streaming};

use crate::config::AgentConfig;
use crate::proto::agent_nodeattestor::node_attestor_server::{NodeAttestor, NodeAttestorServer};
use crate::proto::agent_nodeattestor::{
    Challenge, PayloadOrChallengeResponse, payload_or_challenge_response,
};
use crate::proto::config::config_server::ConfigServer;
use crate::proto::init::init_server::InitServer;
use crate::services::{ConfigService, Configurable, InitService};
use crate::{Error, proto};

/// The most challenges one attestation answers (plinth's server sends exactly one).
const MAX_CHALLENGES: usize = 4;

/// The agent-side node attestor.
#[derive(Debug, Default)]
pub struct AgentPlugin {
    config: RwLock<Option<AgentConfig>>,
}

impl AgentPlugin {
    /// An unconfigured plugin.
    pub fn new() -> Self {
        Self::default()
    }

    /// The gRPC services: NodeAttestor, Config and Init.
    pub fn routes(self: &Arc<Self>) -> Routes {
        Routes::new(NodeAttestorServer::new(AidService {
            plugin: Arc::clone(self),
        }))
        .add_service(ConfigServer::new(ConfigService {
            plugin: Arc::clone(self),
        }))
        .add_service(InitServer::new(InitService {
            plugin: Arc::clone(self),
            service_names: &[proto::AGENT_NODE_ATTESTOR, proto::CONFIG],
        }))
    }

    fn configured(&self) -> Result<AgentConfig, Error> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Error::NotConfigured)
    }
}

impl Configurable for AgentPlugin {
    fn configure(&self, _trust_domain: &str, text: &str) -> Result<(), Error> {
        let config = AgentConfig::parse(text)?;
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Some(config);
        Ok(())
    }

    fn validate(&self, _trust_domain: &str, text: &str) -> Result<(), Error> {
        AgentConfig::parse(text).map(drop)
    }

    fn deconfigure(&self) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// One attestation's worth of TPM work.
struct TpmSession {
    collector: TpmCollector,
    config: AgentConfig,
}

impl TpmSession {
    fn open(config: AgentConfig) -> Result<Self, Error> {
        let collector = TpmCollector::open(&config.tcti)?;
        Ok(Self { collector, config })
    }

    fn hello(&mut self) -> Result<Hello, Error> {
        Ok(plinth_agent::exchange::tpm_hello(&mut self.collector)?)
    }

    /// SPIRE issues its own SVIDs, so the evidence binds no key: the quote and the
    /// activated credential only.
    fn answer(&mut self, challenge: &ChallengeResponse) -> Result<Evidence, Error> {
        let event_log = match &self.config.event_log {
            None => None,
            Some((path, required)) => match plinth_agent::read_event_log(path) {
                Ok(log) => Some(log),
                Err(error) if !*required => {
                    tracing::warn!(%error, "no event log sent");
                    None
                }
                Err(error) => return Err(error.into()),
            },
        };
        Ok(plinth_agent::exchange::tpm_quote_evidence(
            &mut self.collector,
            challenge,
            event_log,
        )?)
    }
}

/// Runs one attestation on the calling (blocking) thread: the payload first, then one
/// answer per challenge until the host closes the stream.
fn run_session(
    config: AgentConfig,
    challenges: &std::sync::mpsc::Receiver<Vec<u8>>,
    out: &mpsc::Sender<Result<PayloadOrChallengeResponse, Status>>,
) -> Result<(), Error> {
    let mut session = TpmSession::open(config)?;
    let hello = session.hello()?;
    let payload = PayloadOrChallengeResponse {
        data: Some(payload_or_challenge_response::Data::Payload(
            hello.encode_to_vec(),
        )),
    };
    if out.blocking_send(Ok(payload)).is_err() {
        return Ok(());
    }
    for (count, challenge) in challenges.iter().enumerate() {
        if count >= MAX_CHALLENGES {
            return Err(Error::Protocol("too many challenges"));
        }
        let challenge =
            ChallengeResponse::decode(challenge.as_slice()).map_err(|source| Error::Malformed {
                what: "challenge",
                source,
            })?;
        let evidence = session.answer(&challenge)?;
        let response = PayloadOrChallengeResponse {
            data: Some(payload_or_challenge_response::Data::ChallengeResponse(
                evidence.encode_to_vec(),
            )),
        };
        if out.blocking_send(Ok(response)).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

struct AidService {
    plugin: Arc<AgentPlugin>,
}

type AidStream = Pin<Box<dyn Stream<Item = Result<PayloadOrChallengeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl NodeAttestor for AidService {
    type AidAttestationStream = AidStream;

    async fn aid_attestation(
        &self,
        request: Request<Streaming<Challenge>>,
    ) -> Result<Response<AidStream>, Status> {
        let config = self.plugin.configured().map_err(|e| e.to_status())?;
        let mut inbound = request.into_inner();
        let (out, receiver) = mpsc::channel(2);
        let (challenge_sender, challenges) = std::sync::mpsc::channel::<Vec<u8>>();
        let _relay = tokio::spawn(async move {
            while let Ok(Some(Challenge { challenge })) = inbound.message().await {
                if challenge_sender.send(challenge).is_err() {
                    break;
                }
            }
        });
        let _worker = tokio::task::spawn_blocking(move || {
            if let Err(error) = run_session(config, &challenges, &out) {
                tracing::error!(%error, "attestation data could not be gathered");
                let _sent = out.blocking_send(Err(error.to_status()));
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}
