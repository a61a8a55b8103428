//! The SPIFFE Workload API on a unix socket, for unmodified SPIFFE clients.
//!
//! ```text
//!  workload ──unix socket──► bind(SocketConfig)        mode 0600 unless configured
//!                              │ every RPC: metadata `workload.spiffe.io: true`, else
//!                              │            InvalidArgument
//!                              ▼
//!                            attest the peer (SO_PEERCRED + /proc/<pid>)
//!                              selectors: unix:uid:<uid>  unix:gid:<gid>
//!                                         unix:path:<executable>  unix:sha256:<hex>
//!                              ▼
//!                            IdentitySource (the agent's lifecycle implements it)
//!                              identities_for(selectors) ─ none ─► PermissionDenied
//!                              x509 / bundles ─────────── None ──► Unavailable
//!                              changes() ticks ─► every open stream re-sends its state
//! ```
//!
//! [`IdentitySource`] decouples the API from where SVIDs come from: the agent renews
//! them against the plinth server; the tests back it with a local CA.
//!
//! # What is served
//! `FetchX509SVID`, `FetchX509Bundles` and `FetchJWTBundles` are server streams: the
//! first message is sent at once, and each [`IdentitySource::changes`] tick re-sends the
//! complete state (identical states are not sent twice); a stream ends when the client
//! goes away or the server shuts down. `FetchJWTSVID` mints through the source;
//! `ValidateJWTSVID` checks a JWT-SVID against the JWT bundle of its subject's trust
//! domain: compact JWS; header `alg` ES256 or ES384 (the algorithms of plinth's CA), `kid`
//! naming a key of that bundle, `typ` `JWT` or `JOSE` if present, nothing else; the
//! signature over the received bytes; `sub` a SPIFFE ID, `aud` holding the audience,
//! integer `exp` in the future, `nbf` (if present) in the past. `FetchWITSVID` and `FetchWITBundles` answer
//! Unimplemented. Bundle maps are keyed by the trust domain's SPIFFE ID
//! (`spiffe://example.org`).
//!
//! # Caller attestation
//! The caller's credentials come from the kernel (`SO_PEERCRED`: uid, gid and pid at
//! `connect()`), and its executable from `/proc/<pid>/exe`, hashed with SHA-256 (files
//! over [`MAX_EXECUTABLE_LEN`] are not hashed, so a `unix:sha256` registration never
//! matches them; hashes are cached by device, inode, size and times). The pid is not a
//! selector (it is not stable). A pid can be reused: the process's start time is read
//! before and after the executable, and a change fails the attestation. What remains is
//! inherent in pid-based attestation (as in SPIRE's unix attestor): a caller that
//! `exec`s another program after connecting is attested as that program, at each RPC.
//!
//! # Clients on gRPC's C core
//! grpcio (the Python `spiffe` package) and the other C-core clients send the socket's
//! percent-encoded path as the HTTP/2 `:authority`, which h2 refuses; such connections'
//! header blocks are re-encoded with `localhost` before tonic sees them (see
//! `authority.rs`). Other clients' bytes pass untouched.
//!
//! `ValidateJWTSVID` needs no registration (it uses only public keys); every other RPC
//! needs at least one identity for the caller.

mod attest;
mod authority;
mod jwt;
pub mod proto;
mod service;
mod socket;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use plinth_core::{SpiffeId, TrustDomain};
use tokio::sync::watch;
use zeroize::Zeroizing;

pub use attest::MAX_EXECUTABLE_LEN;
pub use socket::{DEFAULT_SOCKET_MODE, SocketConfig, WorkloadApiListener, bind};

use crate::Error;

/// The metadata key every Workload API request must carry, with the single value `true`.
pub const SECURITY_HEADER: &str = "workload.spiffe.io";

/// One identity a caller is entitled to: its SPIFFE ID, and an optional hint (empty for
/// none) that tells the caller's SVIDs apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The SPIFFE ID.
    pub id: SpiffeId,
    /// The hint (`X509SVID.hint`, `JWTSVID.hint`); empty for none.
    pub hint: String,
}

/// A registration: a caller whose selectors include **all** of `selectors` gets `id`.
/// A registration without selectors matches nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The SPIFFE ID given.
    pub id: SpiffeId,
    /// The selectors required (`unix:uid:1000`, `unix:sha256:<hex>`, …).
    pub selectors: Vec<String>,
    /// The hint; empty for none.
    pub hint: String,
}

