//! The server's TLS identity: an X.509-SVID of its own, minted at start by its CA for a
//! fresh key, and the bundle as the roots client certificates (renewals) must chain to.

use std::time::Duration;

use plinth_ca::Ca;
use plinth_core::{BoundKey, SpiffeId, UnixTime};
use plinth_crypto::{Curve, EcdsaSigningKey, SecureRandom};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::error::Error;

/// The path of the server's own SPIFFE ID in its trust domain.
pub const SERVER_ID_PATH: &str = "/plinth/server";

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

/// The TLS configuration: the server's SVID, and client certificates optional (a first
/// attestation has none; a renewal presents its current SVID, which must chain to the
/// bundle and be within its validity — rustls refuses the handshake otherwise).
///
/// # Errors
/// [`Error::Startup`] when the key cannot be made or the SVID minted.
pub(crate) fn server_tls(
    ca: &Ca,
    ttl: Duration,
    now: UnixTime,
    rng: &dyn SecureRandom,
) -> Result<ServerTlsConfig, Error> {
    let startup = |what: &'static str| {
        move |e: &dyn std::fmt::Display| Error::Startup {
            what,
            reason: e.to_string(),
        }
    };
    let key = EcdsaSigningKey::generate(Curve::P256, rng).map_err(|e| startup("TLS key")(&e))?;
    let spki = key.public_key().spki_der().to_vec();
    let svid = ca
        .mint_x509_svid(
            &server_id(ca)?,
            &BoundKey::from_spki_der(spki),
            Some(ttl),
            now,
            rng,
        )
        .map_err(|e| startup("server SVID")(&e))?;
    let pkcs8 = key.to_pkcs8().map_err(|e| startup("TLS key")(&e))?;
    let key_pem = zeroize::Zeroizing::new(plinth_ca::pem_encode("PRIVATE KEY", &pkcs8));
    let identity = Identity::from_pem(svid.chain_pem(), key_pem.as_bytes());
    Ok(ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(Certificate::from_pem(ca.bundle().x509_pem()))
        .client_auth_optional(true))
}
