//! The `SpiffeWorkloadAPI` service: header check, caller attestation, responses built
//! from the [`IdentitySource`].

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::Stream;
use futures_util::stream;
use plinth_core::{SpiffeId, TrustDomain};
use tokio::sync::watch;
use tonic::metadata::MetadataMap;
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Response, Status};

use super::attest::{AttestError, Attestor};
use super::proto::spiffe_workload_api_server::SpiffeWorkloadApi;
use super::proto::{
    JwtBundlesRequest, JwtBundlesResponse, Jwtsvid, JwtsvidRequest, JwtsvidResponse,
    ValidateJwtsvidRequest, ValidateJwtsvidResponse, WitBundlesRequest, WitBundlesResponse,
    WitsvidRequest, WitsvidResponse, X509BundlesRequest, X509BundlesResponse, X509svid,
    X509svidRequest, X509svidResponse,
};
use super::{IdentitySource, SECURITY_HEADER, jwt};

/// At most this many audiences in a FetchJWTSVID request.
const MAX_AUDIENCES: usize = 64;
/// The longest audience value, in bytes.
const MAX_AUDIENCE_LEN: usize = 2048;

type Updates<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The service state shared by every connection.
pub(crate) struct WorkloadApi {
    source: Arc<dyn IdentitySource>,
    attestor: Arc<Attestor>,
    stop: watch::Receiver<bool>,
}

impl WorkloadApi {
    pub(crate) fn new(source: Arc<dyn IdentitySource>, stop: watch::Receiver<bool>) -> Self {
        Self {
            source,
            attestor: Arc::new(Attestor::default()),
            stop,
        }
    }

    /// The caller's selectors (attestation reads /proc and may hash a file: off the
    /// async workers).
    async fn attest<T>(&self, request: &Request<T>) -> Result<Vec<String>, Status> {
        let cred = request
            .extensions()
            .get::<UdsConnectInfo>()
            .and_then(|info| info.peer_cred)
            .ok_or_else(|| Status::permission_denied("the caller's credentials are unknown"))?;
        let attestor = Arc::clone(&self.attestor);
        match tokio::task::spawn_blocking(move || attestor.selectors(cred)).await {
            Ok(Ok(selectors)) => Ok(selectors),
            Ok(Err(AttestError::ProcessChanged)) => Err(Status::permission_denied(
                "the calling process changed during attestation",
            )),
            Err(_) => Err(Status::internal("workload attestation failed")),
        }
    }

    /// A stream: `first`, then `next()` on each change tick, identical states skipped;
    /// `Ok(None)` (not ready) sends nothing; an error is sent and ends the stream.
    fn updates<T, F>(&self, first: T, next: F) -> Updates<T>
    where
        T: Clone + PartialEq + Send + 'static,
        F: FnMut() -> Result<Option<T>, Status> + Send + 'static,
    {
        struct State<T, F> {
            changes: watch::Receiver<u64>,
            stop: watch::Receiver<bool>,
            last: Option<T>,
            pending: Option<T>,
            next: F,
            done: bool,
        }
        let mut changes = self.source.changes();
        changes.mark_unchanged();
        let state = State {
            changes,
            stop: self.stop.clone(),
            last: None,
            pending: Some(first),
            next,
            done: false,
        };
        Box::pin(stream::unfold(state, |mut state| async move {
            if state.done || *state.stop.borrow() {
                return None;
            }
            if let Some(first) = state.pending.take() {
                state.last = Some(first.clone());
                return Some((Ok(first), state));
            }
            loop {
                tokio::select! {
                    tick = state.changes.changed() => {
                        if tick.is_err() {
                            state.done = true;
                            return Some((Err(Status::unavailable("the identity source closed")), state));
                        }
                    }
                    _ = state.stop.changed() => return None,
                }
                match (state.next)() {
                    Ok(None) => {}
                    Ok(Some(message)) => {
                        if state.last.as_ref() != Some(&message) {
                            state.last = Some(message.clone());
                            return Some((Ok(message), state));
                        }
                    }
                    Err(status) => {
                        state.done = true;
                        return Some((Err(status), state));
                    }
                }
            }
        }))
    }
}

