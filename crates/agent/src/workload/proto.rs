//! The generated SPIFFE Workload API code (from `proto/spiffe/workload/workload.proto`;
//! no protobuf package, so the service is `SpiffeWorkloadAPI`). The client is public for
//! tests and tools; the server is what [`serve`](super::serve) runs.

plinth_api::generated!(
    /// The `SpiffeWorkloadAPI` service and its messages.
    workload,
    "_"
);

pub use workload::*;
