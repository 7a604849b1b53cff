//! The connection pool (r2d2): every call borrows a connection, so API reads run
//! side by side with each other and with the projector's writes, and a
//! connection the database dropped is replaced rather than reused.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};

use crate::connection::{AnyConnection, Target};
use crate::ProjectionError;

/// How many connections a handle may hold, and how long a call waits for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Most connections open at once (PostgreSQL and SQLite files; an in-memory
    /// SQLite database is one connection, since each connection would be a
    /// database of its own). At least 1.
    pub size: u32,
    /// How long a call waits for a free connection, or for the database to
    /// come back, before failing with a retryable [`ProjectionError::Pool`].
    pub timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            size: 10,
            timeout: Duration::from_secs(2),
        }
    }
}

/// A connection that answered this recently is lent without a ping first: a
/// ping per call would cost a round trip on every read.
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// A pooled connection, with what the pool needs to keep or drop it.
pub(crate) struct Pooled {
    pub conn: AnyConnection,
    /// When a call last succeeded on it.
    last_ok: Instant,
    /// A call saw it break: the pool drops it when it comes back.
    broken: bool,
}

impl Pooled {
    /// Records how a call on this connection ended.
    pub fn finished<T>(&mut self, result: &Result<T, ProjectionError>) {
        match result {
            Ok(_) => self.last_ok = Instant::now(),
            Err(e) if e.breaks_connection() => self.broken = true,
            Err(_) => {}
        }
    }
}

pub(crate) type Pool = r2d2::Pool<Manager>;

/// Opens connections for the pool and judges the ones it gets back.
#[derive(Debug)]
pub(crate) struct Manager {
    target: Target,
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = ProjectionError;

    fn connect(&self) -> Result<Pooled, ProjectionError> {
        let conn = self.target.open()?;
        tracing::debug!(
            backend = self.target.backend(),
            "projection connection opened"
        );
        Ok(Pooled {
            conn,
            last_ok: Instant::now(),
            broken: false,
        })
    }

    /// Run before a connection is lent, unless it answered within [`TRUSTED_FOR`].
    fn is_valid(&self, c: &mut Pooled) -> Result<(), ProjectionError> {
        if c.last_ok.elapsed() < TRUSTED_FOR {
            return Ok(());
        }
        c.conn
            .batch_execute("SELECT 1")
            .map_err(|source| ProjectionError::Query {
                context: "ping",
                source,
            })?;
        c.last_ok = Instant::now();
        Ok(())
    }

    /// A connection that broke, or came back inside a transaction (a call
    /// panicked), is closed instead of being lent again.
    fn has_broken(&self, c: &mut Pooled) -> bool {
        c.broken || std::thread::panicking() || c.conn.is_broken()
    }
}

/// Builds the pool. The first connection is opened here, so a database that
/// cannot be reached at all fails at once with its reason; the rest are opened
/// as calls need them (up to `options.size`) and closed after idling a while.
pub(crate) fn build(target: Target, options: PoolOptions) -> Result<Pool, ProjectionError> {
    let backend = target.backend();
    let manager = Manager { target };
    let first = manager.connect()?;
    drop(first);
    let memory = matches!(&manager.target, Target::Sqlite(path) if path == ":memory:");
    let builder = r2d2::Pool::builder()
        .connection_timeout(options.timeout)
        .error_handler(Box::new(LogErrors { backend }))
        .test_on_check_out(true)
        .min_idle(Some(1));
    let builder = if memory {
        // The one connection is the database: never close it.
        builder.max_size(1).max_lifetime(None).idle_timeout(None)
    } else {
        builder.max_size(options.size.max(1))
    };
    Ok(builder.build_unchecked(manager))
}

/// Connections the pool failed to open or found dead, in the service's log.
#[derive(Debug)]
struct LogErrors {
    backend: &'static str,
}

impl r2d2::HandleError<ProjectionError> for LogErrors {
    fn handle_error(&self, error: ProjectionError) {
        tracing::warn!(backend = self.backend, %error, "projection connection failed");
    }
}