/// Every request carries `workload.spiffe.io: true`, exactly once.
fn check_header(metadata: &MetadataMap) -> Result<(), Status> {
    let mut values = metadata.get_all(SECURITY_HEADER).iter();
    match (values.next(), values.next()) {
        (Some(value), None) if value.as_bytes() == b"true" => Ok(()),
        _ => Err(Status::invalid_argument(
            "security header workload.spiffe.io: true is missing",
        )),
    }
}

fn no_identity() -> Status {
    Status::permission_denied("no identity issued")
}

fn not_ready() -> Status {
    Status::unavailable("SVIDs are not available yet")
}

/// The map key of a trust domain: its SPIFFE ID (`spiffe://example.org`).
fn td_key(trust_domain: &TrustDomain) -> String {
    trust_domain.id().to_string()
}

/// The caller's X.509-SVIDs, in identity order; `Ok(None)` while not ready.
fn x509_svid_response(
    source: &dyn IdentitySource,
    selectors: &[String],
) -> Result<Option<X509svidResponse>, Status> {
    let identities = source.identities_for(selectors);
    if identities.is_empty() {
        return Err(no_identity());
    }
    let Some(snapshot) = source.x509(&identities) else {
        return Ok(None);
    };
    let mut svids: Vec<X509svid> = Vec::new();
    let mut own_domains: Vec<&TrustDomain> = Vec::new();
    for identity in &identities {
        let Some(material) = snapshot.svids.iter().find(|m| m.id == identity.id) else {
            continue;
        };
        let trust_domain = identity.id.trust_domain();
        let Some(bundle) = snapshot.bundles.get(trust_domain) else {
            tracing::warn!(id = %identity.id, "no X.509 bundle for the SVID's trust domain");
            continue;
        };
        if !identity.hint.is_empty() && svids.iter().any(|s| s.hint == identity.hint) {
            tracing::warn!(id = %identity.id, hint = %identity.hint, "duplicate hint; SVID left out");
            continue;
        }
        own_domains.push(trust_domain);
        svids.push(X509svid {
            spiffe_id: identity.id.to_string(),
            x509_svid: material.chain_der.clone(),
            x509_svid_key: material.key_pkcs8.to_vec(),
            bundle: bundle.clone(),
            hint: identity.hint.clone(),
        });
    }
    if svids.is_empty() {
        return Ok(None);
    }
    let federated_bundles = snapshot
        .bundles
        .iter()
        .filter(|(td, _)| !own_domains.contains(td))
        .map(|(td, der)| (td_key(td), der.clone()))
        .collect();
    Ok(Some(X509svidResponse {
        svids,
        crl: Vec::new(),
        federated_bundles,
    }))
}

fn x509_bundles_response(
    source: &dyn IdentitySource,
    selectors: &[String],
) -> Result<Option<X509BundlesResponse>, Status> {
    if source.identities_for(selectors).is_empty() {
        return Err(no_identity());
    }
    Ok(source
        .bundles()
        .filter(|b| !b.x509.is_empty())
        .map(|b| X509BundlesResponse {
            crl: Vec::new(),
            bundles: b
                .x509
                .iter()
                .map(|(td, der)| (td_key(td), der.clone()))
                .collect(),
        }))
}

