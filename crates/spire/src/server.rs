//! The server plugin: `spire.plugin.server.nodeattestor.v1.NodeAttestor`.
//!
//! ```text
//!  SPIRE ─ payload = Hello ──────────────► Verifier::challenge (fresh nonce, TPM credential)
//!        ◄─ challenge = ChallengeResponse ─┘   (the PendingChallenge stays in this stream)
//!  SPIRE ─ challenge_response = Evidence ─► Verifier::verify (nonce, expiry, platform
//!                                           verifier, every policy of the platform)
//!        ◄─ AgentAttributes { spiffe://<td>/spire/agent/plinth/<platform>/<hardware id>,
//!                             selector values, can_reattest = true }
//! ```
//!
//! The pending challenge never leaves the stream that issued it, so it cannot be replayed
//! on another stream; the nonce is single-use by construction.

use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use futures_util::Stream;
use plinth_api::attestation::{Evidence, Hello};
use plinth_core::{SecureRandom, SpiffeId, TrustDomain};
use plinth_evidence::{Appraised, MAX_EVIDENCE_LEN, PendingChallenge};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::Routes;
use tonic::{Request, Response, Status, Streaming};

use crate::config::ServerConfig;
use crate::proto::config::config_server::ConfigServer;
use crate::proto::init::init_server::InitServer;
use crate::proto::server_nodeattestor::node_attestor_server::{NodeAttestor, NodeAttestorServer};
use crate::proto::server_nodeattestor::{
    AgentAttributes, AttestRequest, AttestResponse, attest_request, attest_response,
};
use crate::services::{ConfigService, Configurable, InitService};
use crate::{Clock, Error, proto};

/// The SPIRE plugin name plinth's agent IDs use (`/spire/agent/plinth/...`). SPIRE names
/// selectors after the configured plugin name, which should be this one.
pub const PLUGIN_NAME: &str = "plinth";

/// The server-side node attestor.
pub struct ServerPlugin {
    config: RwLock<Option<Arc<ServerConfig>>>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn SecureRandom>,
    #[cfg(feature = "test-vectors")]
    recorded: Option<PendingChallenge>,
}

impl std::fmt::Debug for ServerPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerPlugin")
            .field("configured", &self.configured().is_ok())
            .finish_non_exhaustive()
    }
}

impl ServerPlugin {
    /// A plugin that reads time from `clock` and nonces from `rng`; unconfigured until
    /// [`Configurable::configure`].
    pub fn new(clock: Arc<dyn Clock>, rng: Arc<dyn SecureRandom>) -> Self {
        Self {
            config: RwLock::new(None),
            clock,
            rng,
            #[cfg(feature = "test-vectors")]
            recorded: None,
        }
    }

    /// Test-only: a plugin that answers every payload with this recorded challenge instead
    /// of a fresh one, so that a Nitro or SEV-SNP vector (whose nonce is fixed) can travel
    /// the whole Attest RPC. Never reachable from the plugin's configuration or RPCs.
    #[cfg(feature = "test-vectors")]
    pub fn replaying(
        clock: Arc<dyn Clock>,
        rng: Arc<dyn SecureRandom>,
        recorded: PendingChallenge,
    ) -> Self {
        Self {
            recorded: Some(recorded),
            ..Self::new(clock, rng)
        }
    }

    /// The gRPC services: NodeAttestor, Config and Init.
    pub fn routes(self: &Arc<Self>) -> Routes {
        Routes::new(NodeAttestorServer::new(AttestService {
            plugin: Arc::clone(self),
        }))
        .add_service(ConfigServer::new(ConfigService {
            plugin: Arc::clone(self),
        }))
        .add_service(InitServer::new(InitService {
            plugin: Arc::clone(self),
            service_names: &[proto::SERVER_NODE_ATTESTOR, proto::CONFIG],
        }))
    }

