//! Challenges: single-use nonces, consumed atomically across replicas.

use std::collections::HashMap;
use std::sync::Mutex;

use plinth_core::UnixTime;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{
    Error, MAX_HELLO_LEN, Result, Store, check_len, conflict_as, db_time, read_opt_time, read_time,
    to_hash,
};

/// A challenge handed to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The 32-byte nonce.
    pub nonce: [u8; 32],
    /// The platform the agent said it is (`tpm`, `nitro`, `snp`).
    pub platform: String,
    /// The agent's serialized Hello message, kept for the evidence step.
    pub hello: Vec<u8>,
    /// SHA-256 of the TPM credential-activation secret, for TPM challenges.
    pub activation_commitment: Option<[u8; 32]>,
    /// When it was issued.
    pub created_at: UnixTime,
    /// When it stops being accepted.
    pub expires_at: UnixTime,
}

/// The most challenges a store handle remembers ([`Remembered`]).
const MAX_REMEMBERED: usize = 16_384;
/// The most Hello bytes it holds for them (a TPM Hello is about 2 KiB).
const MAX_REMEMBERED_BYTES: usize = 32 << 20;

/// The challenges this store handle issued that have not been answered yet, kept in memory
/// so that answering one (usually to the replica that issued it) reads nothing. What is
/// remembered never changes; whether the nonce is still unconsumed is decided, as for
/// every other, by the conditional update in the append transaction. Bounded (in count
/// and in bytes): beyond that a challenge is only in the database, and read from there.
#[derive(Debug, Default)]
pub(crate) struct Remembered(Mutex<Memory>);

#[derive(Debug, Default)]
struct Memory {
    challenges: HashMap<[u8; 32], Challenge>,
    /// The sum of their Hello lengths.
    bytes: usize,
}

impl Remembered {
    /// A poisoned lock only means another thread panicked mid-update; every entry is
    /// whole and `bytes` is at worst stale until the next purge recounts it.
    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn remember(&self, challenge: &Challenge) {
        let mut memory = self.memory();
        let bytes = memory.bytes.saturating_add(challenge.hello.len());
        if memory.challenges.len() < MAX_REMEMBERED && bytes <= MAX_REMEMBERED_BYTES {
            memory.bytes = bytes;
            if let Some(replaced) = memory.challenges.insert(challenge.nonce, challenge.clone()) {
                memory.bytes = memory.bytes.saturating_sub(replaced.hello.len());
            }
        }
    }

    fn get(&self, nonce: &[u8; 32]) -> Option<Challenge> {
        self.memory().challenges.get(nonce).cloned()
    }

    /// Forgets `nonce`: it was consumed, or its answer was refused.
    pub(crate) fn forget(&self, nonce: &[u8; 32]) {
        let mut memory = self.memory();
        if let Some(gone) = memory.challenges.remove(nonce) {
            memory.bytes = memory.bytes.saturating_sub(gone.hello.len());
        }
    }

    fn forget_expired(&self, now: UnixTime) {
        let mut memory = self.memory();
        memory.challenges.retain(|_, c| c.expires_at > now);
        memory.bytes = memory.challenges.values().map(|c| c.hello.len()).sum();
    }
}

