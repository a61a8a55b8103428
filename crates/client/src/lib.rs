//! Connecting to a plinth server.
//!
//! SPIFFE authenticates a server by its SPIFFE ID, not by a DNS name: the server's
//! X.509-SVID carries one URI SAN and no DNS name. So the TLS client here verifies the
//! server's chain against the trust bundle (the file an agent bootstraps from) with
//! `plinth-x509`, then requires the leaf's URI SAN to be exactly the expected server ID.
//! The handshake signature is checked by rustls's own provider routines.
//!
//! ```text
//!  bundle (DER roots) + spiffe://td/plinth/server ─► ServerTrust
//!  ServerTrust + optional client identity (the current SVID, for renewal) ─► client_config
//!  connect(addr, config) ─► tonic Channel (h2 over TLS over TCP)
//!  connect_unix(path) ─► tonic Channel (h2 over a unix socket: the admin API)
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use plinth_core::SpiffeId;
use plinth_x509::{Certificate, ChainOptions, TrustAnchors, oids};
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime as PkiTime};
use rustls::time_provider::{DefaultTimeProvider, TimeProvider};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, SignatureScheme};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint};

/// The serverAuth extended key usage.
const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
/// The name sent in place of a hostname; SNI is off, so it never leaves the process.
const PLACEHOLDER_NAME: &str = "plinth-server.invalid";

/// Why a connection could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bundle certificate could not be read.
    #[error("trust bundle: {0}")]
    Bundle(plinth_x509::Error),
    /// The bundle holds no certificate.
    #[error("the trust bundle is empty")]
    EmptyBundle,
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The channel could not be opened.
    #[error("connecting: {0}")]
    Connect(#[from] tonic::transport::Error),
}

/// Who the server must be: a chain to one of these roots, and this SPIFFE ID.
#[derive(Debug, Clone)]
pub struct ServerTrust {
    anchors: TrustAnchors,
    server_id: SpiffeId,
}

impl ServerTrust {
    /// Trust from the bundle's X.509 authorities (DER).
    ///
    /// # Errors
    /// [`Error::Bundle`] for a certificate that does not parse, [`Error::EmptyBundle`].
    pub fn new(bundle_der: &[Vec<u8>], server_id: SpiffeId) -> Result<Self, Error> {
        let mut anchors = TrustAnchors::new();
        for der in bundle_der {
            anchors.add(Certificate::from_der(der).map_err(Error::Bundle)?);
        }
        if anchors.is_empty() {
            return Err(Error::EmptyBundle);
        }
        Ok(Self { anchors, server_id })
    }

    /// Trust from a PEM bundle file's contents.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn from_pem(pem: &[u8], server_id: SpiffeId) -> Result<Self, Error> {
        let certificates = plinth_x509::certificates_from_pem(pem).map_err(Error::Bundle)?;
        let der: Vec<Vec<u8>> = certificates.iter().map(|c| c.der().to_vec()).collect();
        Self::new(&der, server_id)
    }
}

#[derive(Debug)]
struct SpiffeServerVerifier {
    trust: ServerTrust,
    provider: Arc<CryptoProvider>,
}

fn invalid(error: impl std::error::Error + Send + Sync + 'static) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(error))))
}

/// The one URI SAN of an X.509-SVID.
fn spiffe_id_of(der: &[u8]) -> Option<SpiffeId> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    let mut uris = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => Some(*uri),
            _ => None,
        });
    let uri = uris.next()?;
    if uris.next().is_some() {
        return None;
    }
    SpiffeId::parse(uri).ok()
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: PkiTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let leaf = Certificate::from_der(end_entity.as_ref()).map_err(invalid)?;
        let intermediates = intermediates
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let options = ChainOptions::new()
            .allow_critical_extension(oids::SUBJECT_ALT_NAME)
            .require_extended_key_usage(plinth_x509::Oid::parse(SERVER_AUTH).map_err(invalid)?);
        let now = plinth_core::UnixTime::from_secs(now.as_secs());
        let _chain =
            plinth_x509::verify_chain(&leaf, &intermediates, &self.trust.anchors, now, &options)
                .map_err(invalid)?;
        match spiffe_id_of(end_entity.as_ref()) {
            Some(id) if id == self.trust.server_id => Ok(ServerCertVerified::assertion()),
            _ => Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS client configuration that authenticates the server by `trust`, and presents
/// `client` (the current SVID and its key, wherever the key lives) when given: that is a
/// renewal. Certificates are checked at the time `clock` gives (the system clock when
/// `None`; tests replaying recorded evidence run server and client at the evidence's
/// time).
///
/// # Errors
/// [`Error::Tls`] when rustls refuses the protocol versions.
pub fn client_config(
    trust: ServerTrust,
    client: Option<Arc<dyn ResolvesClientCert>>,
    clock: Option<Arc<dyn TimeProvider>>,
) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let clock = clock.unwrap_or_else(|| Arc::new(DefaultTimeProvider));
    let builder = ClientConfig::builder_with_details(Arc::clone(&provider), clock)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SpiffeServerVerifier { trust, provider }));
    let mut config = match client {
        Some(resolver) => builder.with_client_cert_resolver(resolver),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    config.enable_sni = false;
    Ok(config)
}

/// Opens a gRPC channel to the server at `addr` over TLS with `config`.
///
/// # Errors
/// [`Error::Connect`] when the TCP connection or the handshake fails.
pub async fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> Result<Channel, Error> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?;
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |_| {
            let connector = TlsConnector::from(Arc::clone(&config));
            async move {
                let tcp = TcpStream::connect(addr).await?;
                let name = ServerName::try_from(PLACEHOLDER_NAME)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                let tls = connector.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await?;
    Ok(channel)
}

/// Opens a gRPC channel over a unix socket (the admin API's local endpoint).
///
/// # Errors
/// [`Error::Connect`] when the socket cannot be reached.
pub async fn connect_unix(path: PathBuf) -> Result<Channel, Error> {
    // The URI is required by the API and ignored by the connector.
    let endpoint = Endpoint::from_static("http://[::1]:1");
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await?;
    Ok(channel)
}
