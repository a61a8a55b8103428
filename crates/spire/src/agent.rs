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
//! With `platform = "nitro"` or `"snp"` the payload names only the platform, and the
//! answer is an NSM attestation document or an SNP report over the nonce.
//!
//! The devices block, so each attestation runs on its own blocking thread holding one
//! evidence source: for a TPM, the AK announced in the hello is the AK that quotes. No
//! SVID key is bound: SPIRE issues the agent's SVID for its own key.

use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use futures_util::Stream;
use plinth_agent::collect::EvidenceSource;
use plinth_api::attestation::ChallengeResponse;
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

/// Opens the configured platform's evidence source for one attestation. An event log
/// that was not configured explicitly is sent only when it can be read.
fn open_source(config: &AgentConfig) -> Result<Box<dyn EvidenceSource>, Error> {
    let event_log = match &config.event_log {
        None => None,
        Some((path, true)) => Some(path.clone()),
        Some((path, false)) => match std::fs::File::open(path) {
            Ok(_) => Some(path.clone()),
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "no event log sent");
                None
            }
        },
    };
    Ok(plinth_agent::collect::open(
        config.platform,
        &config.tcti,
        event_log,
        config.snp_vek_certificate.as_deref(),
    )?)
}

/// Runs one attestation on the calling (blocking) thread: the payload first, then one
/// answer per challenge until the host closes the stream.
fn run_session(
    config: &AgentConfig,
    challenges: &std::sync::mpsc::Receiver<Vec<u8>>,
    out: &mpsc::Sender<Result<PayloadOrChallengeResponse, Status>>,
) -> Result<(), Error> {
    let mut source = open_source(config)?;
    let hello = source.hello()?;
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
        // SPIRE issues its own SVIDs, so the evidence binds no key.
        let evidence = source.evidence_without_key(&challenge)?;
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
            if let Err(error) = run_session(&config, &challenges, &out) {
                tracing::error!(%error, "attestation data could not be gathered");
                let _sent = out.blocking_send(Err(error.to_status()));
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}
