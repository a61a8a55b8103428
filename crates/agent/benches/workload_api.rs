//! The Workload API's throughput and its update fan-out.
//!
//! - `fetch`: FetchX509SVID calls over the unix socket (a stream opened, its first
//!   message read, the stream dropped), one connection, sequential: attestation of the
//!   caller (peer credentials, /proc, the executable's cached SHA-256), the response
//!   from the identity source, protobuf and HTTP/2. Compared with `direct`: the same
//!   source calls (identities, snapshot) in process, and with FetchJWTSVID (which also
//!   signs a token).
//! - `fan-out`: 100 clients, each on its own connection with an open FetchX509SVID
//!   stream; the source rotates the SVID and ticks; the time from the tick to each
//!   client's receipt of the new SVID, and to the last client's (p50/p99 over rounds).
//!
//! The SVIDs come from a real plinth CA (P-256). Run:
//! `cargo bench -p plinth-agent --bench workload_api` (a short round without `--bench`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark harness: any failure should abort loudly"
)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use plinth_agent::workload::proto::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use plinth_agent::workload::proto::{JwtsvidRequest, X509svidRequest};
use plinth_agent::workload::{
    Bundles, Identity, IdentitySource, Registration, SocketConfig, X509Snapshot, X509SvidMaterial,
    bind, matching_identities,
};
use plinth_ca::{CaDir, InitOptions};
use plinth_core::{BoundKey, SpiffeId, TrustDomain, UnixTime};
use plinth_crypto::{Curve, EcdsaSigningKey, SystemRandom};
use tokio::sync::watch;
use tonic::transport::Channel;

const CLIENTS: usize = 100;

fn now() -> UnixTime {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    UnixTime::from_millis(u64::try_from(elapsed.as_millis()).unwrap())
}

/// A real CA behind the API: one registered ID, re-minted on `rotate`.
struct CaSource {
    ca: CaDir,
    trust_domain: TrustDomain,
    registrations: Vec<Registration>,
    svid: Mutex<Option<X509SvidMaterial>>,
    changes: watch::Sender<u64>,
}

impl CaSource {
    /// Mints a new key and SVID, then ticks; returns the instant of the tick.
    fn rotate(&self) -> Instant {
        let key = EcdsaSigningKey::generate(Curve::P256, &SystemRandom).unwrap();
        let bound = BoundKey::from_spki_der(key.public_key().spki_der().to_vec());
        let id = &self.registrations[0].id;
        let svid = self
            .ca
            .ca()
            .mint_x509_svid(id, &bound, None, now(), &SystemRandom)
            .unwrap();
        *self.svid.lock().unwrap() = Some(X509SvidMaterial {
            id: id.clone(),
            chain_der: svid.chain_der(),
            key_pkcs8: key.to_pkcs8().unwrap(),
        });
        let tick = Instant::now();
        self.changes.send_modify(|n| *n += 1);
        tick
    }
}

impl IdentitySource for CaSource {
    fn identities_for(&self, selectors: &[String]) -> Vec<Identity> {
        matching_identities(&self.registrations, selectors)
    }

    fn x509(&self, identities: &[Identity]) -> Option<X509Snapshot> {
        let svid = self.svid.lock().unwrap().clone()?;
        if !identities.iter().any(|i| i.id == svid.id) {
            return None;
        }
        Some(X509Snapshot {
            svids: vec![svid],
            bundles: BTreeMap::from([(
                self.trust_domain.clone(),
                self.ca.ca().bundle().x509_der(),
            )]),
        })
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn jwt_svid<'a>(
        &'a self,
        id: &'a SpiffeId,
        audience: &'a [String],
    ) -> BoxFuture<'a, Result<String, tonic::Status>> {
        Box::pin(async move {
            self.ca
                .ca()
                .mint_jwt_svid(id, audience, None, now())
                .map(|svid| svid.token().to_owned())
                .map_err(|e| tonic::Status::internal(e.to_string()))
        })
    }

    fn bundles(&self) -> Option<Bundles> {
        let bundle = self.ca.ca().bundle();
        Some(Bundles {
            x509: BTreeMap::from([(self.trust_domain.clone(), bundle.x509_der())]),
            jwt: BTreeMap::from([(self.trust_domain.clone(), bundle.to_jwt_jwks())]),
        })
    }
}

fn with_header<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let _ = request
        .metadata_mut()
        .insert("workload.spiffe.io", "true".parse().unwrap());
    request
}

async fn connect(endpoint: &str) -> SpiffeWorkloadApiClient<Channel> {
    let endpoint = spiffe::transport::Endpoint::parse(endpoint).unwrap();
    SpiffeWorkloadApiClient::new(spiffe::transport::connect(&endpoint).await.unwrap())
}

/// Calls per second of `f`, run for about `budget`.
async fn rate<F, Fut>(budget: Duration, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    let mut calls = 0_u32;
    while start.elapsed() < budget {
        f().await;
        calls += 1;
    }
    f64::from(calls) / start.elapsed().as_secs_f64()
}

