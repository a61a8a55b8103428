//! The Workload API socket: created with restrictive permissions, then served.

use std::fs;
use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt as _;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio_stream::wrappers::UnixListenerStream;

use super::IdentitySource;
use super::authority::FixedStream;
use super::proto::spiffe_workload_api_server::SpiffeWorkloadApiServer;
use super::service::WorkloadApi;
use crate::Error;

/// The socket's default mode: owner only. Workloads running as other users need a wider
/// mode (for example 0660 with a shared group); the socket stays the only way in, and
/// every caller is still attested.
pub const DEFAULT_SOCKET_MODE: u32 = 0o600;

/// Where the Workload API listens, and the socket's permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketConfig {
    path: PathBuf,
    mode: u32,
}

impl SocketConfig {
    /// The socket at `path` (its `SPIFFE_ENDPOINT_SOCKET` is `unix://` + path), with
    /// [`DEFAULT_SOCKET_MODE`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            mode: DEFAULT_SOCKET_MODE,
        }
    }

    /// Sets the socket's permission bits (only the low 9 bits are used).
    #[must_use]
    pub const fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The permission bits the socket gets.
    pub const fn socket_mode(&self) -> u32 {
        self.mode
    }
}

/// A bound Workload API socket, ready to serve.
#[derive(Debug)]
pub struct WorkloadApiListener {
    listener: UnixListener,
    path: PathBuf,
}

fn socket_error<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::WorkloadSocket {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// Creates the socket: a stale socket at the path is removed (any other file there is an
/// error), the parent directory is created (0755) if missing, and the socket is bound
/// under a temporary name, given its mode, then renamed into place, so it is never
/// reachable with wider permissions. Must be called within a tokio runtime.
///
/// # Errors
/// [`Error::WorkloadSocket`] naming the step that failed.
pub fn bind(config: &SocketConfig) -> Result<WorkloadApiListener, Error> {
    let path = config.path();
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_socket() => {
            fs::remove_file(path).map_err(socket_error(path, "removing the stale socket"))?;
        }
        Ok(_) => {
            return Err(socket_error(
                path,
                "a file that is not a socket is in the way",
            )(io::Error::from(io::ErrorKind::AlreadyExists)));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(socket_error(path, "inspecting the path")(e)),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(socket_error(path, "creating the directory"))?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    if fs::symlink_metadata(&temporary).is_ok_and(|m| m.file_type().is_socket()) {
        fs::remove_file(&temporary).map_err(socket_error(path, "removing a stale socket"))?;
    }
    let listener = UnixListener::bind(&temporary).map_err(socket_error(path, "binding"))?;
    let placed = fs::set_permissions(&temporary, fs::Permissions::from_mode(config.mode))
        .map_err(socket_error(path, "setting the socket's mode"))
        .and_then(|()| {
            fs::rename(&temporary, path).map_err(socket_error(path, "moving the socket into place"))
        });
    if let Err(e) = placed {
        let _ignored = fs::remove_file(&temporary);
        return Err(e);
    }
    Ok(WorkloadApiListener {
        listener,
        path: path.to_path_buf(),
    })
}

impl WorkloadApiListener {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves the Workload API from `source` until `shutdown` completes; then open
    /// streams end, the server stops and the socket file is removed.
    ///
    /// # Errors
    /// [`Error::WorkloadServer`] when the server fails.
    pub async fn serve(
        self,
        source: Arc<dyn IdentitySource>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let api = WorkloadApi::new(source, stop_rx);
        // Every connection through the :authority fix for gRPC C-core clients.
        let incoming =
            UnixListenerStream::new(self.listener).map(|accepted| accepted.map(FixedStream::new));
        let result = tonic::transport::Server::builder()
            .add_service(SpiffeWorkloadApiServer::new(api))
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                // Ends every open stream, so that the graceful shutdown completes.
                let _closed = stop_tx.send(true);
            })
            .await;
        if fs::symlink_metadata(&self.path).is_ok_and(|m| m.file_type().is_socket()) {
            let _ignored = fs::remove_file(&self.path);
        }
        result.map_err(Error::WorkloadServer)
    }
}
