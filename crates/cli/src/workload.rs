//! `plinth workload fetch`: what a workload sees on the SPIFFE Workload API socket — its
//! X.509-SVID (and, with `--audience`, a JWT-SVID) — with the chain checked against the
//! bundle delivered beside it. A diagnostic client; applications use a SPIFFE library.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use plinth_agent::workload::SECURITY_HEADER;
use plinth_agent::workload::proto::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use plinth_agent::workload::proto::{JwtsvidRequest, X509svidRequest};
use plinth_core::UnixTime;
use plinth_x509::{Certificate, ChainOptions, TrustAnchors};
use serde_json::json;
use tonic::transport::Channel;

/// `plinth workload` options.
#[derive(Args)]
pub(crate) struct WorkloadArgs {
    /// The Workload API socket (default: `SPIFFE_ENDPOINT_SOCKET`, `unix:///path`).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Also fetch a JWT-SVID for this audience.
    #[arg(long)]
    audience: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &WorkloadArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return crate::output::failure(args.json, &anyhow::Error::from(error)),
    };
    match runtime.block_on(fetch(args)) {
        Ok((value, human)) => crate::output::success(args.json, &value, &human),
        Err(error) => crate::output::failure(args.json, &error),
    }
}

fn socket_path(args: &WorkloadArgs) -> Result<PathBuf> {
    if let Some(path) = &args.socket {
        return Ok(path.clone());
    }
    let endpoint = std::env::var("SPIFFE_ENDPOINT_SOCKET")
        .context("give --socket or set SPIFFE_ENDPOINT_SOCKET")?;
    let Some(path) = endpoint.strip_prefix("unix://") else {
        bail!("SPIFFE_ENDPOINT_SOCKET must be unix:///path, not {endpoint}");
    };
    Ok(PathBuf::from(path))
}

fn with_header<T>(message: T) -> Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    let _previous = request
        .metadata_mut()
        .insert(SECURITY_HEADER, "true".parse()?);
    Ok(request)
}

/// Splits concatenated DER certificates (the Workload API's chain and bundle form).
fn split_der(mut bytes: &[u8]) -> Result<Vec<Certificate>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (rest, _) = x509_parser::parse_x509_certificate(bytes)
            .map_err(|e| anyhow::anyhow!("malformed certificate: {e}"))?;
        let (one, rest) = bytes.split_at(bytes.len() - rest.len());
        out.push(Certificate::from_der(one)?);
        bytes = rest;
    }
    Ok(out)
}

async fn fetch(args: &WorkloadArgs) -> Result<(serde_json::Value, String)> {
    let path = socket_path(args)?;
    let channel: Channel = plinth_client::connect_unix(path.clone())
        .await
        .with_context(|| format!("connecting to {}", path.display()))?;
    let mut client = SpiffeWorkloadApiClient::new(channel);
    let mut stream = client
        .fetch_x509svid(with_header(X509svidRequest {})?)
        .await?
        .into_inner();
    let response = stream
        .message()
        .await?
        .context("the agent closed the stream")?;
    let svid = response.svids.first().context("no X.509-SVID")?;
    let chain = split_der(&svid.x509_svid)?;
    let leaf = chain.first().context("empty chain")?;
    let anchors = TrustAnchors::from_certificates(split_der(&svid.bundle)?);
    let now = UnixTime::from_secs(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs());
    let options = ChainOptions::new()
        .allow_critical_extension(plinth_x509::oids::SUBJECT_ALT_NAME)
        .require_extended_key_usage(plinth_x509::Oid::parse("1.3.6.1.5.5.7.3.2")?);
    let intermediates = chain.get(1..).unwrap_or_default();
    let _verified = plinth_x509::verify_chain(leaf, intermediates, &anchors, now, &options)
        .context("the SVID does not chain to the bundle")?;
    let not_after = leaf.validity().not_after();
    let mut human = format!(
        "X.509-SVID {}\n  expires {not_after}\n  chain of {} verified against the bundle ({} root(s))",
        svid.spiffe_id,
        chain.len(),
        anchors.len()
    );
    let mut value = json!({
        "spiffe_id": svid.spiffe_id,
        "not_after_ms": not_after.as_millis(),
        "chain_len": chain.len(),
    });
    if let Some(audience) = &args.audience {
        let reply = client
            .fetch_jwtsvid(with_header(JwtsvidRequest {
                audience: vec![audience.clone()],
                spiffe_id: String::new(),
            })?)
            .await?
            .into_inner();
        let jwt = reply.svids.first().context("no JWT-SVID")?;
        let _ = write!(
            human,
            "\nJWT-SVID {} for audience {audience} ({} bytes)",
            jwt.spiffe_id,
            jwt.svid.len()
        );
        if let Some(object) = value.as_object_mut() {
            let _previous = object.insert(
                "jwt_svid".to_owned(),
                json!({ "spiffe_id": jwt.spiffe_id, "token": jwt.svid }),
            );
        }
    }
    Ok((value, human))
}