/// The identities that `registrations` give a caller with `selectors`, in registration
/// order, each SPIFFE ID once. A helper for [`IdentitySource::identities_for`].
pub fn matching_identities(registrations: &[Registration], selectors: &[String]) -> Vec<Identity> {
    let mut found: Vec<Identity> = Vec::new();
    for registration in registrations {
        if registration.selectors.is_empty()
            || !registration.selectors.iter().all(|s| selectors.contains(s))
            || found.iter().any(|i| i.id == registration.id)
        {
            continue;
        }
        found.push(Identity {
            id: registration.id.clone(),
            hint: registration.hint.clone(),
        });
    }
    found
}

/// One X.509-SVID with its private key.
#[derive(Clone)]
pub struct X509SvidMaterial {
    /// The SPIFFE ID (the leaf's one URI SAN).
    pub id: SpiffeId,
    /// The certificate chain, leaf first, DER certificates concatenated.
    pub chain_der: Vec<u8>,
    /// The private key, unencrypted PKCS#8 DER.
    pub key_pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for X509SvidMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509SvidMaterial")
            .field("id", &self.id)
            .field("chain_der_len", &self.chain_der.len())
            .finish_non_exhaustive()
    }
}

/// The current X.509 state for a set of identities, taken at one instant so that the
/// SVIDs and the bundles that verify them belong together.
#[derive(Debug, Clone, Default)]
pub struct X509Snapshot {
    /// The SVIDs (any order; an identity without an SVID yet is left out of responses).
    pub svids: Vec<X509SvidMaterial>,
    /// X.509 bundles by trust domain (root certificates, DER concatenated), the SVIDs'
    /// own trust domain included; the others are sent as federated bundles.
    pub bundles: BTreeMap<TrustDomain, Vec<u8>>,
}

/// The trust bundles the API hands out and validates JWT-SVIDs with.
#[derive(Debug, Clone, Default)]
pub struct Bundles {
    /// X.509 bundles by trust domain: root certificates, DER concatenated.
    pub x509: BTreeMap<TrustDomain, Vec<u8>>,
    /// JWT bundles by trust domain: a standard JWKS (RFC 7517) JSON of the JWT
    /// authorities, each with its `kid`.
    pub jwt: BTreeMap<TrustDomain, String>,
}

/// What the Workload API needs from the agent.
pub trait IdentitySource: Send + Sync + 'static {
    /// The identities registered for a caller with these selectors, the default first
    /// (empty: an unknown caller, answered PermissionDenied).
    fn identities_for(&self, selectors: &[String]) -> Vec<Identity>;

    /// The current X.509-SVIDs for those identities and the bundles; `None` while not
    /// ready (answered Unavailable).
    fn x509(&self, identities: &[Identity]) -> Option<X509Snapshot>;

    /// A channel that ticks on every SVID rotation and bundle change; open streams
    /// re-send their state on each tick.
    fn changes(&self) -> watch::Receiver<u64>;

    /// A JWT-SVID (JWS compact) for `id` and `audience`. It may ask the server, hence
    /// async; the status is returned to the caller as is.
    fn jwt_svid<'a>(
        &'a self,
        id: &'a SpiffeId,
        audience: &'a [String],
    ) -> BoxFuture<'a, Result<String, tonic::Status>>;

    /// The current bundles; `None` while not ready (answered Unavailable).
    fn bundles(&self) -> Option<Bundles>;
}

/// Binds `config`'s socket and serves the Workload API from `source` until `shutdown`
/// completes; then open streams end and the socket file is removed.
///
/// # Errors
/// [`Error::WorkloadSocket`] when the socket cannot be set up, [`Error::WorkloadServer`]
/// when the server fails.
pub async fn serve(
    config: &SocketConfig,
    source: Arc<dyn IdentitySource>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    bind(config)?.serve(source, shutdown).await
}

/// Entry points for the fuzz targets (`fuzz/fuzz_targets/workload_*.rs`); not an API.
#[doc(hidden)]
pub mod fuzzing {
    use std::collections::BTreeMap;

    use plinth_core::TrustDomain;

    /// ValidateJWTSVID's check of `token` for `audience`, with `jwks` as the JWT bundle
    /// of `trust_domain`, at `now_secs`: the subject, or why the token was rejected.
    pub fn validate_jwt_svid(
        token: &str,
        audience: &str,
        trust_domain: &TrustDomain,
        jwks: &str,
        now_secs: u64,
    ) -> Result<String, &'static str> {
        let bundles = BTreeMap::from([(trust_domain.clone(), jwks.to_owned())]);
        super::jwt::validate(token, audience, &bundles, now_secs).map(|v| v.spiffe_id().to_string())
    }

    /// The client-to-server bytes after the `:authority` fix, fed in `chunks` as reads
    /// would deliver them; `None` when the stream is malformed (the connection closes).
    pub fn rewrite_client_bytes(chunks: &[&[u8]]) -> Option<Vec<u8>> {
        super::authority::rewrite_all(chunks)
    }
}