/// The `p`th percentile (nearest rank) of a sorted, non-empty list.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let (budget, rounds) = if measuring {
        (Duration::from_secs(5), 50)
    } else {
        (Duration::from_millis(300), 5)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(budget, rounds));
}

async fn run(budget: Duration, rounds: usize) {
    let dir = tempfile::TempDir::new().unwrap();
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
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    let id = SpiffeId::parse("spiffe://example.org/bench").unwrap();
    let source = Arc::new(CaSource {
        ca,
        trust_domain,
        registrations: vec![Registration {
            id: id.clone(),
            selectors: vec![format!("unix:uid:{uid}")],
            hint: String::new(),
        }],
        svid: Mutex::new(None),
        changes: watch::channel(0).0,
    });
    let _tick = source.rotate();
    let socket = dir.path().join("api.sock");
    let listener = bind(&SocketConfig::new(&socket)).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shared: Arc<dyn IdentitySource> = source.clone();
    let server = tokio::spawn(listener.serve(shared, async move {
        let _ = stopped.await;
    }));
    let endpoint = format!("unix://{}", socket.display());
    fetch_rates(&source, &endpoint, uid, budget).await;
    fan_out(&source, &endpoint, rounds).await;
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// FetchX509SVID and FetchJWTSVID calls per second, against the source called directly.
async fn fetch_rates(source: &CaSource, endpoint: &str, uid: u32, budget: Duration) {
    let client = connect(endpoint).await;
    // Warm-up: the first attestation hashes this executable (then cached).
    let _ = client
        .clone()
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .unwrap();
    let direct = rate(budget, || {
        let identities = source.identities_for(&[format!("unix:uid:{uid}")]);
        let snapshot = source.x509(&identities).unwrap();
        assert_eq!(snapshot.svids.len(), 1);
        std::future::ready(())
    })
    .await;
    let fetch = rate(budget, || {
        let mut client = client.clone();
        async move {
            let mut stream = client
                .fetch_x509svid(with_header(X509svidRequest {}))
                .await
                .unwrap()
                .into_inner();
            let first = stream.message().await.unwrap().unwrap();
            assert_eq!(first.svids.len(), 1);
        }
    })
    .await;
    let jwt = rate(budget, || {
        let mut client = client.clone();
        async move {
            let response = client
                .fetch_jwtsvid(with_header(JwtsvidRequest {
                    audience: vec!["bench".to_owned()],
                    spiffe_id: String::new(),
                }))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(response.svids.len(), 1);
        }
    })
    .await;
    println!("Workload API fetches over the unix socket (one connection, sequential)");
    println!("  FetchX509SVID        {fetch:>10.0} /s");
    println!("  FetchJWTSVID         {jwt:>10.0} /s   (signs a JWT-SVID per call)");
    println!("  direct source calls  {direct:>10.0} /s   (in process, no API)");
    println!(
        "  ratio direct/FetchX509SVID = {:.1}x  (the cost of attestation, gRPC and the socket)",
        direct / fetch
    );
}

/// CLIENTS streams, each on its own connection; `rounds` rotations.
async fn fan_out(source: &CaSource, endpoint: &str, rounds: usize) {
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let mut ready = Vec::new();
    for index in 0..CLIENTS {
        let mut client = connect(endpoint).await;
        let seen = seen_tx.clone();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        ready.push(ready_rx);
        drop(tokio::spawn(async move {
            let mut stream = client
                .fetch_x509svid(with_header(X509svidRequest {}))
                .await
                .unwrap()
                .into_inner();
            let _first = stream.message().await.unwrap().unwrap();
            let _ = ready_tx.send(());
            while let Ok(Some(_update)) = stream.message().await {
                if seen.send((index, Instant::now())).is_err() {
                    break;
                }
            }
        }));
    }
    for ready in ready {
        ready.await.unwrap();
    }
    let mut last = Vec::with_capacity(rounds);
    let mut each = Vec::with_capacity(rounds * CLIENTS);
    for _ in 0..rounds {
        let tick = source.rotate();
        let mut received = [false; CLIENTS];
        let mut latest = Duration::ZERO;
        for _ in 0..CLIENTS {
            let (index, at) = seen_rx.recv().await.unwrap();
            assert!(!received[index], "one update per rotation per client");
            received[index] = true;
            let latency = at.duration_since(tick);
            each.push(latency);
            latest = latest.max(latency);
        }
        last.push(latest);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    last.sort();
    each.sort();
    println!();
    println!("Rotation fan-out to {CLIENTS} streaming clients ({rounds} rotations)");
    println!(
        "  to the last client:  p50 {}   p99 {}",
        ms(percentile(&last, 50)),
        ms(percentile(&last, 99))
    );
    println!(
        "  to each client:      p50 {}   p99 {}",
        ms(percentile(&each, 50)),
        ms(percentile(&each, 99))
    );
    println!(
        "  ratio last/each p50 = {:.1}x",
        percentile(&last, 50).as_secs_f64() / percentile(&each, 50).as_secs_f64()
    );
}
