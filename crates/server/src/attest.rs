//! The attestation API: challenge, then evidence → verify → appraise → registration →
//! mint → audit, with every outcome (success or failure) appended to the audit log before
//! the caller hears of it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use plinth_api::attestation::attestation_server::Attestation;
use plinth_api::attestation::{
    AttestationResult, ChallengeResponse, Evidence, Hello, MintWorkloadJwtRequest,
    MintWorkloadJwtResponse, MintWorkloadX509Request, MintWorkloadX509Response,
    WorkloadRegistrationsRequest, WorkloadRegistrationsResponse, evidence,
};
use plinth_core::{SpiffeId, UnixTime};
use plinth_evidence::{Appraised, MAX_EVIDENCE_LEN, PassedAttestation, PendingChallenge};
use plinth_policy::ear::{VerifierId, bound_key_thumbprint, issue_ear};
use prost::Message;
use serde_json::{Value, json};
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::ear::AuthorityEarSigner;
use crate::error::Error;
use crate::{db, registry, workload};

/// The attestation service.
#[derive(Clone)]
pub(crate) struct AttestationService {
    pub(crate) app: Arc<App>,
}

/// The caller's current SVID, when it renews over mutual TLS.
#[derive(Debug, Clone)]
pub(crate) struct Renewal {
    serial: String,
}

/// Hex of a certificate serial's INTEGER content without leading zero bytes: the same
/// key whether read from our minted leaf or from a peer's certificate.
pub(crate) fn serial_key(serial: &[u8]) -> String {
    let start = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
    hex::encode(serial.get(start..).unwrap_or_default())
}

/// What a successful attestation produced.
pub(crate) struct Minted {
    pub(crate) result: AttestationResult,
    pub(crate) serial: String,
    pub(crate) thumbprint: String,
    pub(crate) not_after: UnixTime,
    /// The registration epoch its SPIFFE ID was decided at.
    pub(crate) registrations_epoch: i64,
}

/// How an attestation went, for the audit record.
pub(crate) struct Outcome {
    pub(crate) appraised: Option<Appraised>,
    pub(crate) spiffe_id: Option<SpiffeId>,
    pub(crate) result: Result<Minted, Error>,
    /// The stored challenge answered, consumed with the audit record.
    pub(crate) consume_nonce: Option<[u8; 32]>,
}

#[tonic::async_trait]
impl Attestation for AttestationService {
    async fn challenge(
        &self,
        request: Request<Hello>,
    ) -> Result<Response<ChallengeResponse>, Status> {
        let app = Arc::clone(&self.app);
        let hello = request.into_inner();
        let result = async {
            if hello.encoded_len() > MAX_EVIDENCE_LEN {
                return Err(Error::Evidence(plinth_evidence::Error::TooLarge {
                    field: "hello",
                    len: hello.encoded_len(),
                    max: MAX_EVIDENCE_LEN,
                }));
            }
            let now = app.clock.now();
            let (response, pending) =
                app.verifier
                    .challenge(&hello, &app.rng, now, app.config.nonce_ttl())?;
            db::insert_challenge(&app.store, &pending, now).await?;
            Ok(response)
        }
        .await;
        app.metrics
            .nonce(if result.is_ok() { "issued" } else { "refused" });
        result.map(Response::new).map_err(Status::from)
    }

    async fn attest(
        &self,
        request: Request<Evidence>,
    ) -> Result<Response<AttestationResult>, Status> {
        let renewal = renewal_of(&request);
        let evidence = request.into_inner();
        let app = Arc::clone(&self.app);
        let started = Instant::now();
        let now = app.clock.now();
        let mut outcome = attest(&app, &evidence, renewal.clone(), now).await;
        let platform = platform_name(&evidence);
        let record = record(&app, &evidence, renewal, &mut outcome, now).await;
        let verdict = outcome
            .appraised
            .as_ref()
            .map_or("error", |a| a.appraisal().verdict().name());
        app.metrics.attestation(
            platform,
            if outcome.result.is_ok() {
                verdict
            } else {
                "refused"
            },
            started.elapsed(),
        );
        match (outcome.result, record) {
            (Ok(mut minted), Ok(seq)) => {
                minted.result.audit_seq = seq;
                tracing::info!(
                    spiffe_id = %minted.result.spiffe_id,
                    serial = %minted.serial,
                    key = %minted.thumbprint,
                    not_after = %minted.not_after,
                    audit_seq = seq,
                    "attested"
                );
                Ok(Response::new(minted.result))
            }
            // The SVID is never returned unless its audit record is committed.
            (_, Err(error)) => {
                tracing::error!(%error, "audit record not written");
                Err(Status::from(error))
            }
            (Err(error), Ok(seq)) => {
                tracing::warn!(platform, code = error.code(), %error, audit_seq = seq, "attestation refused");
                Err(Status::from(error))
            }
        }
    }

