//! The server's use of the datastore: challenges, bans, renewals, audit records.

use plinth_api::attestation::Evidence;
use plinth_core::{Platform, UnixTime};
use plinth_evidence::{Appraised, PendingChallenge};
use plinth_store::{Append, Challenge, NewAuditRecord, NewIssuedSvid, NodeUpsert, Store};
use prost::Message;

use crate::app::App;
use crate::attest::{Outcome, claims_json, platform_name, result_json};
use crate::error::Error;

pub(crate) async fn insert_challenge(
    store: &Store,
    pending: &PendingChallenge,
    now: UnixTime,
) -> Result<(), Error> {
    let nonce: [u8; 32] =
        pending.nonce.as_slice().try_into().map_err(|_| {
            Error::Internal("the verifier issued a nonce that is not 32 bytes".into())
        })?;
    store
        .insert_challenge(&Challenge {
            nonce,
            platform: pending.platform.name().to_owned(),
            hello: pending.hello.clone(),
            activation_commitment: pending.activation_commitment,
            created_at: now,
            expires_at: pending.expires_at,
        })
        .await?;
    Ok(())
}

/// The challenge a nonce names, if it can still be answered; it is consumed later, with
/// the attestation's audit record ([`record`]).
pub(crate) async fn pending_challenge(
    store: &Store,
    nonce: &[u8],
    now: UnixTime,
) -> Result<(PendingChallenge, [u8; 32]), Error> {
    let Ok(key) = <[u8; 32]>::try_from(nonce) else {
        return Err(Error::NonceUnknown);
    };
    let challenge = store
        .pending_challenge(&key, now)
        .await
        .map_err(|e| nonce_error(e, now))?;
    let platform = match challenge.platform.as_str() {
        "tpm" => Platform::Tpm,
        "nitro" => Platform::Nitro,
        "sev-snp" => Platform::SevSnp,
        other => {
            return Err(Error::Internal(format!(
                "stored challenge names platform {other:?}"
            )));
        }
    };
    let pending = PendingChallenge {
        nonce: challenge.nonce.to_vec(),
        platform,
        hello: challenge.hello,
        activation_commitment: challenge.activation_commitment,
        expires_at: challenge.expires_at,
    };
    Ok((pending, key))
}

/// The server's error for a nonce the store refuses.
fn nonce_error(error: plinth_store::Error, now: UnixTime) -> Error {
    match error {
        plinth_store::Error::NonceUnknown => Error::NonceUnknown,
        plinth_store::Error::NonceConsumed => Error::NonceConsumed,
        plinth_store::Error::NonceExpired => {
            Error::Evidence(plinth_evidence::Error::ChallengeExpired {
                expires_at: now,
                now,
            })
        }
        other => other.into(),
    }
}

/// The nonce metric's label for a refused nonce.
pub(crate) fn nonce_refusal_label(error: &Error) -> &'static str {
    match error {
        Error::NonceConsumed => "replayed",
        Error::Evidence(plinth_evidence::Error::ChallengeExpired { .. }) => "expired",
        _ => "unknown",
    }
}

/// The node behind a client certificate: the SVID with `serial` must be one this server
/// issued, unexpired at `now`, for a node that has not been evicted since. Returns the
/// node's row.
pub(crate) async fn node_of_client_svid(
    store: &Store,
    serial: &str,
    now: UnixTime,
) -> Result<plinth_store::Node, Error> {
    let svid = match store.get_svid(serial).await {
        Ok(svid) => svid,
        Err(plinth_store::Error::NotFound { .. }) => {
            return Err(Error::Renewal(
                "the client certificate was not issued here".into(),
            ));
        }
        Err(other) => return Err(other.into()),
    };
    if svid.not_after <= now {
        return Err(Error::Renewal(format!(
            "the client SVID expired at {}",
            svid.not_after
        )));
    }
    match store.get_node(&svid.spiffe_id).await {
        Ok(node) => Ok(node),
        Err(plinth_store::Error::NotFound { .. }) => {
            // A node SVID's own audit record names its serial; a workload SVID's names
            // its node's.
            let record = store.audit_record(svid.audit_seq).await?;
            Err(Error::Renewal(
                if record.svid_serial.as_deref() == Some(serial) {
                    "the node was evicted; attest without a client certificate"
                } else {
                    "the client certificate is a workload SVID, not a node SVID"
                }
                .into(),
            ))
        }
        Err(other) => Err(other.into()),
    }
}

/// A renewal: the caller's current SVID must be a valid node SVID
/// ([`node_of_client_svid`]) naming the identity the new evidence yields.
pub(crate) async fn check_renewal(
    store: &Store,
    serial: &str,
    spiffe_id: &str,
    now: UnixTime,
) -> Result<(), Error> {
    let node = node_of_client_svid(store, serial, now).await?;
    if node.spiffe_id != spiffe_id {
        return Err(Error::Renewal(format!(
            "the client SVID names {}, the evidence yields {spiffe_id}",
            node.spiffe_id
        )));
    }
    Ok(())
}

