//! Workload identities under a node's attested identity. The caller authenticates with
//! its current node SVID (mutual TLS); the server checks that SVID is one it issued, still
//! valid, for a node neither evicted nor banned, and mints only for workload
//! registrations whose parent is that node.

use std::time::Duration;

use plinth_api::attestation::{
    MintWorkloadJwtRequest, MintWorkloadJwtResponse, MintWorkloadX509Request,
    MintWorkloadX509Response, WorkloadRegistration, WorkloadRegistrationsResponse,
};
use plinth_core::{BoundKey, SpiffeId};
use plinth_policy::ear::bound_key_thumbprint;
use plinth_store::{NewIssuedSvid, Node};
use tonic::Request;

use crate::app::App;
use crate::attest::{peer_serial, serial_key};
use crate::error::Error;

/// The most SPKI bytes a workload key may have (RSA-4096 is about 550).
const MAX_SPKI_LEN: usize = 1024;

/// The calling node, from its client certificate: a valid node SVID of a node neither
/// evicted nor banned.
pub(crate) async fn calling_node<T>(app: &App, request: &Request<T>) -> Result<Node, Error> {
    let serial = peer_serial(request)
        .ok_or_else(|| Error::Renewal("present the node's SVID (mutual TLS)".into()))?;
    let node = crate::db::node_of_client_svid(&app.store, &serial, app.clock.now()).await?;
    if let Some(ban) = app
        .store
        .find_ban(Some(&node.spiffe_id), node.hardware_id.as_deref())
        .await?
    {
        return Err(Error::Banned { reason: ban.reason });
    }
    Ok(node)
}

/// The workload registrations under `node`, and the bundle.
pub(crate) async fn registrations(
    app: &App,
    node: &Node,
) -> Result<WorkloadRegistrationsResponse, Error> {
    let registrations = app.store.registrations_under(Some(&node.spiffe_id)).await?;
    Ok(WorkloadRegistrationsResponse {
        registrations: registrations
            .into_iter()
            .map(|r| WorkloadRegistration {
                spiffe_id: r.spiffe_id,
                selectors: r.selectors,
                ttl_seconds: r.ttl_seconds.unwrap_or(0),
            })
            .collect(),
        bundle_x509: app.bundle.x509.clone(),
        bundle_jwt_jwks: app.bundle.jwt_jwks.clone(),
    })
}

/// The registration under `node` for `spiffe_id`, and its SVID lifetime.
async fn registered(app: &App, node: &str, spiffe_id: &str) -> Result<(SpiffeId, Duration), Error> {
    let registration = app
        .store
        .registrations_under(Some(node))
        .await?
        .into_iter()
        .find(|r| r.spiffe_id == spiffe_id)
        .ok_or_else(|| {
            Error::Registration(format!("{spiffe_id} is not registered under {node}"))
        })?;
    let id = SpiffeId::parse(&registration.spiffe_id)
        .map_err(|e| Error::Registration(format!("stored SPIFFE ID: {e}")))?;
    let ttl = registration
        .ttl_seconds
        .unwrap_or(app.config.workload_svid_ttl_seconds);
    Ok((id, Duration::from_secs(ttl)))
}

/// Mints a workload X.509-SVID and records it among the issued SVIDs, justified by the
/// node's last attestation, before returning it.
pub(crate) async fn mint_x509(
    app: &App,
    node: &Node,
    request: &MintWorkloadX509Request,
) -> Result<MintWorkloadX509Response, Error> {
    if request.public_key.len() > MAX_SPKI_LEN {
        return Err(Error::InvalidRequest(format!(
            "public_key is {} bytes, more than {MAX_SPKI_LEN}",
            request.public_key.len()
        )));
    }
    let key = plinth_crypto::PublicKey::from_spki_der(&request.public_key)
        .map_err(|e| Error::InvalidRequest(format!("public_key: {e}")))?;
    let (id, ttl) = registered(app, &node.spiffe_id, &request.spiffe_id).await?;
    let now = app.clock.now();
    // The agent generated this key for the workload and vouches for it under its own
    // hardware-bound identity; the node's SVID authenticated this call.
    let key = BoundKey::from_spki_der(key.spki_der().to_vec());
    let svid = app
        .ca
        .ca()
        .mint_x509_svid(&id, &key, Some(ttl), now, &app.rng)?;
    let issued = NewIssuedSvid {
        serial_hex: serial_key(svid.serial()),
        spiffe_id: id.to_string(),
        key_thumbprint: bound_key_thumbprint(&key),
        not_after: svid.not_after(),
    };
    let _recorded = app
        .store
        .record_workload_svid(&issued, now, node.last_attestation_seq)
        .await?;
    tracing::info!(
        spiffe_id = %id,
        node = node.spiffe_id,
        serial = issued.serial_hex,
        not_after = %svid.not_after(),
        "workload X.509-SVID"
    );
    let mut chain = vec![svid.leaf_der().to_vec()];
    chain.extend(svid.intermediates_der().iter().cloned());
    Ok(MintWorkloadX509Response {
        svid_chain: chain,
        expires_at_ms: i64::try_from(svid.not_after().as_millis()).unwrap_or(i64::MAX),
    })
}

pub(crate) async fn mint_jwt(
    app: &App,
    node: &Node,
    request: &MintWorkloadJwtRequest,
) -> Result<MintWorkloadJwtResponse, Error> {
    let (id, ttl) = registered(app, &node.spiffe_id, &request.spiffe_id).await?;
    let token = app
        .ca
        .ca()
        .mint_jwt_svid(&id, &request.audience, Some(ttl), app.clock.now())?;
    Ok(MintWorkloadJwtResponse {
        token: token.token().to_owned(),
        expires_at_ms: i64::try_from(token.expiry().as_millis()).unwrap_or(i64::MAX),
    })
}
