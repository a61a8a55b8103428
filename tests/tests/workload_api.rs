//! The agent's SPIFFE Workload API, met by real SPIFFE clients: the `spiffe` crate's
//! X509Source, JwtSource and WorkloadApiClient, the Python `spiffe` package (py-spiffe,
//! from PyPI), and spiffe-rustls for a mutual-TLS handshake between two workloads. The
//! SVIDs come from a real plinth CA behind a test `IdentitySource`; callers are attested
//! from the socket's peer credentials, as in production.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use plinth_agent::workload::proto::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use plinth_agent::workload::proto::{
    JwtBundlesRequest, JwtsvidRequest, ValidateJwtsvidRequest, WitBundlesRequest,
    X509BundlesRequest, X509svidRequest,
};
use plinth_agent::workload::{
    Bundles, Identity, IdentitySource, Registration, SocketConfig, X509Snapshot, X509SvidMaterial,
    bind, matching_identities,
};
use plinth_ca::{CaDir, InitOptions};
use plinth_core::{BoundKey, HashAlg, SpiffeId, TrustDomain, UnixTime};
use plinth_crypto::{Curve, EcdsaSigningKey, SystemRandom};
use tempfile::TempDir;
use tokio::sync::{oneshot, watch};
use tonic::Code;
use tonic::transport::Channel;

fn now() -> UnixTime {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    UnixTime::from_millis(u64::try_from(elapsed.as_millis()).unwrap())
}

fn id(path: &str) -> SpiffeId {
    SpiffeId::parse(&format!("spiffe://example.org{path}")).unwrap()
}

/// This process's effective uid (the owner of /proc/self).
fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

fn sha256_hex(path: &Path) -> String {
    plinth_crypto::digest(HashAlg::Sha256, &std::fs::read(path).unwrap()).to_hex()
}

/// The executable of this test process, as /proc/<pid>/exe names it.
fn my_exe() -> PathBuf {
    std::fs::read_link("/proc/self/exe").unwrap()
}

/// An `IdentitySource` backed by a real plinth CA: a fresh key and X.509-SVID per
/// registered ID; `rotate` mints new ones and ticks.
struct CaSource {
    _dir: TempDir,
    ca: Mutex<CaDir>,
    trust_domain: TrustDomain,
    registrations: Vec<Registration>,
    svids: Mutex<BTreeMap<SpiffeId, X509SvidMaterial>>,
    changes: watch::Sender<u64>,
}

impl CaSource {
    fn new(registrations: Vec<Registration>) -> Arc<Self> {
        let dir = TempDir::new().unwrap();
        let trust_domain = TrustDomain::new("example.org").unwrap();
        let ca = CaDir::init(
            &dir.path().join("ca"),
            &InitOptions::new(trust_domain.clone()),
            None,
            None,
            now(),
            &SystemRandom,
        )
        .unwrap();
        let source = Arc::new(Self {
            _dir: dir,
            ca: Mutex::new(ca),
            trust_domain,
            registrations,
            svids: Mutex::new(BTreeMap::new()),
            changes: watch::channel(0).0,
        });
        source.rotate();
        source
    }

    /// Mints a new key and SVID for every registered ID, then ticks.
    fn rotate(&self) {
        let ca = self.ca.lock().unwrap();
        let mut svids = self.svids.lock().unwrap();
        for registration in &self.registrations {
            let key = EcdsaSigningKey::generate(Curve::P256, &SystemRandom).unwrap();
            let bound = BoundKey::from_spki_der(key.public_key().spki_der().to_vec());
            let svid = ca
                .ca()
                .mint_x509_svid(&registration.id, &bound, None, now(), &SystemRandom)
                .unwrap();
            let _previous = svids.insert(
                registration.id.clone(),
                X509SvidMaterial {
                    id: registration.id.clone(),
                    chain_der: svid.chain_der(),
                    key_pkcs8: key.to_pkcs8().unwrap(),
                },
            );
        }
        drop(svids);
        drop(ca);
        self.changes.send_modify(|n| *n += 1);
    }

    fn leaf_of(&self, spiffe_id: &SpiffeId) -> Vec<u8> {
        self.svids.lock().unwrap()[spiffe_id].chain_der.clone()
    }
}

impl IdentitySource for CaSource {
    fn identities_for(&self, selectors: &[String]) -> Vec<Identity> {
        matching_identities(&self.registrations, selectors)
    }

