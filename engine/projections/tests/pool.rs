//! The connection pool on PostgreSQL: readers run side by side on connections
//! of their own, and connections the server ends are replaced.

mod support;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::dsl::sql;
use diesel::sql_types::BigInt;
use diesel::{PgConnection, RunQueryDsl};
use sprocket_core::JobId;
use sprocket_projections::PoolOptions;
use support::stores;

/// How long a condition may take before the test gives up on it: a guard
/// against hanging, not a measurement.
const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `check` until it holds (`Ok`); panics after [`PATIENCE`] with what
/// it last said instead.
fn wait_until(mut check: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    while let Err(state) = check() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting: {state}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sessions of this database, other than `conn`'s own, that match `filter`.
fn sessions(conn: &mut PgConnection, filter: &str) -> i64 {
    diesel::select(sql::<BigInt>(&format!(
        "(SELECT count(*) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND {filter})"
    )))
    .get_result(conn)
    .expect("reading pg_stat_activity")
}

#[test]
fn concurrent_readers_each_get_a_connection() {
    const READERS: u32 = 4;
    let options = PoolOptions {
        size: READERS,
        timeout: PATIENCE,
    };
    let Some(store) = stores::postgres_with(options) else {
        return;
    };
    let p = &store.projections;
    assert_eq!(p.pool_size(), READERS);
    // A lock held by a session of the test's own makes every read of `jobs`
    // wait inside the database, for as long as the test wants.
    let mut blocker = store.postgres_connection();
    let mut observer = store.postgres_connection();
    blocker
        .batch_execute("BEGIN; LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..READERS)
            .map(|i| s.spawn(move || p.job(&JobId::parse(&format!("job-{i}")).unwrap())))
            .collect();
        // Every reader is in the database at once, waiting on the lock: each
        // holds a connection of its own, none queues behind another.
        wait_until(
            || match sessions(&mut observer, "wait_event_type = 'Lock'") {
                n if n == i64::from(READERS) => Ok(()),
                n => Err(format!("{n} of {READERS} readers waiting on the lock")),
            },
        );
        blocker.batch_execute("COMMIT").unwrap();
        for r in readers {
            assert_eq!(r.join().unwrap().unwrap(), None);
        }
    });
}

#[test]
fn connections_the_server_ends_are_replaced() {
    const SIZE: u32 = 3;
    let options = PoolOptions {
        size: SIZE,
        timeout: PATIENCE,
    };
    let Some(store) = stores::postgres_with(options) else {
        return;
    };
    let p = &store.projections;
    p.ping().unwrap();
    let mut admin = store.postgres_connection();
    diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .unwrap();
    wait_until(|| match sessions(&mut admin, "true") {
        0 => Ok(()),
        n => Err(format!("{n} of the pool's sessions still open")),
    });
    // Each pooled connection may fail once (retryably) before it is replaced.
    let mut failures = 0;
    while let Err(e) = p.jobs(None, 10, None) {
        assert!(e.retryable(), "not retryable: {e}");
        failures += 1;
        assert!(
            failures <= SIZE,
            "still failing after {failures} calls: {e}"
        );
    }
    p.ping().unwrap();
    assert!(p.offsets().unwrap().is_empty());
}
