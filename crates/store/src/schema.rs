//! The schema migrations, embedded in the binary and adapted to the backend.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::AnyPool;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use crate::{Backend, Result};

/// The migrations, in order: (version, description, SQL with `{bytes}` for the byte type).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "schema", include_str!("../migrations/0001_schema.sql")),
    (
        2,
        "registration epoch",
        include_str!("../migrations/0002_registration_epoch.sql"),
    ),
];

/// The one word the two databases spell differently.
const fn bytes_type(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "BLOB",
        Backend::Postgres => "BYTEA",
    }
}

/// The embedded migrations for one backend.
#[derive(Debug)]
struct Embedded(Backend);

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        let migrations = MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Owned(sql.replace("{bytes}", bytes_type(self.0))),
                    false,
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

/// Applies every migration not yet applied. On PostgreSQL sqlx holds an advisory lock
/// meanwhile, so replicas starting together do not race.
pub(crate) async fn migrate(pool: &AnyPool, backend: Backend) -> Result<()> {
    let migrator = Migrator::new(Embedded(backend)).await?;
    migrator.run(pool).await?;
    Ok(())
}
