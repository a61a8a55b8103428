//! The admin API: registrations and node lifecycle. On the unix socket every caller is an
//! admin (the socket is 0600 in the data directory); on the TLS endpoint only callers whose
//! SVID was issued here to one of `admin_ids`.

use std::sync::Arc;

use plinth_api::admin::admin_server::Admin;
use plinth_api::admin::{
    BanNodeRequest, BanNodeResponse, CreateRegistrationRequest, DeleteRegistrationRequest,
    DeleteRegistrationResponse, EvictNodeRequest, EvictNodeResponse, ListNodesRequest,
    ListNodesResponse, ListRegistrationsRequest, ListRegistrationsResponse, Node, NodeSelector,
    Registration, UnbanNodeRequest, UnbanNodeResponse, node_selector,
};
use plinth_core::{SpiffeId, UnixTime};
use plinth_store::{BanKind, NewRegistration};
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::attest::peer_serial;
use crate::error::Error;

/// Where the admin API is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// The local unix socket.
    UnixSocket,
    /// The TLS endpoint: the caller must present an admin SVID.
    Tls,
}

/// The admin service.
#[derive(Clone)]
pub(crate) struct AdminService {
    pub(crate) app: Arc<App>,
    pub(crate) transport: Transport,
}

fn millis(time: UnixTime) -> i64 {
    i64::try_from(time.as_millis()).unwrap_or(i64::MAX)
}

fn to_wire(r: plinth_store::Registration) -> Registration {
    Registration {
        id: r.id,
        spiffe_id: r.spiffe_id,
        parent_id: r.parent_id.unwrap_or_default(),
        selectors: r.selectors,
        ttl_seconds: r.ttl_seconds.unwrap_or(0),
        created_at_ms: millis(r.created_at),
    }
}

fn ban_key(selector: Option<NodeSelector>) -> Result<(BanKind, String), Error> {
    match selector.and_then(|s| s.by) {
        Some(node_selector::By::SpiffeId(id)) => {
            let _valid = SpiffeId::parse(&id)
                .map_err(|e| Error::InvalidRequest(format!("spiffe_id: {e}")))?;
            Ok((BanKind::SpiffeId, id))
        }
        Some(node_selector::By::HardwareId(id)) if !id.is_empty() => Ok((BanKind::HardwareId, id)),
        _ => Err(Error::InvalidRequest(
            "name the node by spiffe_id or hardware_id".into(),
        )),
    }
}

fn not_found(error: plinth_store::Error) -> Error {
    match error {
        plinth_store::Error::NotFound { what, key } => Error::NotFound(format!("{what} {key}")),
        plinth_store::Error::Conflict { what } => {
            Error::InvalidRequest(format!("{what} already exists"))
        }
        other => Error::Store(other),
    }
}