fn jwt_bundles_response(
    source: &dyn IdentitySource,
    selectors: &[String],
) -> Result<Option<JwtBundlesResponse>, Status> {
    if source.identities_for(selectors).is_empty() {
        return Err(no_identity());
    }
    Ok(source
        .bundles()
        .filter(|b| !b.jwt.is_empty())
        .map(|b| JwtBundlesResponse {
            bundles: b
                .jwt
                .iter()
                .map(|(td, jwks)| (td_key(td), jwks.clone().into_bytes()))
                .collect::<HashMap<_, _>>(),
        }))
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for WorkloadApi {
    type FetchX509SVIDStream = Updates<X509svidResponse>;
    type FetchX509BundlesStream = Updates<X509BundlesResponse>;
    type FetchJWTBundlesStream = Updates<JwtBundlesResponse>;
    type FetchWITSVIDStream = Updates<WitsvidResponse>;
    type FetchWITBundlesStream = Updates<WitBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        request: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        check_header(request.metadata())?;
        let selectors = self.attest(&request).await?;
        let first = x509_svid_response(self.source.as_ref(), &selectors)?.ok_or_else(not_ready)?;
        let source = Arc::clone(&self.source);
        Ok(Response::new(self.updates(first, move || {
            x509_svid_response(source.as_ref(), &selectors)
        })))
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        check_header(request.metadata())?;
        let selectors = self.attest(&request).await?;
        let first =
            x509_bundles_response(self.source.as_ref(), &selectors)?.ok_or_else(not_ready)?;
        let source = Arc::clone(&self.source);
        Ok(Response::new(self.updates(first, move || {
            x509_bundles_response(source.as_ref(), &selectors)
        })))
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        check_header(request.metadata())?;
        let selectors = self.attest(&request).await?;
        let body = request.get_ref();
        if body.audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        if body.audience.len() > MAX_AUDIENCES
            || body
                .audience
                .iter()
                .any(|a| a.is_empty() || a.len() > MAX_AUDIENCE_LEN)
        {
            return Err(Status::invalid_argument(
                "each audience must be non-empty and short, and there may be few",
            ));
        }
        let identities = self.source.identities_for(&selectors);
        if identities.is_empty() {
            return Err(no_identity());
        }
        let chosen: Vec<_> = if body.spiffe_id.is_empty() {
            identities
        } else {
            let wanted = SpiffeId::parse(&body.spiffe_id)
                .map_err(|e| Status::invalid_argument(format!("invalid spiffe_id: {e}")))?;
            let identity = identities
                .into_iter()
                .find(|i| i.id == wanted)
                .ok_or_else(no_identity)?;
            vec![identity]
        };
        let mut svids = Vec::with_capacity(chosen.len());
        for identity in &chosen {
            if !identity.hint.is_empty() && svids.iter().any(|s: &Jwtsvid| s.hint == identity.hint)
            {
                continue;
            }
            let token = self.source.jwt_svid(&identity.id, &body.audience).await?;
            svids.push(Jwtsvid {
                spiffe_id: identity.id.to_string(),
                svid: token,
                hint: identity.hint.clone(),
            });
        }
        Ok(Response::new(JwtsvidResponse { svids }))
    }

    async fn fetch_jwt_bundles(
        &self,
        request: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        check_header(request.metadata())?;
        let selectors = self.attest(&request).await?;
        let first =
            jwt_bundles_response(self.source.as_ref(), &selectors)?.ok_or_else(not_ready)?;
        let source = Arc::clone(&self.source);
        Ok(Response::new(self.updates(first, move || {
            jwt_bundles_response(source.as_ref(), &selectors)
        })))
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        check_header(request.metadata())?;
        let body = request.get_ref();
        if body.audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        if body.svid.is_empty() {
            return Err(Status::invalid_argument("svid must be specified"));
        }
        let bundles = self.source.bundles().ok_or_else(not_ready)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Status::internal("the system clock is before 1970"))?
            .as_secs();
        let validated = jwt::validate(&body.svid, &body.audience, &bundles.jwt, now)
            .map_err(|why| Status::invalid_argument(format!("invalid JWT-SVID: {why}")))?;
        Ok(Response::new(ValidateJwtsvidResponse {
            spiffe_id: validated.spiffe_id().to_string(),
            claims: Some(jwt::to_struct(validated.claims())),
        }))
    }

    async fn fetch_witsvid(
        &self,
        request: Request<WitsvidRequest>,
    ) -> Result<Response<Self::FetchWITSVIDStream>, Status> {
        check_header(request.metadata())?;
        Err(Status::unimplemented("WIT-SVIDs are not supported"))
    }

    async fn fetch_wit_bundles(
        &self,
        request: Request<WitBundlesRequest>,
    ) -> Result<Response<Self::FetchWITBundlesStream>, Status> {
        check_header(request.metadata())?;
        Err(Status::unimplemented("WIT bundles are not supported"))
    }
}
