//! The whole path on one machine, nothing mocked: a real TPM (swtpm) as the node's TPM, a
//! plinth server, the plinth agent (`plinth_agent::run`, as `plinth agent` runs it), and
//! real SPIFFE clients on the agent's Workload API socket — the `spiffe` crate's
//! X509Source and JwtSource, a FetchX509SVID stream across an SVID rotation, and a mutual
//! TLS handshake between two workloads with `spiffe-rustls`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::os::unix::fs::MetadataExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use plinth_agent::AgentConfig;
use plinth_api::admin::admin_client::AdminClient;
use plinth_api::admin::{CreateRegistrationRequest, ListNodesRequest};
use plinth_core::HashAlg;
use plinth_e2e::Swtpm;
use plinth_e2e::formats::pem_to_der;
use plinth_e2e::node::swtpm_policy;
use plinth_e2e::server::config_in;

/// Workload SVIDs live this long, so a rotation happens within the test.
const WORKLOAD_TTL_SECONDS: u64 = 8;

struct Picker(String);

impl spiffe::x509_source::SvidPicker for Picker {
    fn pick_svid(&self, svids: &[Arc<spiffe::X509Svid>]) -> Option<usize> {
        svids
            .iter()
            .position(|s| s.spiffe_id().to_string() == self.0)
    }
}