    fn configured(&self) -> Result<Arc<ServerConfig>, Error> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Error::NotConfigured)
    }

    /// Step 1 → 2: decodes the payload (a `Hello`) and issues the challenge.
    ///
    /// # Errors
    /// [`Error::NotConfigured`], [`Error::Malformed`], the verifier's error.
    pub fn challenge(&self, payload: &[u8]) -> Result<(Vec<u8>, Exchange), Error> {
        let config = self.configured()?;
        let hello = decode::<Hello>("payload", payload)?;
        let now = self.clock.now()?;
        #[cfg(feature = "test-vectors")]
        if let Some(pending) = &self.recorded {
            let challenge = plinth_api::attestation::ChallengeResponse {
                nonce: pending.nonce.clone(),
                expires_at_ms: i64::try_from(pending.expires_at.as_millis()).unwrap_or(i64::MAX),
                credential: None,
                pcr_selection: Vec::new(),
            };
            return Ok((
                challenge.encode_to_vec(),
                Exchange {
                    config,
                    pending: pending.clone(),
                },
            ));
        }
        let (challenge, pending) =
            config
                .verifier
                .challenge(&hello, self.rng.as_ref(), now, config.nonce_ttl)?;
        Ok((challenge.encode_to_vec(), Exchange { config, pending }))
    }

    /// Step 3 → 4: verifies the challenge response (an `Evidence`) against the exchange's
    /// pending challenge and builds the agent's attributes.
    ///
    /// # Errors
    /// [`Error::Malformed`], the verifier's error (a policy refusal included),
    /// [`Error::NoHardwareId`].
    pub fn finish(
        &self,
        exchange: &Exchange,
        challenge_response: &[u8],
    ) -> Result<AgentAttributes, Error> {
        let evidence = decode::<Evidence>("challenge response", challenge_response)?;
        let now = self.clock.now()?;
        let appraised = exchange
            .config
            .verifier
            .verify(&exchange.pending, &evidence, now)?;
        attributes(&exchange.config.trust_domain, &appraised)
    }

    /// Test-only: finishes an exchange whose challenge was recorded elsewhere (the Nitro
    /// and SEV-SNP vectors carry a nonce this plugin did not issue). Never reachable from
    /// the plugin's configuration or RPCs.
    ///
    /// # Errors
    /// As [`ServerPlugin::finish`], and [`Error::NotConfigured`].
    #[cfg(feature = "test-vectors")]
    pub fn finish_recorded(
        &self,
        pending: PendingChallenge,
        challenge_response: &[u8],
    ) -> Result<AgentAttributes, Error> {
        let config = self.configured()?;
        self.finish(&Exchange { config, pending }, challenge_response)
    }
}

impl Configurable for ServerPlugin {
    fn configure(&self, trust_domain: &str, text: &str) -> Result<(), Error> {
        let config = ServerConfig::parse(trust_domain, text)?;
        tracing::info!(
            policies = config.verifier.policies().len(),
            nonce_ttl_s = config.nonce_ttl.as_secs(),
            "server plugin configuration loaded"
        );
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(config));
        Ok(())
    }

    fn validate(&self, trust_domain: &str, text: &str) -> Result<(), Error> {
        ServerConfig::parse(trust_domain, text).map(drop)
    }

    fn deconfigure(&self) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// One attestation in progress: the configuration that issued the challenge and what it
/// expects back.
#[derive(Debug)]
pub struct Exchange {
    config: Arc<ServerConfig>,
    pending: PendingChallenge,
}

fn decode<M: prost::Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M, Error> {
    if bytes.len() > MAX_EVIDENCE_LEN {
        return Err(Error::Evidence(plinth_evidence::Error::TooLarge {
            field: what,
            len: bytes.len(),
            max: MAX_EVIDENCE_LEN,
        }));
    }
    M::decode(bytes).map_err(|source| Error::Malformed { what, source })
}

/// The agent ID and selectors of a passing appraisal.
///
/// # Errors
/// [`Error::Evidence`] with the refusal when the appraisal did not pass;
/// [`Error::NoHardwareId`].
pub fn attributes(
    trust_domain: &TrustDomain,
    appraised: &Appraised,
) -> Result<AgentAttributes, Error> {
    let _identity = appraised.identity()?;
    let spiffe_id = agent_id(trust_domain, appraised)?;
    Ok(AgentAttributes {
        spiffe_id: spiffe_id.to_string(),
        selector_values: selector_values(appraised),
        can_reattest: true,
    })
}

