//! `plinth registration …` and `plinth node …`: the server's admin API over its local unix
//! socket (`<data dir>/admin.sock`, mode 0600: whoever can open it is an admin).
//!
//! The socket is `--socket`, else `admin.sock` in `--data-dir`, else `$PLINTH_ADMIN_SOCKET`,
//! else `admin.sock` in `$PLINTH_DATA_DIR`, else `plinth-data/admin.sock` (the server's
//! defaults). A refused call prints the server's message and its `plinth-error-code`, and
//! exits 1.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use hyper_util::rt::TokioIo;
use plinth_api::admin::admin_client::AdminClient;
use plinth_api::admin::{
    BanNodeRequest, CreateRegistrationRequest, DeleteRegistrationRequest, EvictNodeRequest,
    ListNodesRequest, ListRegistrationsRequest, Node, NodeSelector, Registration, UnbanNodeRequest,
    node_selector,
};
use plinth_core::UnixTime;
use serde_json::{Value, json};
use tonic::transport::{Channel, Endpoint};

use crate::output::out;

/// The server's default data directory (`plinth_server::Config`).
const DEFAULT_DATA_DIR: &str = "plinth-data";

/// Which server to talk to.
#[derive(Args)]
pub(crate) struct AdminTarget {
    /// The server's admin socket (default: `<data dir>/admin.sock`; env PLINTH_ADMIN_SOCKET).
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "data_dir")]
    socket: Option<PathBuf>,
    /// The server's data directory, whose `admin.sock` to use [default: `plinth-data`;
    /// env PLINTH_DATA_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

impl AdminTarget {
    fn socket_path(&self) -> PathBuf {
        let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(socket) = &self.socket {
            socket.clone()
        } else if let Some(dir) = &self.data_dir {
            dir.join("admin.sock")
        } else if let Some(socket) = env("PLINTH_ADMIN_SOCKET") {
            PathBuf::from(socket)
        } else {
            env("PLINTH_DATA_DIR")
                .map_or_else(|| PathBuf::from(DEFAULT_DATA_DIR), PathBuf::from)
                .join("admin.sock")
        }
    }
}

/// `plinth registration`.
#[derive(Args)]
pub(crate) struct RegistrationArgs {
    #[command(flatten)]
    target: AdminTarget,
    #[command(subcommand)]
    command: RegistrationCommand,
}

/// Registrations: which appraised nodes (and workloads under them) get which SPIFFE ID.
#[derive(Subcommand)]
enum RegistrationCommand {
    /// Grant a SPIFFE ID to nodes (or, with --parent-id, workloads) matching every selector.
    Create {
        /// The SPIFFE ID granted (in the server's trust domain).
        #[arg(long, value_name = "ID")]
        spiffe_id: String,
        /// A node's SPIFFE ID: makes this a workload registration under that node.
        #[arg(long, value_name = "ID")]
        parent_id: Option<String>,
        /// A selector the node must have (`policy:NAME`, `tpm:ek-hash:HEX`, …); repeatable.
        #[arg(long = "selector", value_name = "S")]
        selectors: Vec<String>,
        /// SVID lifetime in seconds [default: the server's].
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u64>,
        /// Print the created registration as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every registration.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a registration by its ID.
    Delete {
        /// The registration's ID (as `list` prints it).
        id: String,
    },
}

/// `plinth node`.
#[derive(Args)]
pub(crate) struct NodeArgs {
    #[command(flatten)]
    target: AdminTarget,
    #[command(subcommand)]
    command: NodeCommand,
}

/// A node named by SPIFFE ID or hardware ID.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct NodeName {
    /// The node's SPIFFE ID.
    #[arg(long, value_name = "ID")]
    spiffe_id: Option<String>,
    /// The node's hardware ID (TPM EK hash, SEV-SNP chip ID, Nitro module ID), as `node
    /// list` prints it.
    #[arg(long, value_name = "ID")]
    hardware_id: Option<String>,
}

