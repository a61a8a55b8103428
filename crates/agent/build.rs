//! Generates the SPIFFE Workload API code from the hand-written definition in
//! proto/spiffe/workload (protoc and its well-known types, for `google.protobuf.Struct`,
//! from Debian's protobuf-compiler and libprotobuf-dev). The client is generated too: the
//! tests call the API without the security header through it.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let files = ["spiffe/workload/workload.proto"].map(|f| format!("{root}/{f}"));
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_protos(&files, &[root.to_owned()])?;
    Ok(())
}