/// `spiffe://<td>/spire/agent/plinth/<platform>/<hardware id>`: the hardware ID as it is
/// when it is a valid path segment of at most 128 characters (hex digests, Nitro module
/// IDs), otherwise the hex SHA-256 of it, so the ID is stable per machine.
///
/// # Errors
/// [`Error::NoHardwareId`], [`Error::AgentId`].
pub fn agent_id(trust_domain: &TrustDomain, appraised: &Appraised) -> Result<SpiffeId, Error> {
    let hardware_id = appraised.hardware_id().ok_or(Error::NoHardwareId)?;
    if hardware_id.is_empty() {
        return Err(Error::NoHardwareId);
    }
    let segment_ok = hardware_id.len() <= 128
        && hardware_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        && !hardware_id.starts_with('.');
    let segment = if segment_ok {
        hardware_id.to_owned()
    } else {
        plinth_crypto::digest(plinth_core::HashAlg::Sha256, hardware_id.as_bytes()).to_hex()
    };
    let path = format!(
        "/spire/agent/{PLUGIN_NAME}/{}/{segment}",
        appraised.platform().name()
    );
    SpiffeId::from_parts(trust_domain.clone(), &path).map_err(Error::AgentId)
}

/// The selector values (SPIRE adds the type, the plugin name `plinth`): every selector of
/// the appraisal, with plinth's own `plinth:` prefix dropped (it would repeat the type),
/// plus `verdict:<affirming|warning>`; sorted, without duplicates.
///
/// ```text
///  platform:tpm            policy:<name>          policy_hash:<sha256 hex>
///  verdict:affirming       tpm:ek_hash:<hex>      tpm:secure_boot:true
///  nitro:pcr0:<hex> ...    snp:measurement:<hex>  snp:chip_id:<hex>  snp:reported_tcb:<..>
///  <the policy's own selectors, as its [identity] section renders them>
/// ```
pub fn selector_values(appraised: &Appraised) -> Vec<String> {
    let mut values: Vec<String> = appraised
        .selectors()
        .into_iter()
        .map(|s| match s.strip_prefix("plinth:") {
            Some(rest) => rest.to_owned(),
            None => s,
        })
        .collect();
    values.push(format!(
        "verdict:{}",
        appraised.appraisal().verdict().name()
    ));
    values.sort();
    values.dedup();
    values
}

/// The `Attest` RPC over a shared [`ServerPlugin`].
struct AttestService {
    plugin: Arc<ServerPlugin>,
}

type AttestStream = Pin<Box<dyn Stream<Item = Result<AttestResponse, Status>> + Send>>;

fn refused(error: &Error) -> Status {
    match error {
        Error::Evidence(_) | Error::NoHardwareId => {
            tracing::warn!(%error, "attestation refused");
        }
        Error::Malformed { .. } | Error::Protocol(_) | Error::NotConfigured => {
            tracing::warn!(%error, "attestation rejected");
        }
        _ => tracing::error!(%error, "attestation failed"),
    }
    error.to_status()
}

#[tonic::async_trait]
impl NodeAttestor for AttestService {
    type AttestStream = AttestStream;

    async fn attest(
        &self,
        request: Request<Streaming<AttestRequest>>,
    ) -> Result<Response<AttestStream>, Status> {
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or(Error::Protocol("the stream ended before the payload"))
            .map_err(|e| refused(&e))?;
        let Some(attest_request::Request::Payload(payload)) = first.request else {
            return Err(refused(&Error::Protocol(
                "the first message must carry the payload",
            )));
        };
        let (challenge, exchange) = self.plugin.challenge(&payload).map_err(|e| refused(&e))?;

        let (sender, receiver) = mpsc::channel(2);
        let plugin = Arc::clone(&self.plugin);
        let _task = tokio::spawn(async move {
            let challenge = AttestResponse {
                response: Some(attest_response::Response::Challenge(challenge)),
            };
            if sender.send(Ok(challenge)).await.is_err() {
                return;
            }
            let result = match inbound.message().await {
                Ok(Some(AttestRequest {
                    request: Some(attest_request::Request::ChallengeResponse(answer)),
                })) => plugin.finish(&exchange, &answer),
                Ok(Some(_)) => Err(Error::Protocol(
                    "expected the challenge response after the challenge",
                )),
                Ok(None) => Err(Error::Protocol(
                    "the stream ended before the challenge response",
                )),
                Err(status) => {
                    tracing::debug!(%status, "attest stream broke");
                    return;
                }
            };
            let message = match result {
                Ok(attributes) => {
                    tracing::info!(
                        spiffe_id = %attributes.spiffe_id,
                        selectors = attributes.selector_values.len(),
                        "agent attested"
                    );
                    Ok(AttestResponse {
                        response: Some(attest_response::Response::AgentAttributes(attributes)),
                    })
                }
                Err(error) => Err(refused(&error)),
            };
            // The host may have gone; nothing to do then.
            let _sent = sender.send(message).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}