    fn x509(&self, identities: &[Identity]) -> Option<X509Snapshot> {
        let svids = self.svids.lock().unwrap();
        let bundle = self.ca.lock().unwrap().ca().bundle().x509_der();
        Some(X509Snapshot {
            svids: identities
                .iter()
                .filter_map(|i| svids.get(&i.id).cloned())
                .collect(),
            bundles: BTreeMap::from([(self.trust_domain.clone(), bundle)]),
        })
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn jwt_svid<'a>(
        &'a self,
        spiffe_id: &'a SpiffeId,
        audience: &'a [String],
    ) -> BoxFuture<'a, Result<String, tonic::Status>> {
        Box::pin(async move {
            self.ca
                .lock()
                .unwrap()
                .ca()
                .mint_jwt_svid(spiffe_id, audience, None, now())
                .map(|svid| svid.token().to_owned())
                .map_err(|e| tonic::Status::invalid_argument(e.to_string()))
        })
    }

    fn bundles(&self) -> Option<Bundles> {
        let bundle = self.ca.lock().unwrap().ca().bundle();
        Some(Bundles {
            x509: BTreeMap::from([(self.trust_domain.clone(), bundle.x509_der())]),
            jwt: BTreeMap::from([(self.trust_domain.clone(), bundle.to_jwt_jwks())]),
        })
    }
}

/// The registrations of the tests: this test binary is two workloads told apart by hint
/// (`frontend` by its SHA-256, `backend` by uid and path), and py-spiffe's interpreter
/// (by path) is a third.
fn registrations(python: Option<&Path>) -> Vec<Registration> {
    let uid = format!("unix:uid:{}", my_uid());
    let mut registrations = vec![
        Registration {
            id: id("/frontend"),
            selectors: vec![format!("unix:sha256:{}", sha256_hex(&my_exe()))],
            hint: "frontend".to_owned(),
        },
        Registration {
            id: id("/backend"),
            selectors: vec![uid.clone(), format!("unix:path:{}", my_exe().display())],
            hint: "backend".to_owned(),
        },
    ];
    if let Some(python) = python {
        registrations.push(Registration {
            id: id("/python"),
            selectors: vec![uid, format!("unix:path:{}", python.display())],
            hint: String::new(),
        });
    }
    registrations
}

/// A Workload API server on a socket in a temporary directory.
struct Running {
    _dir: TempDir,
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), plinth_agent::Error>>,
}

impl Running {
    /// Binds and serves (within the test's tokio runtime).
    fn start(source: Arc<dyn IdentitySource>, mode: Option<u32>) -> Self {
        let dir = TempDir::new().unwrap();
        let socket = dir.path().join("agent").join("api.sock");
        let mut config = SocketConfig::new(&socket);
        if let Some(mode) = mode {
            config = config.mode(mode);
        }
        let listener = bind(&config).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(listener.serve(source, async move {
            let _ = stopped.await;
        }));
        Self {
            _dir: dir,
            socket,
            stop: Some(stop),
            task,
        }
    }

    fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    async fn raw_client(&self) -> SpiffeWorkloadApiClient<Channel> {
        let endpoint = spiffe::transport::Endpoint::parse(&self.endpoint()).unwrap();
        SpiffeWorkloadApiClient::new(spiffe::transport::connect(&endpoint).await.unwrap())
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
        assert!(!self.socket.exists(), "the socket is removed at shutdown");
    }
}

fn with_header<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let _ = request
        .metadata_mut()
        .insert("workload.spiffe.io", "true".parse().unwrap());
    request
}

