//! Workload identities: the registrations the server holds under this node, and a short-
//! lived SVID for each, with a key the agent generates. The server mints them under the
//! node's attested identity (the agent calls with its node SVID); the agent renews each at
//! half its lifetime and tells the Workload API's streams when anything changes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use plinth_api::attestation::attestation_client::AttestationClient;
use plinth_api::attestation::{
    MintWorkloadJwtRequest, MintWorkloadX509Request, WorkloadRegistration,
    WorkloadRegistrationsRequest,
};
use plinth_core::{SpiffeId, TrustDomain, UnixTime};
use plinth_crypto::{Curve, EcdsaSigningKey, SystemRandom};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::Error;
use crate::node::Node;
use crate::workload::{
    Bundles, Identity, IdentitySource, Registration, X509Snapshot, X509SvidMaterial,
    matching_identities,
};

/// How often registrations are re-read when nothing else is due.
const REGISTRATION_POLL: Duration = Duration::from_secs(5);

/// One workload's current X.509-SVID.
pub struct WorkloadSvid {
    /// The SPIFFE ID.
    pub spiffe_id: SpiffeId,
    /// DER, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// The private key, PKCS#8 DER: the Workload API hands it to the workload.
    key_pkcs8: Zeroizing<Vec<u8>>,
    /// Expiry.
    pub not_after: UnixTime,
    issued_at: UnixTime,
}

impl std::fmt::Debug for WorkloadSvid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadSvid")
            .field("spiffe_id", &self.spiffe_id)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl WorkloadSvid {
    /// The private key (PKCS#8 DER) for the workload the SVID names.
    pub fn key_pkcs8(&self) -> &[u8] {
        &self.key_pkcs8
    }

    fn renew_at(&self) -> UnixTime {
        self.issued_at.halfway_to(self.not_after)
    }
}

/// What the Workload API serves, as of the last refresh.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Workload registrations under this node.
    pub registrations: Vec<WorkloadRegistration>,
    /// Current SVIDs by SPIFFE ID.
    pub svids: HashMap<String, Arc<WorkloadSvid>>,
    /// The X.509 bundle (DER roots).
    pub bundle_x509: Vec<Vec<u8>>,
    /// The JWT bundle (standard JWKS).
    pub bundle_jwt_jwks: String,
}

/// The node's workload identities.
pub struct Workloads {
    node: Arc<Node>,
    snapshot: RwLock<Arc<Snapshot>>,
    changes: watch::Sender<u64>,
}

impl Workloads {
    /// Workload identities under `node`.
    pub fn new(node: Arc<Node>) -> Self {
        let (changes, _) = watch::channel(0);
        Self {
            node,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            changes,
        }
    }