async fn x509_source(endpoint: &str, id: &str) -> spiffe::X509Source {
    spiffe::X509Source::builder()
        .endpoint(endpoint)
        .picker(Picker(id.to_owned()))
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[expect(
    clippy::too_many_lines,
    reason = "one end-to-end scenario, told in the order it happens"
)]
async fn workloads_get_svids_from_the_agent_on_a_real_tpm_and_server() {
    // The server, trusting this swtpm's EK certificates.
    let tpm = Swtpm::start().unwrap_or_else(|e| panic!("cannot run the swtpm tests: {e}"));
    let root = pem_to_der(&std::fs::read_to_string(tpm.root_ca_pem()).unwrap()).unwrap();
    let root_sha256 = plinth_crypto::digest(HashAlg::Sha256, &root).to_hex();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path(), &[("tpm.toml", swtpm_policy(&root_sha256, 600))]);
    let roots = dir.path().join("tpm-roots");
    std::fs::create_dir_all(&roots).unwrap();
    let _root = std::fs::copy(tpm.root_ca_pem(), roots.join("root.pem")).unwrap();
    let _issuer = std::fs::copy(tpm.issuer_cert_pem(), roots.join("issuer.pem")).unwrap();
    config.tpm_roots = vec![roots];
    config.workload_svid_ttl_seconds = WORKLOAD_TTL_SECONDS;
    let server = plinth_server::start(config).await.unwrap();
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, server.bundle_pem()).unwrap();

    // The agent, bootstrapping trust from the bundle file.
    let socket = dir.path().join("agent/api.sock");
    let agent_config = AgentConfig {
        server: server.local_addr(),
        bundle,
        tcti: tpm.tcti().to_owned(),
        event_log: None,
        socket: socket.clone(),
        ..AgentConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(plinth_agent::run(agent_config, async {
        let _ = stopped.await;
    }));

    // The node attests; the operator registers two workloads under it (this test
    // process's executable is both, told apart by the picker).
    let mut admin = AdminClient::new(
        plinth_client::connect_unix(server.admin_socket().to_owned())
            .await
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let node_id = loop {
        let nodes = admin
            .list_nodes(ListNodesRequest {})
            .await
            .unwrap()
            .into_inner()
            .nodes;
        if let Some(node) = nodes.first() {
            break node.spiffe_id.clone();
        }
        assert!(Instant::now() < deadline, "the agent never attested");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    for name in ["frontend", "backend"] {
        let _created = admin
            .create_registration(CreateRegistrationRequest {
                spiffe_id: format!("spiffe://example.org/{name}"),
                parent_id: node_id.clone(),
                selectors: vec![
                    format!(
                        "unix:uid:{}",
                        std::fs::metadata("/proc/self").unwrap().uid()
                    ),
                    format!("unix:path:{}", exe.display()),
                ],
                ttl_seconds: 0,
            })
            .await
            .unwrap();
    }

    // The socket is the agent's alone.
    let endpoint = format!("unix://{}", socket.display());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "no Workload API socket");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::metadata(&socket).unwrap().mode() & 0o777, 0o600);

    // X509Source: the workload's SVID chains to the bundle the server issued.
    let frontend = tokio::time::timeout(
        Duration::from_secs(30),
        x509_source(&endpoint, "spiffe://example.org/frontend"),
    )
    .await
    .expect("the frontend's SVID within 30 s");
    let svid = frontend.svid().unwrap();
    assert_eq!(
        svid.spiffe_id().to_string(),
        "spiffe://example.org/frontend"
    );
    let leaf = plinth_x509::Certificate::from_der(svid.leaf().as_bytes()).unwrap();
    let anchors = plinth_x509::TrustAnchors::from_certificates(
        server
            .bundle_der()
            .iter()
            .map(|der| plinth_x509::Certificate::from_der(der).unwrap()),
    );
    let now = plinth_core::UnixTime::from_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    let _chain = plinth_x509::verify_chain(
        &leaf,
        &[],
        &anchors,
        now,
        &plinth_x509::ChainOptions::new()
            .allow_critical_extension(plinth_x509::oids::SUBJECT_ALT_NAME)
            .require_extended_key_usage(plinth_x509::Oid::parse("1.3.6.1.5.5.7.3.2").unwrap()),
    )
    .unwrap();
    // The server recorded it among its issued SVIDs, justified by the node's last
    // attestation.
    let serial = leaf.serial();
    let start = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
    let issued = server
        .store()
        .get_svid(&hex::encode(&serial[start..]))
        .await
        .unwrap();
    assert_eq!(issued.spiffe_id, "spiffe://example.org/frontend");
    let node = server.store().get_node(&node_id).await.unwrap();
    assert!(issued.audit_seq <= node.last_attestation_seq && issued.audit_seq > 0);
    let record = server.store().audit_record(issued.audit_seq).await.unwrap();
    assert_eq!(record.node_spiffe_id.as_deref(), Some(node_id.as_str()));
    assert_eq!(record.verdict, "affirming");
    // A workload SVID is no node identity: the server's workload calls refuse it.
    let key = plinth_crypto::EcdsaSigningKey::from_pkcs8(
        plinth_crypto::Curve::P256,
        svid.private_key().as_bytes(),
    )
    .unwrap();
    let client_cert = plinth_agent::tls::SvidClientCert::new(
        svid.cert_chain()
            .iter()
            .map(|c| c.as_bytes().to_vec())
            .collect(),
        Arc::new(plinth_agent::tls::MemorySigningKey::new(key).unwrap()),
    );
    let trust = plinth_client::ServerTrust::new(
        &server.bundle_der(),
        plinth_core::SpiffeId::parse("spiffe://example.org/plinth/server").unwrap(),
    )
    .unwrap();
    let config = plinth_client::client_config(trust, Some(Arc::new(client_cert)), None).unwrap();
    let channel = plinth_client::connect(server.local_addr(), Arc::new(config))
        .await
        .unwrap();
    let refused = plinth_api::attestation::attestation_client::AttestationClient::new(channel)
        .workload_registrations(plinth_api::attestation::WorkloadRegistrationsRequest {})
        .await
        .unwrap_err();
    assert!(
        refused
            .message()
            .contains("a workload SVID, not a node SVID"),
        "{refused:?}"
    );

    // JwtSource: a JWT-SVID minted by the server for this workload, verified locally
    // against the JWT bundle from the Workload API, and by the agent's ValidateJWTSVID.
    let jwt = spiffe::JwtSource::builder()
        .endpoint(&endpoint)
        .build()
        .await
        .unwrap();
    let token = jwt
        .fetch_jwt_svid_with_id(
            ["plinth-e2e"],
            Some(&spiffe::SpiffeId::new("spiffe://example.org/backend").unwrap()),
        )
        .await
        .unwrap();
    let verified =
        spiffe::JwtSvid::parse_and_validate(token.token(), &jwt, &["plinth-e2e"]).unwrap();
    assert_eq!(
        verified.spiffe_id().to_string(),
        "spiffe://example.org/backend"
    );
    let client = spiffe::WorkloadApiClient::connect_to(&endpoint)
        .await
        .unwrap();
    let validated = client
        .validate_jwt_token("plinth-e2e", token.token())
        .await
        .unwrap();
    assert_eq!(
        validated.spiffe_id().to_string(),
        "spiffe://example.org/backend"
    );

    // Two workloads complete mutual TLS with spiffe-rustls, each checking the other.
    let backend = x509_source(&endpoint, "spiffe://example.org/backend").await;
    let exact = |id: &str| spiffe_rustls::authorizer::exact([id.to_owned()]).unwrap();
    let client_config = spiffe_rustls::mtls_client(frontend.clone())
        .authorize(exact("spiffe://example.org/backend"))
        .build()
        .unwrap();
    let server_config = spiffe_rustls::mtls_server(backend.clone())
        .authorize(exact("spiffe://example.org/frontend"))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let accepted = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    });
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(client_config))
        .connect(
            rustls::pki_types::ServerName::try_from("backend.invalid").unwrap(),
            tcp,
        )
        .await
        .expect("mutual TLS between two workloads");
    let server_leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let client_leaf = accepted.await.unwrap();
    assert_eq!(
        spiffe::cert::spiffe_id_from_der(&client_leaf)
            .unwrap()
            .to_string(),
        "spiffe://example.org/frontend"
    );
    assert_eq!(
        spiffe::cert::spiffe_id_from_der(&server_leaf)
            .unwrap()
            .to_string(),
        "spiffe://example.org/backend"
    );

    // Rotation: one FetchX509SVID stream sees the renewed SVID without reconnecting.
    let mut stream = client.stream_x509_contexts().await.unwrap();
    let leaf_of = |context: &spiffe::X509Context| -> Vec<Vec<u8>> {
        let mut leaves: Vec<Vec<u8>> = context
            .svids()
            .iter()
            .map(|s| s.leaf().as_bytes().to_vec())
            .collect();
        leaves.sort();
        leaves
    };
    let first = leaf_of(&stream.next().await.unwrap().unwrap());
    let rotated = tokio::time::timeout(Duration::from_secs(WORKLOAD_TTL_SECONDS * 2), async {
        loop {
            let next = leaf_of(&stream.next().await.unwrap().unwrap());
            if next != first {
                return next;
            }
        }
    })
    .await
    .expect("a renewed SVID on the same stream");
    assert_ne!(rotated, first);
    drop(stream);

    frontend.shutdown().await;
    backend.shutdown().await;
    jwt.shutdown().await;
    let _sent = stop.send(());
    agent.await.unwrap().unwrap();
    server.shutdown().await.unwrap();
    drop(tpm);
}
