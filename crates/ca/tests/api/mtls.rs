//! Two workloads with SVIDs from the same CA complete a mutual-TLS handshake through
//! `spiffe-rustls`, each authorising the other's SPIFFE ID.

use std::io::Cursor;
use std::sync::Arc;

use plinth_ca::Ca;
use plinth_core::SpiffeId;
use plinth_crypto::{Curve, SystemRandom};
use rustls::pki_types::ServerName;

use crate::support::{now, software_ca, workload};
use crate::workload_api::{X509Svid, X509SvidResponse, serve};

/// Pumps TLS records between the two ends in memory until both finish the handshake.
fn handshake(
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
) -> Result<(), rustls::Error> {
    // spiffe-rustls authenticates the peer by its SPIFFE ID, not the server name.
    let name = ServerName::try_from("workload.invalid").unwrap();
    let mut client = rustls::ClientConnection::new(client, name)?;
    let mut server = rustls::ServerConnection::new(server)?;
    for _ in 0..16 {
        let mut records = Vec::new();
        let _ = client.write_tls(&mut records).unwrap();
        if !records.is_empty() {
            let _ = server.read_tls(&mut Cursor::new(records)).unwrap();
            let _ = server.process_new_packets()?;
        }
        let mut records = Vec::new();
        let _ = server.write_tls(&mut records).unwrap();
        if !records.is_empty() {
            let _ = client.read_tls(&mut Cursor::new(records)).unwrap();
            let _ = client.process_new_packets()?;
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    panic!("the handshake made no progress");
}

/// Mints SVIDs for two fresh keys, serves each through its own Workload API, and runs
/// the handshake: client `a` authorising `b`, server `b` authorising `a`. A client that
/// expects another ID fails the handshake.
pub(crate) fn assert_mutual_tls(ca: &Ca) {
    let trust_domain = ca.trust_domain().as_str().to_owned();
    let id_a = SpiffeId::parse(&format!("spiffe://{trust_domain}/client")).unwrap();
    let id_b = SpiffeId::parse(&format!("spiffe://{trust_domain}/server")).unwrap();
    let bundle = ca.bundle().x509_der();
    let response = |id: &SpiffeId, curve| {
        let key = workload(curve);
        let svid = ca
            .mint_x509_svid(id, &key.bound, None, now(), &SystemRandom)
            .unwrap();
        X509SvidResponse {
            svids: vec![X509Svid {
                spiffe_id: id.to_string(),
                x509_svid: svid.chain_der(),
                x509_svid_key: key.pkcs8.to_vec(),
                bundle: bundle.clone(),
                hint: String::new(),
            }],
            crl: Vec::new(),
            federated_bundles: std::collections::HashMap::new(),
        }
    };
    let (response_a, response_b) = (response(&id_a, Curve::P256), response(&id_b, Curve::P384));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (source_a, source_b) = runtime.block_on(async {
        let endpoint_a = serve(response_a).await;
        let endpoint_b = serve(response_b).await;
        let a = spiffe::X509Source::builder()
            .endpoint(endpoint_a)
            .build()
            .await
            .unwrap();
        let b = spiffe::X509Source::builder()
            .endpoint(endpoint_b)
            .build()
            .await
            .unwrap();
        (a, b)
    });
    // The config builders watch their source from a task on the runtime.
    let entered = runtime.enter();
    let exact = |id: &SpiffeId| spiffe_rustls::authorizer::exact([id.to_string()]).unwrap();
    let client = spiffe_rustls::mtls_client(source_a.clone())
        .authorize(exact(&id_b))
        .build()
        .unwrap();
    let server = spiffe_rustls::mtls_server(source_b.clone())
        .authorize(exact(&id_a))
        .build()
        .unwrap();
    handshake(Arc::new(client), Arc::new(server.clone())).expect("mutual TLS handshake");

    // The same server, met by a client that expects someone else: refused.
    let someone_else = SpiffeId::parse(&format!("spiffe://{trust_domain}/someone-else")).unwrap();
    let picky = spiffe_rustls::mtls_client(source_a)
        .authorize(exact(&someone_else))
        .build()
        .unwrap();
    let refused = handshake(Arc::new(picky), Arc::new(server)).unwrap_err();
    assert!(
        format!("{refused:?}").contains("UnauthorizedSpiffeId"),
        "{refused:?}"
    );
    drop(source_b);
    drop(entered);
    runtime.shutdown_background();
}

#[test]
fn two_svids_complete_mutual_tls_through_spiffe_rustls() {
    let ca = software_ca("example.org", |_| {});
    assert_mutual_tls(ca.store.ca());
    let with_intermediate = software_ca("example.org", |o| o.intermediate = true);
    assert_mutual_tls(with_intermediate.store.ca());
}
