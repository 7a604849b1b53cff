//! Opening the database: one connection type over SQLite and PostgreSQL, and the
//! embedded migrations of each.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::ProjectionError;

/// Every query is written once against this connection; Diesel dispatches it to
/// the backend that is actually open.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// How long SQLite waits on a lock held by another connection before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A file path, or `:memory:`.
    Sqlite(String),
    Postgres(String),
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, ProjectionError> {
        let invalid = |reason: &str| ProjectionError::InvalidUrl {
            url: sprocket_core::redact::password(url),
            reason: reason.to_owned(),
        };
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(invalid("sqlite:// needs a file path or :memory:"));
            }
            return Ok(Target::Sqlite(path.to_owned()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres(url.to_owned()));
        }
        Err(invalid(
            "use sqlite://<path>, sqlite://:memory: or postgres://…",
        ))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Target::Sqlite(_) => "sqlite",
            Target::Postgres(_) => "postgres",
        }
    }

    /// Opens a connection, creating the SQLite file (and its directory) if needed.
    pub fn open(&self) -> Result<AnyConnection, ProjectionError> {
        let backend = self.backend();
        let connect = |source| ProjectionError::Connect { backend, source };
        match self {
            Target::Postgres(url) => Ok(AnyConnection::Postgres(
                PgConnection::establish(url).map_err(connect)?,
            )),
            Target::Sqlite(path) => {
                let memory = path == ":memory:";
                if !memory {
                    if let Some(dir) = Path::new(path)
                        .parent()
                        .filter(|d| !d.as_os_str().is_empty())
                    {
                        std::fs::create_dir_all(dir).map_err(|e| {
                            connect(diesel::ConnectionError::BadConnection(format!(
                                "cannot create {}: {e}",
                                dir.display()
                            )))
                        })?;
                    }
                }
                let mut conn = SqliteConnection::establish(path).map_err(connect)?;
                let journal = if memory { "MEMORY" } else { "WAL" };
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};
                     PRAGMA journal_mode = {journal};
                     PRAGMA synchronous = NORMAL;
                     PRAGMA foreign_keys = ON;"
                ))
                .map_err(|e| connect(diesel::ConnectionError::CouldntSetupConfiguration(e)))?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

/// Runs the pending migrations of the backend this connection is open on.
pub(crate) fn migrate(conn: &mut AnyConnection) -> Result<(), ProjectionError> {
    let (backend, result) = match conn {
        AnyConnection::Postgres(c) => (
            "postgres",
            c.run_pending_migrations(POSTGRES_MIGRATIONS).map(drop),
        ),
        AnyConnection::Sqlite(c) => (
            "sqlite",
            c.run_pending_migrations(SQLITE_MIGRATIONS).map(drop),
        ),
    };
    result.map_err(|e| ProjectionError::Migration {
        backend,
        message: e.to_string(),
    })
}

/// The URL without its password, for messages.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_urls() {
        assert_eq!(
            Target::parse("sqlite:///tmp/p.db").unwrap(),
            Target::Sqlite("/tmp/p.db".into())
        );
        assert_eq!(
            Target::parse("sqlite://:memory:").unwrap(),
            Target::Sqlite(":memory:".into())
        );
        assert!(matches!(
            Target::parse("postgresql://u@h/db").unwrap(),
            Target::Postgres(_)
        ));
        assert!(Target::parse("mysql://x").is_err());
        assert!(Target::parse("sqlite://").is_err());
    }

    #[test]
    fn never_prints_passwords() {
        let err = Target::parse("mysql://u:secret@h/db").unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }
}
