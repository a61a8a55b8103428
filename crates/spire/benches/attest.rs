//! What the SPIRE plugin machinery costs on top of verification, per attestation.
//!
//! Interleaved, on the same real evidence (evervault's production Nitro document at its
//! fixed time, against a policy on its PCR0):
//! - `direct`: `Verifier::verify` of the evidence plus the agent ID and selectors, in
//!   process (what any plinth front end must do);
//! - `plugin`: a whole SPIRE Attest round trip through the host harness: a new Attest
//!   stream over the plugin's unix socket (plaintext HTTP/2 gRPC, as go-plugin dials it),
//!   payload → challenge → challenge response → AgentAttributes. The server plugin runs
//!   in this process on the same `goplugin::serve` the `plinth` binary uses, replaying
//!   the vector's recorded challenge (its nonce is fixed).
//!
//! Run: `cargo bench -p plinth-spire --features host,test-vectors --bench attest`. It
//! prints both rates and their ratio; the plugin overhead should be small.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark harness: any failure should abort loudly"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plinth_api::attestation::{Evidence, Hello, NitroEvidence, NitroHello, evidence, hello};
use plinth_core::{Platform, TrustDomain, UnixTime};
use plinth_evidence::{PendingChallenge, Trust, Verifier};
use plinth_policy::Policy;
use plinth_spire::host::{FnAnswer, LoadedPlugin, connect};
use plinth_spire::{Clock, Error, ServerPlugin, attributes, goplugin, proto};
use prost::Message as _;

const AT_MS: u64 = 1_665_651_482_136;
const PCR0: &str = "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b";

struct Fixed(UnixTime);

impl Clock for Fixed {
    fn now(&self) -> Result<UnixTime, Error> {
        Ok(self.0)
    }
}

fn policy_text() -> String {
    format!(
        "version = 1\nname = \"evervault-beta\"\nplatform = \"nitro\"\n\n[identity]\n\
         trust_domain = \"example.org\"\n\
         spiffe_id = \"spiffe://{{trust_domain}}/enclave/{{pcr0}}\"\nsvid_ttl_seconds = 900\n\n\
         [nitro]\nallow_debug = false\nmax_age_seconds = 300\n\n[nitro.pcrs]\n0 = [\"{PCR0}\"]\n"
    )
}

/// Mean time per call of `f`, run for about `budget`.
async fn time_per_call_async<F, Fut>(budget: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    let mut calls: u32 = 0;
    while start.elapsed() < budget || calls == 0 {
        f().await;
        calls += 1;
    }
    start.elapsed() / calls
}

/// The evervault document as the evidence answering its own recorded challenge.
fn vector() -> (UnixTime, PendingChallenge, Evidence) {
    let document = std::fs::read(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/nitro/evervault/valid-attestation-doc-bytes"
    )))
    .unwrap();
    let now = UnixTime::from_millis(AT_MS + 1_000);
    let nonce = plinth_nitro::verify(&document, &plinth_nitro::NitroTrust::aws_root_g1(), now)
        .unwrap()
        .document()
        .nonce()
        .unwrap()
        .to_vec();
    let pending = PendingChallenge::for_test_vector(
        nonce.clone(),
        Platform::Nitro,
        UnixTime::from_millis(AT_MS + 60_000),
    );
    let evidence = Evidence {
        nonce,
        platform: Some(evidence::Platform::Nitro(NitroEvidence { document })),
    };
    (now, pending, evidence)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let (rounds, slice) = if measuring {
        (11, Duration::from_millis(300))
    } else {
        (1, Duration::from_millis(1))
    };
    println!(
        "SPIRE Attest through the plugin vs direct verification (median; 11 rounds with --bench)"
    );

    let (now, pending, evidence) = vector();
    let evidence_bytes = evidence.encode_to_vec();
    let payload = Hello {
        platform: Some(hello::Platform::Nitro(NitroHello {})),
    }
    .encode_to_vec();

    // Direct.
    let policy = Policy::parse("evervault.toml", &policy_text()).unwrap();
    let verifier = Verifier::new(Trust::builtin().unwrap(), vec![policy]);
    let td = TrustDomain::new("example.org").unwrap();
    let direct_once = || {
        let appraised = verifier.verify(&pending, &evidence, now).unwrap();
        let _kept = std::hint::black_box(attributes(&td, &appraised).unwrap());
    };

    // Through the plugin.
    let dir = tempfile::tempdir().unwrap();
    let policy_path = dir.path().join("evervault.toml");
    std::fs::write(&policy_path, policy_text()).unwrap();
    let plugin = Arc::new(ServerPlugin::replaying(
        Arc::new(Fixed(now)),
        Arc::new(plinth_crypto::SystemRandom),
        pending.clone(),
    ));
    let socket = goplugin::PluginSocket::bind(Some(dir.path())).unwrap();
    let socket_path = socket.path().to_path_buf();
    let shutdown = goplugin::ShutdownSignal::new();
    let server = tokio::spawn(goplugin::serve(socket, plugin.routes(), shutdown.clone()));
    let host = LoadedPlugin::load(
        connect(&socket_path).await.unwrap(),
        proto::SERVER_NODE_ATTESTOR,
    )
    .await
    .unwrap();
    host.configure(
        "example.org",
        &format!("policies = {:?}", policy_path.display().to_string()),
    )
    .await
    .unwrap();
    let expected = {
        let appraised = verifier.verify(&pending, &evidence, now).unwrap();
        attributes(&td, &appraised).unwrap()
    };
    let through = host
        .attest(payload.clone(), FnAnswer(|_| Ok(evidence_bytes.clone())))
        .await
        .unwrap();
    assert_eq!(through, expected);

    let (mut d, mut p) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        d.push(
            time_per_call_async(slice, || async {
                direct_once();
            })
            .await,
        );
        p.push(
            time_per_call_async(slice, || async {
                let attributes = host
                    .attest(payload.clone(), FnAnswer(|_| Ok(evidence_bytes.clone())))
                    .await
                    .unwrap();
                let _kept = std::hint::black_box(attributes);
            })
            .await,
        );
    }
    d.sort();
    p.sort();
    let (d, p) = (d[rounds / 2], p[rounds / 2]);
    println!(
        "nitro (evervault)   direct {:>8.1} µs ({:>6.0}/s)   plugin {:>8.1} µs ({:>6.0}/s)   plugin/direct {:>5.2}×",
        d.as_secs_f64() * 1e6,
        1.0 / d.as_secs_f64(),
        p.as_secs_f64() * 1e6,
        1.0 / p.as_secs_f64(),
        p.as_secs_f64() / d.as_secs_f64()
    );
    host.unload().await.unwrap();
    server.await.unwrap().unwrap();
}
