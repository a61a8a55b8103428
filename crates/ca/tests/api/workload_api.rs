//! A minimal SPIFFE Workload API serving one fixed X.509-SVID, so that the real
//! `spiffe::X509Source` (and through it `spiffe-rustls`) can be pointed at SVIDs minted by
//! plinth. Messages are written from the Workload API definition (workload.proto):
//! service `SpiffeWorkloadAPI`, method `FetchX509SVID`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt as _, stream};
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::{Grpc, NamedService, ServerStreamingService};

#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub(crate) struct X509SvidRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct X509SvidResponse {
    #[prost(message, repeated, tag = "1")]
    pub(crate) svids: Vec<X509Svid>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub(crate) crl: Vec<Vec<u8>>,
    #[prost(map = "string, bytes", tag = "3")]
    pub(crate) federated_bundles: HashMap<String, Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
#[expect(
    clippy::struct_field_names,
    reason = "the field names of workload.proto"
)]
pub(crate) struct X509Svid {
    #[prost(string, tag = "1")]
    pub(crate) spiffe_id: String,
    /// The chain, leaf first, DER concatenated.
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) x509_svid: Vec<u8>,
    /// PKCS#8 DER.
    #[prost(bytes = "vec", tag = "3")]
    pub(crate) x509_svid_key: Vec<u8>,
    /// The trust domain's X.509 authorities, DER concatenated.
    #[prost(bytes = "vec", tag = "4")]
    pub(crate) bundle: Vec<u8>,
    #[prost(string, tag = "5")]
    pub(crate) hint: String,
}

type Updates = Pin<Box<dyn Stream<Item = Result<X509SvidResponse, tonic::Status>> + Send>>;

struct FetchX509Svid(Arc<X509SvidResponse>);

impl ServerStreamingService<X509SvidRequest> for FetchX509Svid {
    type Response = X509SvidResponse;
    type ResponseStream = Updates;
    type Future = BoxFuture<tonic::Response<Updates>, tonic::Status>;

    fn call(&mut self, _request: tonic::Request<X509SvidRequest>) -> Self::Future {
        let first = (*self.0).clone();
        Box::pin(async move {
            // The first response at once, then the stream stays open (no rotation here).
            let updates: Updates =
                Box::pin(stream::once(async move { Ok(first) }).chain(stream::pending()));
            Ok(tonic::Response::new(updates))
        })
    }
}

#[derive(Clone)]
struct WorkloadApi(Arc<X509SvidResponse>);

impl NamedService for WorkloadApi {
    const NAME: &'static str = "SpiffeWorkloadAPI";
}

impl Service<http::Request<Body>> for WorkloadApi {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let response = Arc::clone(&self.0);
        Box::pin(async move {
            if request.uri().path() == "/SpiffeWorkloadAPI/FetchX509SVID" {
                let mut grpc = Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc
                    .server_streaming(FetchX509Svid(response), request)
                    .await)
            } else {
                Ok(tonic::Status::unimplemented("not served by this test").into_http())
            }
        })
    }
}

/// Serves `response` on a loopback port; returns the endpoint (`tcp://127.0.0.1:port`).
pub(crate) async fn serve(response: X509SvidResponse) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let api = WorkloadApi(Arc::new(response));
    let _server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .serve_with_incoming(api, tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    format!("tcp://{address}")
}