    /// The current state.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .map_or_else(|p| Arc::clone(&p.into_inner()), |s| Arc::clone(&s))
    }

    /// Ticks on every change of SVIDs, registrations or bundle.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The trust domain of the node (and so of its workloads).
    fn trust_domain(&self) -> Option<TrustDomain> {
        self.node
            .current()
            .map(|svid| svid.spiffe_id.trust_domain().clone())
    }

    async fn client(&self) -> Result<AttestationClient<tonic::transport::Channel>, Error> {
        if self.node.current().is_none() {
            return Err(Error::Agent("the node has no valid SVID yet".into()));
        }
        Ok(AttestationClient::new(self.node.channel().await?))
    }

    /// A JWT-SVID for `id` and `audience`, minted by the server now.
    ///
    /// # Errors
    /// [`Error::Connect`], [`Error::Refused`].
    pub async fn jwt_svid(&self, id: &SpiffeId, audience: &[String]) -> Result<String, Error> {
        let mut client = self.client().await?;
        let reply = client
            .mint_workload_jwt(MintWorkloadJwtRequest {
                spiffe_id: id.to_string(),
                audience: audience.to_vec(),
            })
            .await
            .map_err(Error::Refused)?;
        Ok(reply.into_inner().token)
    }

    /// Re-reads the registrations and renews every SVID past half its life (or missing).
    /// Returns when the next renewal is due.
    ///
    /// # Errors
    /// [`Error::Connect`], [`Error::Refused`], [`Error::Crypto`].
    pub async fn refresh(&self, now: UnixTime) -> Result<UnixTime, Error> {
        let mut client = self.client().await?;
        let listed = client
            .workload_registrations(WorkloadRegistrationsRequest {})
            .await
            .map_err(Error::Refused)?
            .into_inner();
        let previous = self.snapshot();
        let mut svids = HashMap::new();
        let mut changed = previous.registrations != listed.registrations
            || previous.bundle_x509 != listed.bundle_x509
            || previous.bundle_jwt_jwks != listed.bundle_jwt_jwks;
        for registration in &listed.registrations {
            let current = previous
                .svids
                .get(&registration.spiffe_id)
                .filter(|svid| svid.renew_at() > now);
            let svid = if let Some(svid) = current {
                Arc::clone(svid)
            } else {
                changed = true;
                Arc::new(self.mint(&mut client, &registration.spiffe_id, now).await?)
            };
            let _previous = svids.insert(registration.spiffe_id.clone(), svid);
        }
        let next = svids
            .values()
            .map(|svid| svid.renew_at())
            .min()
            .unwrap_or(UnixTime::from_millis(u64::MAX));
        if changed {
            let snapshot = Arc::new(Snapshot {
                registrations: listed.registrations,
                svids,
                bundle_x509: listed.bundle_x509,
                bundle_jwt_jwks: listed.bundle_jwt_jwks,
            });
            if let Ok(mut guard) = self.snapshot.write() {
                *guard = snapshot;
            }
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(next)
    }

    async fn mint(
        &self,
        client: &mut AttestationClient<tonic::transport::Channel>,
        spiffe_id: &str,
        now: UnixTime,
    ) -> Result<WorkloadSvid, Error> {
        let key = EcdsaSigningKey::generate(Curve::P256, &SystemRandom)?;
        let reply = client
            .mint_workload_x509(MintWorkloadX509Request {
                spiffe_id: spiffe_id.to_owned(),
                public_key: key.public_key().spki_der().to_vec(),
            })
            .await
            .map_err(Error::Refused)?
            .into_inner();
        let id = SpiffeId::parse(spiffe_id)
            .map_err(|e| Error::Agent(format!("registration {spiffe_id}: {e}")))?;
        tracing::info!(spiffe_id, "workload SVID issued");
        Ok(WorkloadSvid {
            spiffe_id: id,
            chain: reply.svid_chain,
            key_pkcs8: key.to_pkcs8()?,
            not_after: UnixTime::from_millis(u64::try_from(reply.expires_at_ms).unwrap_or(0)),
            issued_at: now,
        })
    }

    /// Keeps the workload SVIDs fresh until `shutdown` resolves.
    pub async fn run(
        &self,
        clock: Arc<dyn crate::node::AgentClock>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut node = self.node.subscribe();
        loop {
            let now = clock.now();
            let wait = match self.refresh(now).await {
                Ok(next) => Duration::from_millis(next.as_millis().saturating_sub(now.as_millis()))
                    .min(REGISTRATION_POLL),
                Err(error) => {
                    tracing::warn!(%error, "workload SVIDs not refreshed; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait.max(Duration::from_millis(100))) => {}
                _ = node.changed() => {}
                () = &mut shutdown => return,
            }
        }
    }
}

/// The Workload API reads the agent's workload identities through this.
impl IdentitySource for Workloads {
    fn identities_for(&self, selectors: &[String]) -> Vec<Identity> {
        let registrations: Vec<Registration> = self
            .snapshot()
            .registrations
            .iter()
            .filter_map(|r| {
                Some(Registration {
                    id: SpiffeId::parse(&r.spiffe_id).ok()?,
                    selectors: r.selectors.clone(),
                    hint: String::new(),
                })
            })
            .collect();
        matching_identities(&registrations, selectors)
    }

    fn x509(&self, identities: &[Identity]) -> Option<X509Snapshot> {
        let snapshot = self.snapshot();
        let bundles = self.bundles()?.x509;
        let svids = identities
            .iter()
            .filter_map(|identity| snapshot.svids.get(&identity.id.to_string()))
            .map(|svid| X509SvidMaterial {
                id: svid.spiffe_id.clone(),
                chain_der: svid.chain.concat(),
                key_pkcs8: Zeroizing::new(svid.key_pkcs8().to_vec()),
            })
            .collect();
        Some(X509Snapshot { svids, bundles })
    }

    fn changes(&self) -> watch::Receiver<u64> {
        Workloads::changes(self)
    }

    fn jwt_svid<'a>(
        &'a self,
        id: &'a SpiffeId,
        audience: &'a [String],
    ) -> BoxFuture<'a, Result<String, tonic::Status>> {
        Box::pin(async move {
            Workloads::jwt_svid(self, id, audience)
                .await
                .map_err(|error| match error {
                    Error::Refused(status) => status,
                    other => tonic::Status::unavailable(other.to_string()),
                })
        })
    }

    fn bundles(&self) -> Option<Bundles> {
        let snapshot = self.snapshot();
        if snapshot.bundle_x509.is_empty() {
            return None;
        }
        let trust_domain = self.trust_domain()?;
        let mut bundles = Bundles::default();
        let _x509 = bundles
            .x509
            .insert(trust_domain.clone(), snapshot.bundle_x509.concat());
        let _jwt = bundles
            .jwt
            .insert(trust_domain, snapshot.bundle_jwt_jwks.clone());
        Some(bundles)
    }
}
