//! The server's TLS endpoint: its SVID is replaced at half-life while it runs, and a
//! client that never finishes its handshake does not hold up anyone else.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use plinth_e2e::server::{TestServer, config_in, firmware_policy};
use plinth_x509::Certificate;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

async fn server(svid_ttl_seconds: u64) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(
        dir.path(),
        &[("nitro.toml", firmware_policy("nitro-anjuna-sample.toml"))],
    );
    config.server_svid_ttl_seconds = svid_ttl_seconds;
    TestServer::start(dir, config).await
}

/// The leaf certificate the server presents to a client that authenticates it by its
/// SPIFFE ID against the bundle (the handshake fails otherwise).
async fn presented_leaf(server: &TestServer) -> Vec<u8> {
    let connector = TlsConnector::from(Arc::new(server.client_config(None)));
    let tcp = TcpStream::connect(server.server.local_addr())
        .await
        .unwrap();
    let tls = connector
        .connect(ServerName::try_from("plinth").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn server_svid_is_replaced_at_half_life_while_serving() {
    let server = server(4).await;
    let first = presented_leaf(&server).await;
    // The roll happens about two seconds in; poll rather than time it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let second = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let leaf = presented_leaf(&server).await;
        if leaf != first {
            break leaf;
        }
        assert!(
            Instant::now() < deadline,
            "the server SVID was never replaced"
        );
    };
    let first = Certificate::from_der(&first).unwrap();
    let second = Certificate::from_der(&second).unwrap();
    assert_ne!(first.spki_der(), second.spki_der(), "a new key");
    assert!(second.validity().not_after() > first.validity().not_after());
    // And the API keeps working over the new identity.
    let mut client = server.attestation().await;
    let status = client
        .challenge(plinth_api::attestation::Hello::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_client_does_not_block_other_handshakes() {
    let server = server(3600).await;
    let _silent = TcpStream::connect(server.server.local_addr())
        .await
        .unwrap();
    let _half_open: Vec<TcpStream> = futures_util::future::join_all(
        (0..8).map(|_| TcpStream::connect(server.server.local_addr())),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let leaf = tokio::time::timeout(Duration::from_secs(5), presented_leaf(&server))
        .await
        .expect("a handshake behind silent connections completes");
    assert!(!leaf.is_empty());
}
