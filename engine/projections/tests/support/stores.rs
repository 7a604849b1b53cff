//! A fresh, migrated store per test: SQLite in a temporary directory, PostgreSQL in
//! a uniquely named database that is dropped afterwards.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use sprocket_projections::{PoolOptions, Projections};

/// Where the PostgreSQL tests create their databases. Set it to `off` to skip them.
pub const POSTGRES_ENV: &str = "SPROCKET_TEST_POSTGRES_URL";
const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A store and whatever must outlive it.
/// Fields drop in order: the store closes before its file or database goes.
pub struct Store {
    pub projections: Projections,
    _dir: Option<tempfile::TempDir>,
    _database: Option<TestDatabase>,
}

pub fn sqlite() -> Store {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("projections.db").display());
    let projections = Projections::connect(&url).expect("open sqlite");
    projections.migrate().expect("migrate sqlite");
    Store {
        projections,
        _dir: Some(dir),
        _database: None,
    }
}

/// `None` when PostgreSQL tests are switched off with `SPROCKET_TEST_POSTGRES_URL=off`.
pub fn postgres() -> Option<Store> {
    postgres_with(PoolOptions::default())
}

/// Like [`postgres`], with a pool of the given options.
pub fn postgres_with(options: PoolOptions) -> Option<Store> {
    let admin = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| POSTGRES_DEFAULT.to_owned());
    if admin == "off" {
        eprintln!("{POSTGRES_ENV}=off: skipping a PostgreSQL contract test");
        return None;
    }
    let db = TestDatabase::create(&admin);
    let projections = Projections::connect_with(&db.url, options).expect("open postgres");
    projections.migrate().expect("migrate postgres");
    Some(Store {
        projections,
        _dir: None,
        _database: Some(db),
    })
}

impl Store {
    /// A connection of the test's own to the store's PostgreSQL database.
    pub fn postgres_connection(&self) -> PgConnection {
        let db = self._database.as_ref().expect("a PostgreSQL store");
        PgConnection::establish(&db.url).expect("connect to the test database")
    }

    /// A connection of the test's own to the store's SQLite file.
    pub fn sqlite_connection(&self) -> SqliteConnection {
        let dir = self._dir.as_ref().expect("a SQLite store");
        let path = dir.path().join("projections.db");
        SqliteConnection::establish(&path.display().to_string()).expect("open the test database")
    }
}

struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TestDatabase {
    fn create(admin: &str) -> TestDatabase {
        let name = format!("sprocket_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = PgConnection::establish(admin).unwrap_or_else(|e| {
            panic!("PostgreSQL for the contract tests ({POSTGRES_ENV}, or =off to skip): {e}")
        });
        conn.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("create test database");
        TestDatabase {
            url: with_database(admin, &name),
            admin: admin.to_owned(),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let dropped = PgConnection::establish(&self.admin).map(|mut c| {
            c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
        });
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// The admin URL with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    format!("{}/{name}{query}", &base[..host_end])
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgresql://u@h/postgres?sslmode=disable", "x"),
        "postgresql://u@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
}
