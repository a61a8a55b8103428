//! Evidence verification on a fixed set of threads, one per core.
//!
//! Verification is CPU-bound (signature checks, certificate chains, event-log replay) and
//! would stall the async runtime's workers. Each pool thread takes the next job as soon
//! as it finishes one, so the verifying cores stay busy while attestations are queued:
//! nothing on the async side has to run between two verifications (with a semaphore
//! around `spawn_blocking`, a slot was only freed once a runtime worker got round to
//! polling the finished task, and the cores idled meanwhile).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The pool. Its threads end when it is dropped (after the jobs already queued).
pub(crate) struct VerifyPool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

/// Why a job produced no result.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PoolError {
    /// The job panicked (a bug: every verifier error is a value).
    #[error("verification panicked")]
    Panicked,
    /// No pool thread is left to run it.
    #[error("the verification threads are gone")]
    Gone,
}

impl VerifyPool {
    /// Starts `threads` threads (at least one).
    ///
    /// # Errors
    /// When the operating system refuses to start a thread.
    pub(crate) fn start(threads: usize) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads.max(1) {
            let receiver = Arc::clone(&receiver);
            drop(
                std::thread::Builder::new()
                    .name(format!("plinth-verify-{index}"))
                    .spawn(move || {
                        while let Some(job) = next_job(&receiver) {
                            job();
                        }
                    })?,
            );
        }
        Ok(Self {
            jobs: Mutex::new(sender),
        })
    }

    /// Runs `job` on a pool thread and waits (asynchronously) for its result.
    ///
    /// # Errors
    /// [`PoolError::Panicked`] when `job` panicked, [`PoolError::Gone`] when no pool
    /// thread is left.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(std::panic::catch_unwind(AssertUnwindSafe(job)));
        });
        self.jobs
            .lock()
            .map_err(|_| PoolError::Gone)?
            .send(job)
            .map_err(|_| PoolError::Gone)?;
        match answer.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_panic)) => Err(PoolError::Panicked),
            Err(_dropped) => Err(PoolError::Gone),
        }
    }
}

/// The next job, or `None` once the pool is dropped. The lock is held only while
/// waiting, never while a job runs.
fn next_job(receiver: &Mutex<mpsc::Receiver<Job>>) -> Option<Job> {
    let waiting = receiver.lock().ok()?;
    waiting.recv().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_pool_threads_and_returns_their_values() {
        let pool = VerifyPool::start(2).unwrap();
        let mut waiting = Vec::new();
        for i in 0..16_u32 {
            waiting.push(pool.run(move || {
                let name = std::thread::current().name().unwrap().to_owned();
                (i * 2, name)
            }));
        }
        for (i, job) in (0_u32..).zip(waiting) {
            let (value, thread) = job.await.unwrap();
            assert_eq!(value, i * 2);
            assert!(thread.starts_with("plinth-verify-"), "{thread}");
        }
    }

    #[tokio::test]
    async fn a_panicking_job_is_panicked_and_the_thread_keeps_serving() {
        let pool = VerifyPool::start(1).unwrap();
        let failed = pool.run(|| -> u8 { panic!("a verifier bug") }).await;
        assert!(matches!(failed, Err(PoolError::Panicked)), "{failed:?}");
        assert_eq!(pool.run(|| 7_u8).await.unwrap(), 7);
    }
}
