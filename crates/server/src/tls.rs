//! The server's TLS identity: an X.509-SVID of its own for a fresh key, minted by its CA
//! at start and again at half its lifetime (a server that runs longer than one SVID
//! lifetime keeps a valid certificate), and the bundle as the roots that client
//! certificates (renewals) must chain to.
//!
//! ```text
//!  TcpListener ─► accept ─► handshake task (timeout) ─► channel ─► tonic (HTTP/2)
//!                              │ certificate: ServerIdentity (swapped by the roller)
//!                              └ client certificate optional, chained to the bundle
//! ```
//!
//! Handshakes run in their own tasks so that a slow or silent client never holds up the
//! accept loop; tonic reads the peer's certificates from the `TlsStream` itself.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use plinth_ca::Ca;
use plinth_core::{BoundKey, SpiffeId, UnixTime};
use plinth_crypto::{Curve, EcdsaSigningKey, SecureRandom};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::Error;

/// The path of the server's own SPIFFE ID in its trust domain.
pub const SERVER_ID_PATH: &str = "/plinth/server";

/// How long a client may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for tonic to pick them up.
const ACCEPTED_BACKLOG: usize = 64;

/// The server's SPIFFE ID in `ca`'s trust domain.
///
/// # Errors
/// [`Error::Startup`] if the ID cannot be formed.
pub fn server_id(ca: &Ca) -> Result<SpiffeId, Error> {
    SpiffeId::from_parts(ca.trust_domain().clone(), SERVER_ID_PATH).map_err(|e| Error::Startup {
        what: "server SPIFFE ID",
        reason: e.to_string(),
    })
}

/// The server's current SVID and key, as rustls asks for them on every handshake.
#[derive(Debug)]
pub(crate) struct ServerIdentity {
    current: RwLock<Minted>,
}

#[derive(Debug, Clone)]
struct Minted {
    key: Arc<CertifiedKey>,
    issued_at: UnixTime,
    not_after: UnixTime,
}

impl ServerIdentity {
    /// Mints the first SVID.
    ///
    /// # Errors
    /// [`Error::Startup`] when the key cannot be made or the SVID minted.
    pub(crate) fn mint(
        ca: &Ca,
        ttl: Duration,
        now: UnixTime,
        rng: &dyn SecureRandom,
    ) -> Result<Self, Error> {
        Ok(Self {
            current: RwLock::new(mint(ca, ttl, now, rng)?),
        })
    }

    /// When the current SVID should be replaced: half-way through its life.
    pub(crate) fn roll_at(&self) -> UnixTime {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.issued_at.halfway_to(current.not_after)
    }

    /// The current SVID's expiry.
    pub(crate) fn not_after(&self) -> UnixTime {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .not_after
    }

    /// Mints a new SVID for a new key; handshakes from now on present it. On failure the
    /// current one stays.
    ///
    /// # Errors
    /// [`Error::Startup`] when the key cannot be made or the SVID minted.
    pub(crate) fn roll(
        &self,
        ca: &Ca,
        ttl: Duration,
        now: UnixTime,
        rng: &dyn SecureRandom,
    ) -> Result<UnixTime, Error> {
        let minted = mint(ca, ttl, now, rng)?;
        let not_after = minted.not_after;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = minted;
        Ok(not_after)
    }
}

impl ResolvesServerCert for ServerIdentity {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .key,
        ))
    }
}

fn mint(ca: &Ca, ttl: Duration, now: UnixTime, rng: &dyn SecureRandom) -> Result<Minted, Error> {
    let startup = |what: &'static str| {
        move |e: &dyn std::fmt::Display| Error::Startup {
            what,
            reason: e.to_string(),
        }
    };
    let key = EcdsaSigningKey::generate(Curve::P256, rng).map_err(|e| startup("TLS key")(&e))?;
    let svid = ca
        .mint_x509_svid(
            &server_id(ca)?,
            &BoundKey::from_spki_der(key.public_key().spki_der().to_vec()),
            Some(ttl),
            now,
            rng,
        )
        .map_err(|e| startup("server SVID")(&e))?;
    let pkcs8 = key.to_pkcs8().map_err(|e| startup("TLS key")(&e))?;
    let signing_key = rustls::crypto::aws_lc_rs::sign::any_ecdsa_type(&PrivateKeyDer::Pkcs8(
        PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
    ))
    .map_err(|e| startup("TLS key")(&e))?;
    let chain = std::iter::once(svid.leaf_der())
        .chain(svid.intermediates_der().iter().map(Vec::as_slice))
        .map(|der| CertificateDer::from(der.to_vec()))
        .collect();
    Ok(Minted {
        key: Arc::new(CertifiedKey::new(chain, signing_key)),
        issued_at: now,
        not_after: svid.not_after(),
    })
}

/// The TLS acceptor: the server's identity, HTTP/2 only, and client certificates
/// optional (a first attestation has none; a renewal presents its current SVID, which
/// must chain to the bundle and be within its validity — the handshake fails otherwise).
///
/// # Errors
/// [`Error::Startup`] when the bundle cannot serve as client roots.
pub(crate) fn acceptor(ca: &Ca, identity: Arc<ServerIdentity>) -> Result<TlsAcceptor, Error> {
    let startup = |e: &dyn std::fmt::Display| Error::Startup {
        what: "TLS",
        reason: e.to_string(),
    };
    let mut roots = rustls::RootCertStore::empty();
    for der in ca.bundle().x509_authorities() {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| startup(&e))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .allow_unauthenticated()
            .build()
            .map_err(|e| startup(&e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .map_err(|e| startup(&e))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(identity);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts on `listener` until `signal` turns true, handshaking each connection in its
/// own task; yields the connections whose handshake completed in time.
pub(crate) fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    mut signal: watch::Receiver<bool>,
) -> ReceiverStream<std::io::Result<TlsStream<tokio::net::TcpStream>>> {
    let (sender, receiver) = mpsc::channel(ACCEPTED_BACKLOG);
    let _accept_loop = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = signal.wait_for(|stop| *stop) => return,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors and the like: pause instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let sender = sender.clone();
            let _handshake = tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _closed = sender.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}