/// Appends the audit record of one attestation (with its SVID and node row when it
/// succeeded), consuming its nonce in the same transaction; returns its seq.
///
/// Two things are decided in that transaction, and turn a success into a refusal
/// (recorded as such, its SVID dropped): a ban on the node, and the nonce having been
/// consumed meanwhile (a replay racing its original, on this replica or another).
pub(crate) async fn record(
    app: &App,
    evidence: &Evidence,
    outcome: &mut Outcome,
    now: UnixTime,
) -> Result<i64, Error> {
    let started = std::time::Instant::now();
    // Each refusal below removes what caused it (the SVID, the nonce), so this loops at
    // most three times.
    let appended = loop {
        match app
            .store
            .append(append_of(app, evidence, outcome, now))
            .await
        {
            Err(plinth_store::Error::Banned(ban)) if outcome.result.is_ok() => {
                outcome.result = Err(Error::Banned { reason: ban.reason });
            }
            Err(
                lost @ (plinth_store::Error::NonceConsumed
                | plinth_store::Error::NonceExpired
                | plinth_store::Error::NonceUnknown),
            ) if outcome.consume_nonce.is_some() => {
                let refusal = nonce_error(lost, now);
                app.metrics.nonce(nonce_refusal_label(&refusal));
                outcome.result = Err(refusal);
                outcome.consume_nonce = None;
            }
            other => break other,
        }
    };
    if appended.is_ok() && outcome.consume_nonce.is_some() {
        app.metrics.nonce("consumed");
    }
    app.metrics.stage("store", started.elapsed());
    Ok(appended?.seq)
}

/// What the store appends for an outcome.
fn append_of(app: &App, evidence: &Evidence, outcome: &Outcome, now: UnixTime) -> Append {
    let Outcome {
        appraised,
        spiffe_id,
        result,
        consume_nonce,
    } = outcome;
    let appraised = appraised.as_ref();
    let appraisal = appraised.map(Appraised::appraisal);
    let policy_hash = appraisal.map(|a| a.policy_hash().to_hex());
    let policy = policy_hash
        .as_ref()
        .and_then(|hash| app.policy_texts.get(hash));
    let (verdict, error_code, error_message) = match result {
        Ok(_) => (
            appraisal.map_or("error", |a| a.verdict().name()).to_owned(),
            None,
            None,
        ),
        Err(error) => (
            appraisal.map_or("error", |a| a.verdict().name()).to_owned(),
            Some(error.code().to_owned()),
            Some(error.to_string()),
        ),
    };
    let record = NewAuditRecord {
        recorded_at: now,
        platform: platform_name(evidence).to_owned(),
        node_spiffe_id: spiffe_id.as_ref().map(ToString::to_string),
        hardware_id: appraised.and_then(|a| a.hardware_id().map(str::to_owned)),
        policy_name: appraisal.map(|a| a.policy_name().to_owned()),
        policy_hash: policy.map(|p| p.hash_hex.clone()),
        verdict,
        error_code,
        error_message,
        claims_json: claims_json(appraised).to_string(),
        result_json: result_json(&result.as_ref().map(|m| &m.result)).to_string(),
        svid_serial: result.as_ref().ok().map(|m| m.serial.clone()),
    };
    let svid = result.as_ref().ok().map(|m| NewIssuedSvid {
        serial_hex: m.serial.clone(),
        spiffe_id: m.result.spiffe_id.clone(),
        key_thumbprint: m.thumbprint.clone(),
        not_after: m.not_after,
    });
    let node = match (result, appraisal, spiffe_id) {
        (Ok(_), Some(appraisal), Some(id)) => Some(NodeUpsert {
            spiffe_id: id.to_string(),
            hardware_id: appraised.and_then(|a| a.hardware_id().map(str::to_owned)),
            policy_name: appraisal.policy_name().to_owned(),
            policy_hash: appraisal.policy_hash().to_hex(),
        }),
        _ => None,
    };
    // Oversized evidence is refused before it is read; its record keeps the refusal, not
    // the bytes.
    let bytes = if evidence.encoded_len() > plinth_evidence::MAX_EVIDENCE_LEN {
        Vec::new()
    } else {
        evidence.encode_to_vec()
    };
    Append {
        record,
        svid,
        node,
        evidence: bytes,
        policy: policy.cloned(),
        consume_nonce: *consume_nonce,
        registrations_epoch: result.as_ref().ok().map(|m| m.registrations_epoch),
    }
}
