//! What can go wrong in the projections, and whether trying again can help.

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};

use crate::Position;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The database URL is not one this crate understands.
    #[error("invalid database url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// The database could not be reached (down, refused, unreachable).
    #[error("cannot connect to the projection database ({backend}): {source}")]
    Connect {
        backend: &'static str,
        #[source]
        source: ConnectionError,
    },

    /// Running the embedded migrations failed.
    #[error("projection migrations failed ({backend}): {message}")]
    Migration {
        backend: &'static str,
        message: String,
    },

    /// A query outside the apply path failed.
    #[error("projection query failed ({context}): {source}")]
    Query {
        context: &'static str,
        #[source]
        source: DieselError,
    },

    /// Writing one event of a batch failed; the whole batch was rolled back.
    #[error(
        "projecting event {event_id} of job {job_id} at {}/{}@{} failed: {source}",
        position.topic, position.partition, position.offset
    )]
    Event {
        position: Position,
        job_id: String,
        event_id: String,
        #[source]
        source: DieselError,
    },

    /// A stored row could not be read back (a job state or event body that is not
    /// valid JSON for this version).
    #[error("stored {what} {key:?} is corrupt: {source}")]
    Corrupt {
        what: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },

    /// A pagination cursor that this crate did not hand out.
    #[error("invalid page cursor {0:?}")]
    InvalidCursor(String),

    /// No connection came free, or could be opened, within the pool's timeout:
    /// the database is down or every connection is busy.
    #[error("no projection database connection ({backend}) within {waited:?}: {source}")]
    Pool {
        backend: &'static str,
        waited: std::time::Duration,
        #[source]
        source: diesel::r2d2::PoolError,
    },
}

/// A database error inside a transaction, before more context is known.
impl From<DieselError> for ProjectionError {
    fn from(source: DieselError) -> Self {
        ProjectionError::Query {
            context: "transaction",
            source,
        }
    }
}

impl ProjectionError {
    /// Whether trying the same call again later may succeed: the database was down,
    /// the connection was lost, it was busy or a transaction lost a serialization race.
    pub fn retryable(&self) -> bool {
        match self {
            ProjectionError::Connect { .. } | ProjectionError::Pool { .. } => true,
            ProjectionError::Query { source, .. } | ProjectionError::Event { source, .. } => {
                transient(source)
            }
            ProjectionError::InvalidUrl { .. }
            | ProjectionError::Migration { .. }
            | ProjectionError::Corrupt { .. }
            | ProjectionError::InvalidCursor(_) => false,
        }
    }

    /// Whether the connection that raised this error is unusable and must be replaced.
    pub(crate) fn breaks_connection(&self) -> bool {
        match self {
            ProjectionError::Query { source, .. } | ProjectionError::Event { source, .. } => {
                broken(source)
            }
            _ => false,
        }
    }
}

/// The connection itself is gone (the server closed it, is ending it, or it
/// cannot send).
fn broken(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        // PostgreSQL's FATAL before it closes the session (shutdown,
        // pg_terminate_backend) arrives without a dedicated kind.
        DieselError::DatabaseError(_, info) => {
            let m = info.message();
            m.contains("terminating connection") || m.contains("server closed the connection")
        }
        DieselError::BrokenTransactionManager => true,
        DieselError::RollbackErrorOnCommit { rollback_error, .. } => broken(rollback_error),
        _ => false,
    }
}

/// Errors that say nothing about the data: trying again can succeed.
fn transient(e: &DieselError) -> bool {
    if broken(e) {
        return true;
    }
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(_, info) => {
            let m = info.message();
            // SQLite's SQLITE_BUSY / SQLITE_LOCKED and PostgreSQL's deadlock or
            // starting/stopping messages arrive without a dedicated kind.
            m.contains("database is locked")
                || m.contains("database table is locked")
                || m.contains("deadlock detected")
                || m.contains("the database system is")
        }
        DieselError::RollbackErrorOnCommit { commit_error, .. } => transient(commit_error),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_retryable_and_bad_data_is_not() {
        let closed = ProjectionError::Query {
            context: "t",
            source: DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection,
                Box::new("server closed the connection".to_owned()),
            ),
        };
        assert!(closed.retryable());
        assert!(closed.breaks_connection());

        let check = ProjectionError::Query {
            context: "t",
            source: DieselError::DatabaseError(
                DatabaseErrorKind::CheckViolation,
                Box::new("violates check constraint".to_owned()),
            ),
        };
        assert!(!check.retryable());
        assert!(!check.breaks_connection());

        let busy = ProjectionError::Query {
            context: "t",
            source: DieselError::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new("database is locked".to_owned()),
            ),
        };
        assert!(busy.retryable());
        assert!(!ProjectionError::InvalidCursor("x".into()).retryable());
        let down = ProjectionError::Connect {
            backend: "postgres",
            source: ConnectionError::BadConnection("refused".into()),
        };
        assert!(down.retryable());

        let terminated = ProjectionError::Query {
            context: "t",
            source: DieselError::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new("terminating connection due to administrator command".to_owned()),
            ),
        };
        assert!(terminated.retryable());
        assert!(terminated.breaks_connection());
    }
}