impl NodeName {
    fn selector(&self) -> NodeSelector {
        let by = match (&self.spiffe_id, &self.hardware_id) {
            (Some(id), _) => node_selector::By::SpiffeId(id.clone()),
            (None, Some(id)) => node_selector::By::HardwareId(id.clone()),
            // clap's group makes exactly one present; an empty selector is refused by the
            // server with a message naming both.
            (None, None) => return NodeSelector { by: None },
        };
        NodeSelector { by: Some(by) }
    }
}

/// Node lifecycle: list attested nodes, ban, unban, evict.
#[derive(Subcommand)]
enum NodeCommand {
    /// List attested nodes with their last appraisal.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ban a node: its next attestation and renewal fail until it is unbanned.
    Ban {
        #[command(flatten)]
        node: NodeName,
        /// Why (kept with the ban and logged).
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Lift a ban.
    Unban {
        #[command(flatten)]
        node: NodeName,
    },
    /// Forget a node: its current SVID no longer renews; it may attest afresh.
    Evict {
        /// The node's SPIFFE ID.
        spiffe_id: String,
    },
}

/// Runs a `plinth registration` command.
pub(crate) fn run_registration(args: RegistrationArgs) -> ExitCode {
    let socket = args.target.socket_path();
    finish(call(socket, |mut client| async move {
        match args.command {
            RegistrationCommand::Create {
                spiffe_id,
                parent_id,
                selectors,
                ttl,
                json,
            } => {
                let created = client
                    .create_registration(CreateRegistrationRequest {
                        spiffe_id,
                        parent_id: parent_id.unwrap_or_default(),
                        selectors,
                        ttl_seconds: ttl.unwrap_or(0),
                    })
                    .await?
                    .into_inner();
                if json {
                    out!("{:#}", registration_json(&created));
                } else {
                    out!(
                        "created registration {} for {}",
                        created.id,
                        created.spiffe_id
                    );
                }
            }
            RegistrationCommand::List { json } => {
                let listed = client
                    .list_registrations(ListRegistrationsRequest {})
                    .await?
                    .into_inner()
                    .registrations;
                if json {
                    let all: Vec<Value> = listed.iter().map(registration_json).collect();
                    out!("{:#}", Value::Array(all));
                } else if listed.is_empty() {
                    out!("no registrations");
                } else {
                    for r in &listed {
                        out!("{}", registration_line(r));
                    }
                }
            }
            RegistrationCommand::Delete { id } => {
                let _deleted = client
                    .delete_registration(DeleteRegistrationRequest { id: id.clone() })
                    .await?;
                out!("deleted registration {id}");
            }
        }
        Ok(())
    }))
}

/// Runs a `plinth node` command.
pub(crate) fn run_node(args: NodeArgs) -> ExitCode {
    let socket = args.target.socket_path();
    finish(call(socket, |mut client| async move {
        match args.command {
            NodeCommand::List { json } => {
                let nodes = client
                    .list_nodes(ListNodesRequest {})
                    .await?
                    .into_inner()
                    .nodes;
                if json {
                    let all: Vec<Value> = nodes.iter().map(node_json).collect();
                    out!("{:#}", Value::Array(all));
                } else if nodes.is_empty() {
                    out!("no attested nodes");
                } else {
                    for n in &nodes {
                        out!("{}", node_line(n));
                    }
                }
            }
            NodeCommand::Ban { node, reason } => {
                let _banned = client
                    .ban_node(BanNodeRequest {
                        node: Some(node.selector()),
                        reason,
                    })
                    .await?;
                out!("banned {}", node_label(&node));
            }
            NodeCommand::Unban { node } => {
                let _unbanned = client
                    .unban_node(UnbanNodeRequest {
                        node: Some(node.selector()),
                    })
                    .await?;
                out!("unbanned {}", node_label(&node));
            }
            NodeCommand::Evict { spiffe_id } => {
                let _evicted = client
                    .evict_node(EvictNodeRequest {
                        spiffe_id: spiffe_id.clone(),
                    })
                    .await?;
                out!("evicted {spiffe_id}");
            }
        }
        Ok(())
    }))
}

/// Why an admin command failed.
enum Failure {
    /// The server refused the call.
    Refused(tonic::Status),
    /// The server could not be reached (or the runtime would not start).
    Other(anyhow::Error),
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Self::Refused(status)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::Other(error)
    }
}

fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(status)) => {
            let code = status
                .metadata()
                .get(plinth_server::ERROR_CODE_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none");
            eprintln!(
                "error: {} (gRPC {:?}, {}: {code})",
                status.message(),
                status.code(),
                plinth_server::ERROR_CODE_HEADER
            );
            ExitCode::FAILURE
        }
        Err(Failure::Other(error)) => {
            eprintln!("error: {}", crate::output::reason(&error));
            ExitCode::FAILURE
        }
    }
}

/// Connects to the admin socket and runs `body` with a client, on a one-thread runtime.
fn call<F, Fut>(socket: PathBuf, body: F) -> Result<(), Failure>
where
    F: FnOnce(AdminClient<Channel>) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let channel = connect(socket).await?;
        body(AdminClient::new(channel)).await
    })
}

/// A gRPC channel over the unix socket (the URI is a placeholder: every connection goes
/// to the socket).
async fn connect(socket: PathBuf) -> Result<Channel> {
    let display = socket.display().to_string();
    Endpoint::try_from("http://[::]:50051")
        .context("admin endpoint")?
        .connect_with_connector(tower::service_fn(move |_| {
            let path = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .with_context(|| {
            format!("cannot reach the admin socket {display} (is the server running?)")
        })
}

fn time_text(ms: i64) -> String {
    u64::try_from(ms).map_or_else(
        |_| ms.to_string(),
        |ms| UnixTime::from_millis(ms).to_string(),
    )
}

fn registration_json(r: &Registration) -> Value {
    json!({
        "id": r.id,
        "spiffe_id": r.spiffe_id,
        "parent_id": (!r.parent_id.is_empty()).then_some(&r.parent_id),
        "selectors": r.selectors,
        "ttl_seconds": (r.ttl_seconds > 0).then_some(r.ttl_seconds),
        "created_at": time_text(r.created_at_ms),
    })
}

fn registration_line(r: &Registration) -> String {
    let mut line = format!("{}  {}", r.id, r.spiffe_id);
    if !r.parent_id.is_empty() {
        let _ok = write!(line, "  parent={}", r.parent_id);
    }
    let _ok = write!(line, "  selectors={}", r.selectors.join(","));
    if r.ttl_seconds > 0 {
        let _ok = write!(line, "  ttl={}s", r.ttl_seconds);
    }
    let _ok = write!(line, "  created={}", time_text(r.created_at_ms));
    line
}

fn node_json(n: &Node) -> Value {
    json!({
        "spiffe_id": n.spiffe_id,
        "platform": n.platform,
        "hardware_id": (!n.hardware_id.is_empty()).then_some(&n.hardware_id),
        "policy_name": n.policy_name,
        "policy_hash": n.policy_hash,
        "first_attested_at": time_text(n.first_attested_at_ms),
        "last_attested_at": time_text(n.last_attested_at_ms),
        "last_verdict": n.last_verdict,
        "last_audit_seq": n.last_audit_seq,
        "banned": n.banned,
    })
}

fn node_line(n: &Node) -> String {
    let hardware = if n.hardware_id.is_empty() {
        "-"
    } else {
        n.hardware_id.as_str()
    };
    format!(
        "{}  {}  hardware={hardware}  policy={}  last={} {} (audit #{}){}",
        n.spiffe_id,
        n.platform,
        n.policy_name,
        time_text(n.last_attested_at_ms),
        n.last_verdict,
        n.last_audit_seq,
        if n.banned { "  BANNED" } else { "" }
    )
}

fn node_label(node: &NodeName) -> String {
    match (&node.spiffe_id, &node.hardware_id) {
        (Some(id), _) => id.clone(),
        (None, Some(id)) => format!("hardware ID {id}"),
        (None, None) => String::new(),
    }
}