    async fn workload_registrations(
        &self,
        request: Request<WorkloadRegistrationsRequest>,
    ) -> Result<Response<WorkloadRegistrationsResponse>, Status> {
        let node = workload::calling_node(&self.app, &request).await?;
        Ok(Response::new(
            workload::registrations(&self.app, &node).await?,
        ))
    }

    async fn mint_workload_x509(
        &self,
        request: Request<MintWorkloadX509Request>,
    ) -> Result<Response<MintWorkloadX509Response>, Status> {
        let node = workload::calling_node(&self.app, &request).await?;
        let reply = workload::mint_x509(&self.app, &node, request.get_ref()).await?;
        Ok(Response::new(reply))
    }

    async fn mint_workload_jwt(
        &self,
        request: Request<MintWorkloadJwtRequest>,
    ) -> Result<Response<MintWorkloadJwtResponse>, Status> {
        let node = workload::calling_node(&self.app, &request).await?;
        let reply = workload::mint_jwt(&self.app, &node, request.get_ref()).await?;
        Ok(Response::new(reply))
    }
}

/// The serial (as [`serial_key`]) of the caller's TLS client certificate, if it
/// presented one (rustls has already checked it chains to the bundle and is within its
/// validity).
pub(crate) fn peer_serial<T>(request: &Request<T>) -> Option<String> {
    let certs = request.peer_certs()?;
    let leaf = certs.first()?;
    let cert = plinth_x509::Certificate::from_der(leaf.as_ref()).ok()?;
    Some(serial_key(cert.serial()))
}

fn renewal_of<T>(request: &Request<T>) -> Option<Renewal> {
    peer_serial(request).map(|serial| Renewal { serial })
}

pub(crate) fn platform_name(evidence: &Evidence) -> &'static str {
    match evidence.platform {
        Some(evidence::Platform::Tpm(_)) => "tpm",
        Some(evidence::Platform::Nitro(_)) => "nitro",
        Some(evidence::Platform::Snp(_)) => "sev-snp",
        None => "unknown",
    }
}

async fn attest(
    app: &Arc<App>,
    evidence: &Evidence,
    renewal: Option<Renewal>,
    now: UnixTime,
) -> Outcome {
    let mut outcome = Outcome {
        appraised: None,
        spiffe_id: None,
        result: Err(Error::Internal("unfinished".into())),
        consume_nonce: None,
    };
    let pending = match take_challenge(app, evidence, now).await {
        Ok((pending, consume_nonce)) => {
            outcome.consume_nonce = consume_nonce;
            pending
        }
        Err(error) => {
            outcome.result = Err(error);
            return outcome;
        }
    };
    let verify_started = Instant::now();
    let appraised = {
        let shared = Arc::clone(app);
        let evidence = evidence.clone();
        app.verify_pool
            .run(move || shared.verifier.verify(&pending, &evidence, now))
            .await
    };
    app.metrics
        .stage("verify_appraise", verify_started.elapsed());
    let appraised = match appraised {
        Ok(Ok(appraised)) => appraised,
        Ok(Err(error)) => {
            outcome.result = Err(error.into());
            return outcome;
        }
        Err(pool) => {
            outcome.result = Err(Error::Internal(pool.to_string()));
            return outcome;
        }
    };
    outcome.appraised = Some(appraised.clone());
    outcome.result = finish(
        app,
        appraised,
        evidence,
        renewal,
        now,
        &mut outcome.spiffe_id,
    )
    .await;
    outcome
}

/// The challenge the evidence names, and the stored nonce to consume with the audit
/// record (which makes it single-use across every replica).
async fn take_challenge(
    app: &App,
    evidence: &Evidence,
    now: UnixTime,
) -> Result<(PendingChallenge, Option<[u8; 32]>), Error> {
    if evidence.encoded_len() > MAX_EVIDENCE_LEN {
        return Err(Error::Evidence(plinth_evidence::Error::TooLarge {
            field: "evidence",
            len: evidence.encoded_len(),
            max: MAX_EVIDENCE_LEN,
        }));
    }
    if evidence.platform.is_none() {
        return Err(Error::Evidence(plinth_evidence::Error::UnknownPlatform));
    }
    #[cfg(feature = "test-support")]
    {
        let injected = app
            .injected
            .lock()
            .map_err(|_| Error::Internal("injected challenges poisoned".into()))?
            .remove(&evidence.nonce);
        if let Some(pending) = injected {
            app.metrics.nonce("consumed");
            return Ok((pending, None));
        }
    }
    match db::pending_challenge(&app.store, &evidence.nonce, now).await {
        Ok((pending, nonce)) => Ok((pending, Some(nonce))),
        Err(error) => {
            app.metrics.nonce(db::nonce_refusal_label(&error));
            Err(error)
        }
    }
}

/// How often an attestation is minted again because the registrations changed before it
/// could be recorded, before it is refused.
const MAX_REMINTS: usize = 3;

