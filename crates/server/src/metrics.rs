//! Prometheus metrics, served as text on `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // 250 µs to about 8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// The server's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    attestations: Family<Labels, Counter>,
    attestation_latency: Family<Labels, Histogram, fn() -> Histogram>,
    stage_latency: Family<Labels, Histogram, fn() -> Histogram>,
    nonces: Family<Labels, Counter>,
    svids_outstanding: Gauge<i64, AtomicI64>,
    ca_expiry: Gauge<i64, AtomicI64>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("plinth");
        let attestations = Family::<Labels, Counter>::default();
        registry.register(
            "attestations",
            "Attestations by platform and verdict (refused: no SVID was issued)",
            attestations.clone(),
        );
        let attestation_latency: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "attestation_duration_seconds",
            "Evidence received to result sent, by platform",
            attestation_latency.clone(),
        );
        let stage_latency: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "stage_duration_seconds",
            "Time per stage: verify_appraise, mint, store",
            stage_latency.clone(),
        );
        let nonces = Family::<Labels, Counter>::default();
        registry.register(
            "nonces",
            "Challenges by outcome: issued, refused, consumed, replayed, expired, unknown",
            nonces.clone(),
        );
        let svids_outstanding = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "svids_outstanding",
            "Issued X.509-SVIDs not yet expired",
            svids_outstanding.clone(),
        );
        let ca_expiry = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "ca_expiry_timestamp_seconds",
            "notAfter of the active CA authority (Unix seconds)",
            ca_expiry.clone(),
        );
        Self {
            registry,
            attestations,
            attestation_latency,
            stage_latency,
            nonces,
            svids_outstanding,
            ca_expiry,
        }
    }

    pub(crate) fn attestation(&self, platform: &str, verdict: &str, elapsed: Duration) {
        let _total = self
            .attestations
            .get_or_create(&vec![
                ("platform", platform.to_owned()),
                ("verdict", verdict.to_owned()),
            ])
            .inc();
        self.attestation_latency
            .get_or_create(&vec![("platform", platform.to_owned())])
            .observe(elapsed.as_secs_f64());
    }

    pub(crate) fn stage(&self, stage: &str, elapsed: Duration) {
        self.stage_latency
            .get_or_create(&vec![("stage", stage.to_owned())])
            .observe(elapsed.as_secs_f64());
    }

    pub(crate) fn nonce(&self, outcome: &str) {
        let _total = self
            .nonces
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    pub(crate) fn set_svids_outstanding(&self, count: u64) {
        let _previous = self
            .svids_outstanding
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub(crate) fn set_ca_expiry(&self, unix_seconds: u64) {
        let _previous = self
            .ca_expiry
            .set(i64::try_from(unix_seconds).unwrap_or(i64::MAX));
    }

    fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _written = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Serves `/metrics` on `listener` until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: Arc<crate::app::App>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let app = Arc::clone(&metrics);
        let _task = tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let app = Arc::clone(&app);
                async move {
                    if request.uri().path() == "/metrics" {
                        Response::builder()
                            .header(
                                "content-type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                            .body(Full::new(Bytes::from(app.metrics.render())))
                    } else {
                        Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Full::new(Bytes::from_static(b"not found\n")))
                    }
                }
            });
            let _served = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The bound address of a metrics listener, for logs.
pub(crate) fn describe(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}
