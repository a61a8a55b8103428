//! Generates the gRPC code from the hand-written definitions in proto/ (protoc from
//! Debian's protobuf-compiler).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let files = [
        "plinth/attestation/v1/attestation.proto",
        "plinth/admin/v1/admin.proto",
    ]
    .map(|f| format!("{root}/{f}"));
    for file in &files {
        println!("cargo:rerun-if-changed={file}");
    }
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_protos(&files, &[root.to_owned()])?;
    Ok(())
}