#[derive(Debug)]
struct HintPicker(&'static str);

impl spiffe::x509_source::SvidPicker for HintPicker {
    fn pick_svid(&self, svids: &[Arc<spiffe::X509Svid>]) -> Option<usize> {
        svids.iter().position(|s| s.hint() == Some(self.0))
    }
}

async fn x509_source(endpoint: &str, hint: &'static str) -> spiffe::X509Source {
    spiffe::X509Source::builder()
        .endpoint(endpoint)
        .picker(HintPicker(hint))
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spiffe_crate_sources_fetch_svids_and_validate_jwt_svids() {
    let source = CaSource::new(registrations(None));
    let server = Running::start(source.clone(), None);

    // X509Source: the default SVID is the first registered identity that matches.
    let x509 = spiffe::X509Source::builder()
        .endpoint(server.endpoint())
        .build()
        .await
        .unwrap();
    let svid = x509.svid().unwrap();
    assert_eq!(
        svid.spiffe_id().to_string(),
        "spiffe://example.org/frontend"
    );
    assert_eq!(svid.hint(), Some("frontend"));
    let chain: Vec<u8> = svid
        .cert_chain()
        .iter()
        .flat_map(|c| c.as_bytes().to_vec())
        .collect();
    assert_eq!(chain, source.leaf_of(&id("/frontend")));
    let context = x509.x509_context().unwrap();
    assert_eq!(context.svids().len(), 2, "frontend and backend");
    let td = spiffe::TrustDomain::new("example.org").unwrap();
    assert!(x509.try_bundle_for_trust_domain(&td).is_some());

    // JwtSource: a JWT-SVID for an audience, verified locally against the JWT bundle
    // the source fetched from the Workload API.
    let jwt = spiffe::JwtSource::builder()
        .endpoint(server.endpoint())
        .build()
        .await
        .unwrap();
    let token = jwt.fetch_jwt_svid(["plinth-test"]).await.unwrap();
    assert_eq!(
        token.spiffe_id().to_string(),
        "spiffe://example.org/frontend"
    );
    let verified =
        spiffe::JwtSvid::parse_and_validate(token.token(), &jwt, &["plinth-test"]).unwrap();
    assert_eq!(verified.spiffe_id(), token.spiffe_id());
    let backend = jwt
        .fetch_jwt_svid_with_id(
            ["plinth-test"],
            Some(&spiffe::SpiffeId::new("spiffe://example.org/backend").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(
        backend.spiffe_id().to_string(),
        "spiffe://example.org/backend"
    );

    // ValidateJWTSVID through the agent.
    let client = spiffe::WorkloadApiClient::connect_to(server.endpoint())
        .await
        .unwrap();
    let validated = client
        .validate_jwt_token("plinth-test", token.token())
        .await
        .unwrap();
    assert_eq!(
        validated.spiffe_id().to_string(),
        "spiffe://example.org/frontend"
    );
    let bundles = client.fetch_x509_bundles().await.unwrap();
    assert!(bundles.get(&td).is_some());
    let jwt_bundles = client.fetch_jwt_bundles().await.unwrap();
    assert!(jwt_bundles.get(&td).is_some());

    x509.shutdown().await;
    jwt.shutdown().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_jwt_svid_rejects_bad_tokens_with_invalid_argument() {
    let source = CaSource::new(registrations(None));
    let server = Running::start(source.clone(), None);
    let mut raw = server.raw_client().await;
    let good = source
        .jwt_svid(&id("/frontend"), &["plinth-test".to_owned()])
        .await
        .unwrap();
    let validated = raw
        .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
            audience: "plinth-test".to_owned(),
            svid: good.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(validated.spiffe_id, "spiffe://example.org/frontend");
    let claims = validated.claims.unwrap().fields;
    assert!(claims.contains_key("exp") && claims.contains_key("aud"));

    // A token from another CA (same trust domain name, unknown key).
    let other = CaSource::new(registrations(None));
    let foreign = other
        .jwt_svid(&id("/frontend"), &["plinth-test".to_owned()])
        .await
        .unwrap();
    // The signature of the good token with its first character changed (the first
    // base64url character carries six whole bits, so the encoding stays canonical and
    // only the signature check can refuse it).
    let signature_at = good.rfind('.').unwrap() + 1;
    let first = good[signature_at..].chars().next().unwrap();
    let mut tampered = good.clone();
    tampered.replace_range(
        signature_at..=signature_at,
        if first == 'A' { "B" } else { "A" },
    );
    for (audience, svid, why) in [
        ("someone-else", good.as_str(), "audience does not match"),
        ("plinth-test", foreign.as_str(), "kid names no key"),
        (
            "plinth-test",
            tampered.as_str(),
            "signature does not verify",
        ),
        ("plinth-test", "a.b", "three dot-separated parts"),
        ("", good.as_str(), "audience must be specified"),
        ("plinth-test", "", "svid must be specified"),
    ] {
        let status = raw
            .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
                audience: audience.to_owned(),
                svid: svid.to_owned(),
            }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(why), "{status:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workloads_complete_mutual_tls_with_spiffe_rustls() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let source = CaSource::new(registrations(None));
    let server = Running::start(source, None);
    let frontend = x509_source(&server.endpoint(), "frontend").await;
    let backend = x509_source(&server.endpoint(), "backend").await;
    assert_eq!(
        backend.svid().unwrap().spiffe_id().to_string(),
        "spiffe://example.org/backend"
    );
    let exact = |path: &str| spiffe_rustls::authorizer::exact([id(path).to_string()]).unwrap();
    let client_config = spiffe_rustls::mtls_client(frontend.clone())
        .authorize(exact("/backend"))
        .build()
        .unwrap();
    let server_config = spiffe_rustls::mtls_server(backend.clone())
        .authorize(exact("/frontend"))
        .build()
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let tls_server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let peer = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        let mut hello = [0_u8; 5];
        let _ = tls.read_exact(&mut hello).await.unwrap();
        tls.write_all(b"world").await.unwrap();
        tls.shutdown().await.unwrap();
        (peer, hello)
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("backend.invalid").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("mutual TLS");
    let server_leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    tls.write_all(b"hello").await.unwrap();
    let mut reply = Vec::new();
    let _ = tls.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"world");
    let (client_leaf, hello) = tls_server.await.unwrap();
    assert_eq!(&hello, b"hello");
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
    frontend.shutdown().await;
    backend.shutdown().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_sees_the_rotated_svid_without_reconnecting() {
    let source = CaSource::new(registrations(None));
    let server = Running::start(source.clone(), None);
    let client = spiffe::WorkloadApiClient::connect_to(server.endpoint())
        .await
        .unwrap();
    // One FetchX509SVID stream: the client's stream does not reconnect by itself.
    let mut stream = client.stream_x509_contexts().await.unwrap();
    let leaf = |context: &spiffe::X509Context| -> Vec<u8> {
        context.default_svid().unwrap().leaf().as_bytes().to_vec()
    };
    let first = stream.next().await.unwrap().unwrap();
    let before = leaf(&first);
    source.rotate();
    let second = stream.next().await.unwrap().unwrap();
    let after = leaf(&second);
    assert_ne!(before, after, "a new SVID after rotation");
    assert!(source.leaf_of(&id("/frontend")).starts_with(&after));
    // And once more, on the same stream.
    source.rotate();
    let third = stream.next().await.unwrap().unwrap();
    assert_ne!(leaf(&third), after);
    drop(stream);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_caller_gets_permission_denied() {
    // Registered: a uid this test does not run as, and an executable it is not.
    let source = CaSource::new(vec![
        Registration {
            id: id("/someone"),
            selectors: vec![format!("unix:uid:{}", my_uid().wrapping_add(4242))],
            hint: String::new(),
        },
        Registration {
            id: id("/other-binary"),
            selectors: vec![format!("unix:sha256:{}", "00".repeat(32))],
            hint: String::new(),
        },
    ]);
    let server = Running::start(source, None);
    let mut raw = server.raw_client().await;
    let status = raw
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = raw
        .fetch_x509_bundles(with_header(X509BundlesRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = raw
        .fetch_jwt_bundles(with_header(JwtBundlesRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = raw
        .fetch_jwtsvid(with_header(JwtsvidRequest {
            audience: vec!["a".to_owned()],
            spiffe_id: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // Through the real client too.
    let client = spiffe::WorkloadApiClient::connect_to(server.endpoint())
        .await
        .unwrap();
    let error = client.fetch_x509_svid().await.unwrap_err();
    assert!(
        matches!(error, spiffe::WorkloadApiError::NoIdentityIssued),
        "{error:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_svid_for_another_workloads_id_gets_permission_denied() {
    let source = CaSource::new(registrations(None));
    let server = Running::start(source, None);
    let mut raw = server.raw_client().await;
    let request = |audience: Vec<String>, spiffe_id: &str| {
        with_header(JwtsvidRequest {
            audience,
            spiffe_id: spiffe_id.to_owned(),
        })
    };
    let aud = || vec!["plinth-test".to_owned()];
    let all = raw
        .fetch_jwtsvid(request(aud(), ""))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<(&str, &str)> = all
        .svids
        .iter()
        .map(|s| (s.spiffe_id.as_str(), s.hint.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("spiffe://example.org/frontend", "frontend"),
            ("spiffe://example.org/backend", "backend")
        ]
    );
    let status = raw
        .fetch_jwtsvid(request(aud(), "spiffe://example.org/python"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = raw
        .fetch_jwtsvid(request(Vec::new(), ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = raw
        .fetch_jwtsvid(request(aud(), "not a spiffe id"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_header_gets_invalid_argument() {
    let source = CaSource::new(registrations(None));
    let server = Running::start(source, None);
    let mut raw = server.raw_client().await;
    let expect_invalid = |result: Result<(), tonic::Status>| {
        let status = result.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("security header"), "{status:?}");
    };
    expect_invalid(raw.fetch_x509svid(X509svidRequest {}).await.map(|_| ()));
    expect_invalid(
        raw.fetch_x509_bundles(X509BundlesRequest {})
            .await
            .map(|_| ()),
    );
    expect_invalid(
        raw.fetch_jwt_bundles(JwtBundlesRequest {})
            .await
            .map(|_| ()),
    );
    expect_invalid(
        raw.fetch_jwtsvid(JwtsvidRequest {
            audience: vec!["a".to_owned()],
            spiffe_id: String::new(),
        })
        .await
        .map(|_| ()),
    );
    expect_invalid(
        raw.validate_jwtsvid(ValidateJwtsvidRequest {
            audience: "a".to_owned(),
            svid: "a.b.c".to_owned(),
        })
        .await
        .map(|_| ()),
    );
    // A wrong value, and the header twice, are refused too.
    let mut wrong = tonic::Request::new(X509svidRequest {});
    let _ = wrong
        .metadata_mut()
        .insert("workload.spiffe.io", "yes".parse().unwrap());
    expect_invalid(raw.fetch_x509svid(wrong).await.map(|_| ()));
    let mut twice = with_header(X509svidRequest {});
    let _ = twice
        .metadata_mut()
        .append("workload.spiffe.io", "true".parse().unwrap());
    expect_invalid(raw.fetch_x509svid(twice).await.map(|_| ()));
    // With the header, the same call works; the optional WIT calls are Unimplemented.
    let _ = raw
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .unwrap();
    let status = raw
        .fetch_wit_bundles(with_header(WitBundlesRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_has_the_configured_mode() {
    let source: Arc<dyn IdentitySource> = CaSource::new(registrations(None));
    let default = Running::start(Arc::clone(&source), None);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&default.socket), 0o600, "owner only by default");
    assert_eq!(mode(default.socket.parent().unwrap()), 0o755);
    default.stop().await;
    let group = Running::start(Arc::clone(&source), Some(0o660));
    assert_eq!(mode(&group.socket), 0o660);
    // A stale socket at the path is replaced.
    let again = bind(&SocketConfig::new(&group.socket)).unwrap();
    assert_eq!(mode(again.path()), 0o600);
    drop(again);
    group.stop().await;

    // Anything else at the path is left alone.
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, b"keep me").unwrap();
    let error = bind(&SocketConfig::new(&file)).unwrap_err();
    assert!(
        matches!(error, plinth_agent::Error::WorkloadSocket { .. }),
        "{error:?}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

/// A Python with py-spiffe 0.3.2 from PyPI, in a virtual environment kept under the
/// target directory (made once; pip needs the network the first time).
fn py_spiffe_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-spiffe-0.3.2");
    let python = venv.join("bin").join("python3");
    let ready = venv.join(".installed");
    if !ready.exists() {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 (3.10 or later) is needed for the py-spiffe test");
        assert!(status.success(), "python3 -m venv failed");
        let output = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "spiffe==0.3.2"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pip install spiffe==0.3.2 failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(&ready, b"spiffe==0.3.2\n").unwrap();
    }
    python
}

const PY_SCRIPT: &str = r#"
from spiffe import JwtSvid, WorkloadApiClient

client = WorkloadApiClient()  # SPIFFE_ENDPOINT_SOCKET
svid = client.fetch_x509_svid()
print("x509", svid.spiffe_id)
print("chain", len(svid.cert_chain))
jwt = client.fetch_jwt_svid(audience={"plinth-test"})
print("jwt", jwt.spiffe_id)
checked = client.validate_jwt_svid(jwt.token, "plinth-test")
print("validated", checked.spiffe_id)
jwt_bundles = client.fetch_jwt_bundles()
jwt_bundle = jwt_bundles.get_bundle_for_trust_domain(jwt.spiffe_id.trust_domain)
local = JwtSvid.parse_and_validate(jwt.token, jwt_bundle, {"plinth-test"})
print("verified locally", local.spiffe_id)
bundles = client.fetch_x509_bundles()
print("bundle", bundles.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain) is not None)
client.close()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_spiffe_fetches_svids() {
    let python = tokio::task::spawn_blocking(py_spiffe_python).await.unwrap();
    // What /proc/<pid>/exe will name: the interpreter behind the venv's symlinks.
    let interpreter = std::fs::canonicalize(&python).unwrap();
    let source = CaSource::new(registrations(Some(&interpreter)));
    let server = Running::start(source, None);
    let dir = TempDir::new().unwrap();
    let script = dir.path().join("fetch.py");
    std::fs::write(&script, PY_SCRIPT).unwrap();
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .env("SPIFFE_ENDPOINT_SOCKET", server.endpoint())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "py-spiffe failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "x509 spiffe://example.org/python",
            "chain 1",
            "jwt spiffe://example.org/python",
            "validated spiffe://example.org/python",
            "verified locally spiffe://example.org/python",
            "bundle True",
        ],
        "{stdout}"
    );
    server.stop().await;
}