impl Store {
    /// Stores a new challenge.
    ///
    /// # Errors
    /// [`Error::Conflict`] if the nonce exists already, [`Error::TooLarge`] for a Hello
    /// over [`MAX_HELLO_LEN`].
    pub async fn insert_challenge(&self, challenge: &Challenge) -> Result<()> {
        check_len("hello", challenge.hello.len(), MAX_HELLO_LEN)?;
        let _ = sqlx::query(
            "INSERT INTO challenges \
             (nonce, platform, hello, activation_commitment, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(challenge.nonce.to_vec())
        .bind(&challenge.platform)
        .bind(&challenge.hello)
        .bind(challenge.activation_commitment.map(|c| c.to_vec()))
        .bind(db_time(challenge.created_at)?)
        .bind(db_time(challenge.expires_at)?)
        .execute(&self.pool)
        .await
        .map_err(conflict_as("challenge"))?;
        self.remembered.remember(challenge);
        Ok(())
    }

    /// Consumes the challenge for `nonce`: succeeds once, on whichever replica gets there
    /// first, and only before it expires.
    ///
    /// # Errors
    /// [`Error::NonceUnknown`], [`Error::NonceConsumed`] (a replay) or
    /// [`Error::NonceExpired`].
    pub async fn consume_challenge(&self, nonce: &[u8; 32], now: UnixTime) -> Result<Challenge> {
        let now_ms = db_time(now)?;
        self.remembered.forget(nonce);
        // One statement: the database decides which caller consumes it.
        let consumed = sqlx::query(
            "UPDATE challenges SET consumed_at = $2 \
             WHERE nonce = $1 AND consumed_at IS NULL AND expires_at > $2 \
             RETURNING nonce, platform, hello, activation_commitment, created_at, expires_at",
        )
        .bind(nonce.to_vec())
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        match consumed {
            Some(row) => challenge_from_row(&row),
            None => Err(why_unconsumed(&self.pool, nonce, now).await?),
        }
    }

    /// The challenge for `nonce` if it can still be consumed at `now`, without consuming
    /// it: the server reads it before verifying and consumes it with the audit record
    /// ([`crate::Append::consume_nonce`]), which decides between concurrent replays.
    /// A challenge this handle issued is answered from memory: a replay arriving before
    /// its original is committed passes here, as it would reading the row, and loses at
    /// the append.
    ///
    /// # Errors
    /// [`Error::NonceUnknown`], [`Error::NonceConsumed`] (a replay) or
    /// [`Error::NonceExpired`].
    pub async fn pending_challenge(&self, nonce: &[u8; 32], now: UnixTime) -> Result<Challenge> {
        if let Some(challenge) = self.remembered.get(nonce) {
            if challenge.expires_at <= now {
                self.remembered.forget(nonce);
                return Err(Error::NonceExpired);
            }
            return Ok(challenge);
        }
        let row = sqlx::query(
            "SELECT nonce, platform, hello, activation_commitment, created_at, expires_at, \
             consumed_at FROM challenges WHERE nonce = $1",
        )
        .bind(nonce.to_vec())
        .fetch_optional(&self.pool)
        .await?;
        challenge_from_row(usable(row.as_ref(), now)?)
    }

    /// Deletes challenges that expired at or before `now` (consumed or not); returns how
    /// many. A purged nonce presented later fails as [`Error::NonceUnknown`].
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn purge_expired_challenges(&self, now: UnixTime) -> Result<u64> {
        self.remembered.forget_expired(now);
        let done = sqlx::query("DELETE FROM challenges WHERE expires_at <= $1")
            .bind(db_time(now)?)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

/// Why the challenge for `nonce` could not be consumed at `now` (read after the
/// conditional update matched no row, on any executor: pool or transaction).
pub(crate) async fn why_unconsumed<'e, E>(
    executor: E,
    nonce: &[u8; 32],
    now: UnixTime,
) -> Result<Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query("SELECT consumed_at, expires_at FROM challenges WHERE nonce = $1")
        .bind(nonce.to_vec())
        .fetch_optional(executor)
        .await?;
    match usable(row.as_ref(), now) {
        Err(reason @ (Error::NonceUnknown | Error::NonceConsumed | Error::NonceExpired)) => {
            Ok(reason)
        }
        Err(other) => Err(other),
        // Unconsumed and unexpired, yet the update matched nothing: only possible if the
        // row appeared between the two statements, which a caller cannot cause with a
        // nonce it was given. Fail closed.
        Ok(_) => Ok(Error::NonceUnknown),
    }
}

/// The challenge row, if it exists, is not consumed and has not expired at `now`.
fn usable(row: Option<&AnyRow>, now: UnixTime) -> Result<&AnyRow> {
    let row = row.ok_or(Error::NonceUnknown)?;
    if read_opt_time(row, "consumed_at")?.is_some() {
        Err(Error::NonceConsumed)
    } else if read_time(row, "expires_at")? <= now {
        Err(Error::NonceExpired)
    } else {
        Ok(row)
    }
}

fn challenge_from_row(row: &AnyRow) -> Result<Challenge> {
    let commitment: Option<Vec<u8>> = row.try_get("activation_commitment")?;
    Ok(Challenge {
        nonce: to_hash(row.try_get("nonce")?, "nonce")?,
        platform: row.try_get("platform")?,
        hello: row.try_get("hello")?,
        activation_commitment: commitment
            .map(|c| to_hash(c, "activation_commitment"))
            .transpose()?,
        created_at: read_time(row, "created_at")?,
        expires_at: read_time(row, "expires_at")?,
    })
}