/// Records the outcome ([`db::record`]). An SVID minted from registrations that changed
/// before it could commit is not written; it is minted again from the current ones, so a
/// registration deleted on any replica never lets an SVID out after the delete.
async fn record(
    app: &Arc<App>,
    evidence: &Evidence,
    renewal: Option<Renewal>,
    outcome: &mut Outcome,
    now: UnixTime,
) -> Result<i64, Error> {
    for _ in 0..MAX_REMINTS {
        match db::record(app, evidence, outcome, now).await {
            Err(Error::Store(plinth_store::Error::RegistrationsChanged)) => {
                let Some(appraised) = outcome.appraised.clone() else {
                    return Err(Error::Internal(
                        "an SVID was minted without an appraisal".into(),
                    ));
                };
                outcome.result = finish(
                    app,
                    appraised,
                    evidence,
                    renewal.clone(),
                    now,
                    &mut outcome.spiffe_id,
                )
                .await;
            }
            recorded => return recorded,
        }
    }
    outcome.result = Err(Error::Registration(format!(
        "the registrations changed {MAX_REMINTS} times while the SVID was being minted; try again"
    )));
    db::record(app, evidence, outcome, now).await
}

/// After a verified appraisal: registration, renewal identity, mint, EAR.
async fn finish(
    app: &Arc<App>,
    appraised: Appraised,
    evidence: &Evidence,
    renewal: Option<Renewal>,
    now: UnixTime,
    spiffe_id_out: &mut Option<SpiffeId>,
) -> Result<Minted, Error> {
    let identity = appraised.identity()?.clone();
    let selectors = appraised.selectors();
    let registration = registry::node_identity(app, &identity, &selectors).await?;
    *spiffe_id_out = Some(registration.spiffe_id.clone());
    // Bans are checked where the SVID is recorded (`db::record`).
    if let Some(renewal) = renewal {
        let spiffe = registration.spiffe_id.to_string();
        db::check_renewal(&app.store, &renewal.serial, &spiffe, now).await?;
    }
    let passed = appraised.passed()?;
    let mint_started = Instant::now();
    let minted = mint(
        app,
        &passed,
        &registration,
        &selectors,
        &evidence.nonce,
        now,
    )?;
    app.metrics.stage("mint", mint_started.elapsed());
    Ok(minted)
}

fn mint(
    app: &App,
    passed: &PassedAttestation,
    registration: &registry::NodeIdentity,
    selectors: &[String],
    nonce: &[u8],
    now: UnixTime,
) -> Result<Minted, Error> {
    let ca = app.ca.ca();
    let svid = ca.mint_x509_svid(
        &registration.spiffe_id,
        passed.key(),
        Some(Duration::from_secs(registration.ttl_seconds)),
        now,
        &app.rng,
    )?;
    let serial = serial_key(svid.serial());
    let authority = ca.active()?;
    let verifier = VerifierId {
        developer: "plinth".to_owned(),
        build: format!("plinth {}", env!("CARGO_PKG_VERSION")),
    };
    let ear = issue_ear(
        passed.appraised().appraisal(),
        Some(passed.key()),
        Some(nonce),
        &verifier,
        &AuthorityEarSigner(authority),
    )
    .map_err(|e| Error::Internal(format!("signing the EAR: {e}")))?;
    let mut chain = vec![svid.leaf_der().to_vec()];
    chain.extend(svid.intermediates_der().iter().cloned());
    Ok(Minted {
        result: AttestationResult {
            spiffe_id: registration.spiffe_id.to_string(),
            svid_chain: chain,
            bundle_x509: app.bundle.x509.clone(),
            bundle_jwks: app.bundle.spiffe_jwks.clone(),
            ear,
            expires_at_ms: i64::try_from(svid.not_after().as_millis()).unwrap_or(i64::MAX),
            selectors: selectors.to_vec(),
            audit_seq: 0,
        },
        serial,
        thumbprint: bound_key_thumbprint(passed.key()),
        not_after: svid.not_after(),
        registrations_epoch: registration.registrations_epoch,
    })
}

/// The audit record's view of an outcome: the appraisal (claims, rules, trust vector) and
/// the result.
pub(crate) fn claims_json(appraised: Option<&Appraised>) -> Value {
    let Some(appraised) = appraised else {
        return json!({});
    };
    let appraisal = appraised.appraisal();
    json!({
        "platform": appraised.platform().name(),
        "hardware_id": appraised.hardware_id(),
        "claims": appraisal.claims(),
        "trust_vector": appraisal.trust_vector().to_json(),
        "rules": appraisal.rules().iter().map(|r| Value::Object(r.to_json())).collect::<Vec<_>>(),
        "selectors": appraised.selectors(),
        "bound_key": appraised.bound_key().map(bound_key_thumbprint),
    })
}

pub(crate) fn result_json(result: &Result<&AttestationResult, &Error>) -> Value {
    match result {
        Ok(r) => json!({
            "spiffe_id": r.spiffe_id,
            "expires_at_ms": r.expires_at_ms,
            "ear": r.ear,
        }),
        Err(e) => json!({ "error": e.code(), "message": e.to_string() }),
    }
}
