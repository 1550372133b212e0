//! The stores every shared test runs on: the embedded store and PostgreSQL.
//!
//! PostgreSQL tests need `FUNDCORE_TEST_DATABASE_URL` (a superuser URL; `make test` starts a
//! private server and sets it); each test store is a fresh database on that server.
//! `FUNDCORE_TEST_STORES=sled` runs the embedded store alone, on purpose.

use fundcore::{Config, Engine, Result};

/// Which store a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Sled,
    Postgres,
}

/// A store a test may open (and reopen) engines on.
pub struct TestStore {
    pub kind: StoreKind,
    dir: tempfile::TempDir,
    url: Option<String>,
}

impl TestStore {
    /// A fresh store of `kind`.
    pub fn new(kind: StoreKind) -> TestStore {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = (kind == StoreKind::Postgres).then(fresh_database);
        TestStore { kind, dir, url }
    }

    /// One fresh store of each kind under test.
    pub fn each() -> Vec<TestStore> {
        kinds().into_iter().map(TestStore::new).collect()
    }

    /// Opens an engine on this store (again, after a drop, to see what it kept).
    pub fn open(&self, config: Config) -> Result<Engine> {
        match self.kind {
            StoreKind::Sled => Engine::open(self.dir.path(), config),
            StoreKind::Postgres => connect(self.url.as_deref().unwrap_or_default(), config),
        }
    }

    /// The directory of an embedded store, or the URL of a database.
    pub fn location(&self) -> String {
        match &self.url {
            Some(url) => url.clone(),
            None => self.dir.path().display().to_string(),
        }
    }
}

impl std::fmt::Display for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.kind {
            StoreKind::Sled => "sled",
            StoreKind::Postgres => "postgres",
        })
    }
}

/// The kinds of store under test: both, or the embedded store alone when
/// `FUNDCORE_TEST_STORES=sled` or no test server is configured (then the test
/// `a_postgres_test_server_is_configured` fails, so a missing server never passes silently).
pub fn kinds() -> Vec<StoreKind> {
    match std::env::var("FUNDCORE_TEST_STORES").as_deref() {
        Ok("sled") => vec![StoreKind::Sled],
        Ok("postgres") => vec![StoreKind::Postgres],
        _ if std::env::var_os(SERVER_URL).is_none() => vec![StoreKind::Sled],
        _ => vec![StoreKind::Sled, StoreKind::Postgres],
    }
}

/// Where the tests find their PostgreSQL server.
pub const SERVER_URL: &str = "FUNDCORE_TEST_DATABASE_URL";

/// Whether the PostgreSQL tests will run (or were left out on purpose).
pub fn postgres_configured() -> Result<(), String> {
    let sled_only = std::env::var("FUNDCORE_TEST_STORES").as_deref() == Ok("sled");
    if sled_only || std::env::var_os(SERVER_URL).is_some() {
        Ok(())
    } else {
        Err(format!(
            "{SERVER_URL} is not set, so only the embedded store was tested: run `make test` \
             (it starts a private PostgreSQL), or `scripts/with-postgres.sh cargo test ...`, or \
             set FUNDCORE_TEST_STORES=sled to test the embedded store alone"
        ))
    }
}

#[cfg(feature = "postgres")]
fn connect(url: &str, config: Config) -> Result<Engine> {
    Engine::connect(url, config)
}

#[cfg(not(feature = "postgres"))]
fn connect(_url: &str, _config: Config) -> Result<Engine> {
    panic!("the PostgreSQL store needs the `postgres` feature (or FUNDCORE_TEST_STORES=sled)")
}

/// The server's superuser URL.
pub fn server_url() -> String {
    std::env::var(SERVER_URL).unwrap_or_else(|_| match postgres_configured() {
        Err(why) => panic!("{why}"),
        Ok(()) => panic!("{SERVER_URL} is not set"),
    })
}

/// Creates an empty database on the test server; returns its URL.
pub fn fresh_database() -> String {
    let server = server_url();
    let name = format!("fundcore_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = postgres::Client::connect(&server, postgres::NoTls).expect("test server");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create test database");
    let (base, _db) = server.rsplit_once('/').expect("URL with a database name");
    format!("{base}/{name}")
}

/// Where the tests find PgBouncer in transaction pooling mode in front of the test server, when
/// they run behind one (`make test-pooler`, scripts/with-pgbouncer.sh).
pub const POOLER_URL: &str = "FUNDCORE_TEST_POOLER_URL";

/// The pooler's URL, when the tests run behind one.
pub fn pooler_url() -> Option<String> {
    std::env::var(POOLER_URL).ok().filter(|url| !url.is_empty())
}

/// `url`, a database on the test server, reached through the pooler when the tests run behind
/// one (the same database name, the pooler's host and port); `url` itself otherwise.
pub fn through_pooler(url: &str) -> String {
    let Some(pooler) = pooler_url() else {
        return url.to_owned();
    };
    let (_, database) = url.rsplit_once('/').expect("URL with a database name");
    let (base, _) = pooler
        .rsplit_once('/')
        .expect("pooler URL with a database name");
    format!("{base}/{database}")
}

/// The configuration of engines that may run behind the pooler: every statement unnamed
/// (`prepared_statements(false)`, SPEC §10.1) when the tests run behind one, the default
/// otherwise.
pub fn engine_config() -> Config {
    if pooler_url().is_some() {
        Config::builder()
            .prepared_statements(false)
            .build()
            .expect("config")
    } else {
        Config::default()
    }
}

/// The directory of the test server's PostgreSQL programs (`pg_dump`, `pg_restore`, `psql` of its
/// major version): `FUNDCORE_TEST_PG_BIN` (scripts/with-postgres.sh sets it), else found as that
/// script finds it (the newest `/usr/lib/postgresql/<version>/bin`); `None` leaves them to `PATH`.
pub fn pg_bin_dir() -> Option<std::path::PathBuf> {
    if let Some(dir) = std::env::var_os("FUNDCORE_TEST_PG_BIN") {
        return Some(dir.into());
    }
    let mut found: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_dump").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A PostgreSQL program of the test server's version ([`pg_bin_dir`]), or its bare name.
pub fn pg_program(name: &str) -> std::path::PathBuf {
    pg_bin_dir().map_or_else(|| name.into(), |dir| dir.join(name))
}
