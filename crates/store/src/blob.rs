//! Content-addressed evidence and policy texts.

use sqlx::Row as _;

use crate::{Error, MAX_EVIDENCE_LEN, MAX_TEXT_LEN, Result, Store, check_len, sha256_hex};

/// A policy text and its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyText {
    /// The policy's name.
    pub name: String,
    /// Lower-case hex SHA-256 of `text` (plinth-policy's `Policy::hash`).
    pub hash_hex: String,
    /// The exact text.
    pub text: String,
}

impl PolicyText {
    /// Checks the size budget and that `hash_hex` is the text's SHA-256.
    pub(crate) fn check(&self) -> Result<()> {
        check_len("policy text", self.text.len(), MAX_TEXT_LEN)?;
        if sha256_hex(self.text.as_bytes()) == self.hash_hex {
            Ok(())
        } else {
            Err(Error::PolicyHashMismatch {
                expected: self.hash_hex.clone(),
            })
        }
    }
}

/// Inserts, unless present, on any executor (pool or transaction).
pub(crate) async fn insert_policy<'e, E>(executor: E, policy: &PolicyText) -> Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let _ = sqlx::query(
        "INSERT INTO policies (hash_hex, name, text) VALUES ($1, $2, $3) \
         ON CONFLICT (hash_hex) DO NOTHING",
    )
    .bind(&policy.hash_hex)
    .bind(&policy.name)
    .bind(&policy.text)
    .execute(executor)
    .await?;
    Ok(())
}

/// Inserts, unless present, on any executor (pool or transaction).
pub(crate) async fn insert_evidence<'e, E>(executor: E, sha256: &str, bytes: &[u8]) -> Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let _ = sqlx::query(
        "INSERT INTO evidence (sha256_hex, bytes) VALUES ($1, $2) \
         ON CONFLICT (sha256_hex) DO NOTHING",
    )
    .bind(sha256)
    .bind(bytes.to_vec())
    .execute(executor)
    .await?;
    Ok(())
}

impl Store {
    /// Stores a policy text under its hash (nothing happens if it is there already).
    ///
    /// # Errors
    /// [`Error::PolicyHashMismatch`], [`Error::TooLarge`], [`Error::Database`].
    pub async fn put_policy(&self, policy: &PolicyText) -> Result<()> {
        policy.check()?;
        insert_policy(&self.pool, policy).await
    }

    /// A policy text by hash.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn get_policy(&self, hash_hex: &str) -> Result<PolicyText> {
        let row = sqlx::query("SELECT hash_hex, name, text FROM policies WHERE hash_hex = $1")
            .bind(hash_hex)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "policy",
                key: hash_hex.to_owned(),
            })?;
        Ok(PolicyText {
            name: row.try_get("name")?,
            hash_hex: row.try_get("hash_hex")?,
            text: row.try_get("text")?,
        })
    }

    /// Stores evidence bytes under their SHA-256 (nothing happens if present); returns
    /// the lower-case hex digest.
    ///
    /// # Errors
    /// [`Error::TooLarge`] past [`MAX_EVIDENCE_LEN`]; [`Error::Database`].
    pub async fn put_evidence(&self, bytes: &[u8]) -> Result<String> {
        check_len("evidence", bytes.len(), MAX_EVIDENCE_LEN)?;
        let sha256 = sha256_hex(bytes);
        insert_evidence(&self.pool, &sha256, bytes).await?;
        Ok(sha256)
    }

    /// Evidence bytes by lower-case hex SHA-256.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn get_evidence(&self, sha256_hex: &str) -> Result<Vec<u8>> {
        let row = sqlx::query("SELECT bytes FROM evidence WHERE sha256_hex = $1")
            .bind(sha256_hex)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "evidence",
                key: sha256_hex.to_owned(),
            })?;
        Ok(row.try_get("bytes")?)
    }
}
