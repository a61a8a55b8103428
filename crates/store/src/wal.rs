//! SQLite WAL checkpoints, off the audit writer's path.
//!
//! SQLite's default is to checkpoint (copy the write-ahead log back into the database
//! file) inside whichever COMMIT crosses 1,000 WAL pages: under load, that is the audit
//! appender's commit, and every attestation in the batch waits for the copy. Instead,
//! automatic checkpoints are off for every connection (`sqlite_session`) and this task
//! runs a PASSIVE checkpoint (which never blocks the writer or readers) on its own
//! connection every [`INTERVAL`], until the store's appender has finished.

use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::watch;

/// How often the WAL is copied back into the database file.
pub(crate) const INTERVAL: Duration = Duration::from_millis(200);

/// Starts the checkpointer on the current Tokio runtime. It ends when `finished` turns
/// true (or its sender is gone), after one last checkpoint.
pub(crate) fn start_checkpointer(pool: AnyPool, mut finished: watch::Receiver<bool>) {
    drop(tokio::spawn(async move {
        loop {
            let finishing = async {
                let _ = finished.wait_for(|done| *done).await;
            };
            let waited = tokio::time::timeout(INTERVAL, finishing).await;
            // The WAL keeps every committed write: a checkpoint that fails (a closed pool
            // at shutdown, a full disk) loses nothing and is tried again next time.
            let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await;
            if waited.is_ok() || pool.is_closed() {
                break;
            }
        }
    }));
}
