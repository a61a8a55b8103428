//! Registrations: which SPIFFE ID an appraised node gets.
//!
//! A node registration matches when every one of its selectors is among the node's
//! (drawn from the appraisal). The most specific match wins; two equally specific matches
//! naming different IDs are a refusal, never a guess. With no match the policy's own
//! identity applies, unless `require_registration` is set.

use plinth_core::SpiffeId;
use plinth_policy::AppraisedIdentity;

use crate::app::App;
use crate::error::Error;

/// The identity to mint for a node.
#[derive(Debug, Clone)]
pub(crate) struct NodeIdentity {
    pub(crate) spiffe_id: SpiffeId,
    pub(crate) ttl_seconds: u64,
}

pub(crate) async fn node_identity(
    app: &App,
    identity: &AppraisedIdentity,
    selectors: &[String],
) -> Result<NodeIdentity, Error> {
    let registrations = app.store.registrations_under(None).await?;
    let mut best: Option<&plinth_store::Registration> = None;
    let mut tied = false;
    for registration in registrations
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
        }),
        None if app.config.require_registration => Err(Error::Registration(format!(
            "no node registration matches the selectors [{}]",
            selectors.join(", ")
        ))),
        None => Ok(NodeIdentity {
            spiffe_id: identity.spiffe_id().clone(),
            ttl_seconds: identity.svid_ttl_seconds(),
        }),
    }
}
