//! Registrations: which SPIFFE ID an appraised node gets.
//!
//! A node registration matches when every one of its selectors is among the node's
//! (drawn from the appraisal). The most specific match wins; two equally specific matches
//! naming different IDs are a refusal, never a guess. With no match the policy's own
//! identity applies, unless `require_registration` is set.
//!
//! The node registrations come from the store's in-memory copy; the identity carries the
//! registration epoch that copy was read at, and the SVID commits only while it is
//! current (else `attest::record` mints again from the current registrations).

use plinth_core::SpiffeId;
use plinth_policy::AppraisedIdentity;

use crate::app::App;
use crate::error::Error;

/// The identity to mint for a node.
#[derive(Debug, Clone)]
pub(crate) struct NodeIdentity {
    pub(crate) spiffe_id: SpiffeId,
    pub(crate) ttl_seconds: u64,
    /// The registration epoch this was decided at: the SVID commits only while it is
    /// current (`plinth_store::Append::registrations_epoch`).
    pub(crate) registrations_epoch: i64,
}

pub(crate) async fn node_identity(
    app: &App,
    identity: &AppraisedIdentity,
    selectors: &[String],
) -> Result<NodeIdentity, Error> {
    let node_registrations = app.store.node_registrations().await?;
    let registrations_epoch = node_registrations.epoch;
    let mut best: Option<&plinth_store::Registration> = None;
    let mut tied = false;
    for registration in node_registrations
        .registrations
        .iter()
        .filter(|r| r.selectors.iter().all(|s| selectors.contains(s)))
    {
        match best {
            Some(current) if current.selectors.len() > registration.selectors.len() => {}
            Some(current)
                if current.selectors.len() == registration.selectors.len()
                    && current.spiffe_id != registration.spiffe_id =>
            {
                tied = true;
            }
            Some(current) if current.selectors.len() == registration.selectors.len() => {}
            _ => {
                best = Some(registration);
                tied = false;
            }
        }
    }
    if tied {
        return Err(Error::Registration(
            "several node registrations match equally; make one more specific".into(),
        ));
    }
    match best {
        Some(registration) => Ok(NodeIdentity {
            spiffe_id: SpiffeId::parse(&registration.spiffe_id)
                .map_err(|e| Error::Registration(format!("stored SPIFFE ID: {e}")))?,
            ttl_seconds: registration
                .ttl_seconds
                .unwrap_or_else(|| identity.svid_ttl_seconds()),
            registrations_epoch,
        }),
        None if app.config.require_registration => Err(Error::Registration(format!(
            "no node registration matches the selectors [{}]",
            selectors.join(", ")
        ))),
        None => Ok(NodeIdentity {
            spiffe_id: identity.spiffe_id().clone(),
            ttl_seconds: identity.svid_ttl_seconds(),
            registrations_epoch,
        }),
    }
}