impl AdminService {
    /// Admits the caller: on TLS, its SVID must have been issued here to an admin ID.
    async fn admit<T>(&self, request: &Request<T>) -> Result<(), Error> {
        if self.transport == Transport::UnixSocket {
            return Ok(());
        }
        let serial =
            peer_serial(request).ok_or_else(|| Error::NotAdmin("present an admin SVID".into()))?;
        let svid = self
            .app
            .store
            .get_svid(&serial)
            .await
            .map_err(|_| Error::NotAdmin("the client SVID was not issued here".into()))?;
        if self.app.config.admin_ids.contains(&svid.spiffe_id) {
            Ok(())
        } else {
            Err(Error::NotAdmin(format!(
                "{} is not an admin ID",
                svid.spiffe_id
            )))
        }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn create_registration(
        &self,
        request: Request<CreateRegistrationRequest>,
    ) -> Result<Response<Registration>, Status> {
        self.admit(&request).await?;
        let r = request.into_inner();
        let spiffe_id = SpiffeId::parse(&r.spiffe_id)
            .map_err(|e| Error::InvalidRequest(format!("spiffe_id: {e}")))?;
        if spiffe_id.trust_domain() != self.app.ca.ca().trust_domain() {
            return Err(Error::InvalidRequest(format!(
                "{spiffe_id} is not in the trust domain {}",
                self.app.ca.ca().trust_domain().as_str()
            ))
            .into());
        }
        if r.selectors.is_empty() {
            return Err(
                Error::InvalidRequest("a registration needs at least one selector".into()).into(),
            );
        }
        let parent_id = if r.parent_id.is_empty() {
            None
        } else {
            let _valid = SpiffeId::parse(&r.parent_id)
                .map_err(|e| Error::InvalidRequest(format!("parent_id: {e}")))?;
            Some(r.parent_id)
        };
        let created = self
            .app
            .store
            .create_registration(
                &NewRegistration {
                    spiffe_id: spiffe_id.to_string(),
                    parent_id,
                    selectors: r.selectors,
                    ttl_seconds: (r.ttl_seconds > 0).then_some(r.ttl_seconds),
                    admin: false,
                },
                self.app.clock.now(),
            )
            .await
            .map_err(not_found)?;
        Ok(Response::new(to_wire(created)))
    }

    async fn list_registrations(
        &self,
        request: Request<ListRegistrationsRequest>,
    ) -> Result<Response<ListRegistrationsResponse>, Status> {
        self.admit(&request).await?;
        let registrations = self
            .app
            .store
            .list_registrations()
            .await
            .map_err(Error::from)?;
        Ok(Response::new(ListRegistrationsResponse {
            registrations: registrations.into_iter().map(to_wire).collect(),
        }))
    }

    async fn delete_registration(
        &self,
        request: Request<DeleteRegistrationRequest>,
    ) -> Result<Response<DeleteRegistrationResponse>, Status> {
        self.admit(&request).await?;
        self.app
            .store
            .delete_registration(&request.into_inner().id)
            .await
            .map_err(not_found)?;
        Ok(Response::new(DeleteRegistrationResponse {}))
    }

    async fn list_nodes(
        &self,
        request: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        self.admit(&request).await?;
        let store = &self.app.store;
        let bans = store.list_bans().await.map_err(Error::from)?;
        let nodes = store.list_nodes().await.map_err(Error::from)?;
        let banned = |n: &plinth_store::Node| {
            bans.iter().any(|b| match b.kind {
                BanKind::SpiffeId => b.value == n.spiffe_id,
                _ => n.hardware_id.as_deref() == Some(b.value.as_str()),
            })
        };
        Ok(Response::new(ListNodesResponse {
            nodes: nodes
                .into_iter()
                .map(|n| Node {
                    banned: banned(&n),
                    spiffe_id: n.spiffe_id,
                    platform: n.platform,
                    hardware_id: n.hardware_id.unwrap_or_default(),
                    policy_name: n.policy_name,
                    policy_hash: n.policy_hash,
                    first_attested_at_ms: millis(n.first_attested_at),
                    last_attested_at_ms: millis(n.last_attested_at),
                    last_verdict: n.last_verdict,
                    last_audit_seq: n.last_attestation_seq,
                })
                .collect(),
        }))
    }

    async fn ban_node(
        &self,
        request: Request<BanNodeRequest>,
    ) -> Result<Response<BanNodeResponse>, Status> {
        self.admit(&request).await?;
        let r = request.into_inner();
        let (kind, value) = ban_key(r.node)?;
        self.app
            .store
            .ban(kind, &value, &r.reason, self.app.clock.now())
            .await
            .map_err(not_found)?;
        tracing::warn!(
            kind = kind.as_str(),
            value,
            reason = r.reason,
            "node banned"
        );
        Ok(Response::new(BanNodeResponse {}))
    }

    async fn unban_node(
        &self,
        request: Request<UnbanNodeRequest>,
    ) -> Result<Response<UnbanNodeResponse>, Status> {
        self.admit(&request).await?;
        let (kind, value) = ban_key(request.into_inner().node)?;
        self.app
            .store
            .unban(kind, &value)
            .await
            .map_err(not_found)?;
        tracing::info!(kind = kind.as_str(), value, "node unbanned");
        Ok(Response::new(UnbanNodeResponse {}))
    }

    async fn evict_node(
        &self,
        request: Request<EvictNodeRequest>,
    ) -> Result<Response<EvictNodeResponse>, Status> {
        self.admit(&request).await?;
        let id = request.into_inner().spiffe_id;
        self.app.store.evict_node(&id).await.map_err(not_found)?;
        tracing::info!(spiffe_id = id, "node evicted");
        Ok(Response::new(EvictNodeResponse {}))
    }
}
