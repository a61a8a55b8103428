//! Generates the gRPC code for the go-plugin and SPIRE plugin services from the
//! hand-written definitions in proto/goplugin and proto/spire (protoc from Debian's
//! protobuf-compiler). Clients are generated too: the test host plays SPIRE's side.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let files = [
        "goplugin/plugin.proto",
        "spire/service/private/init/v1/init.proto",
        "spire/service/common/config/v1/config.proto",
        "spire/plugin/server/nodeattestor/v1/nodeattestor.proto",
        "spire/plugin/agent/nodeattestor/v1/nodeattestor.proto",
    ]
    .map(|f| format!("{root}/{f}"));
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_protos(&files, &[root.to_owned()])?;
    Ok(())
}
