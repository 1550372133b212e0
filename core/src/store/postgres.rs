//! The PostgreSQL store: any number of processes and hosts share one database.
//!
//! - A subscribe or cancel takes two round trips: one statement reads the client, the fund as
//!   the catalogue has it now, the client's subscription to it and what the idempotency key
//!   names (one snapshot); the engine decides; one statement writes every record, guarded by
//!   the client's and the fund's `version`, so it commits only if neither changed since the
//!   read (a new minimum or a closed fund is never missed by a subscription that commits
//!   after it). The client's row is the only lock it takes; the fund's row is only read. A
//!   lost race reads again; after [`OPTIMISTIC_TRIES`] lost races the change runs in a
//!   transaction that locks the client's row first.
//! - When this process has seen the client and the fund before ([`known`]), the engine decides
//!   on what it saw and the guarded write is the only round trip. If anything changed since
//!   (another process, a fund update, an idempotency key used before), the guard or the key's
//!   unique index stops the write, nothing is written, and the change takes the two-trip path.
//!   A rule's refusal is only ever given on a fresh read.
//! - An administrative change (a fund created or updated, a client's contact data changed)
//!   commits with its audit event in one transaction: an update locks the row it changes
//!   (`SELECT … FOR UPDATE`), lets the engine decide, and bumps the row's `version`. Audit
//!   events are only ever inserted; their `before`/`after` are `jsonb`, sent and read as JSON
//!   text (serde_json encodes them, as for the embedded store).
//! - Serialization failures and deadlocks (SQLSTATE 40001, 40P01) are retried with bounded
//!   backoff, so the same code runs on Postgres-compatible distributed databases.
//! - The outbox is shared by every dispatcher: a due entry is claimed with `FOR UPDATE SKIP
//!   LOCKED` and a lease (its next attempt moves to the lease's end); a dispatcher that dies
//!   mid-send loses its claim when the lease ends, and the entry is tried again.
//! - The schema is created and upgraded on connect by versioned migrations, one process at a
//!   time (a row lock on `fundcore_schema_lock`), and recorded in `fundcore_migrations`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postgres::types::ToSql;
use postgres::{NoTls, Row, Statement};
use rust_decimal::Decimal;

use super::{
    Claimed, ClientBundle, Decision, IdempotencyRecord, LedgerEntry, MoneyMove, MoneyView, Notice,
    Request, Seed, Store, StoreStats,
};
use crate::audit::{AuditAction, AuditEvent};
use crate::client::{Channel, Client};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::fund::{Category, Fund};
use crate::ids::{AuditEventId, ClientId, FundId, NotificationId, TransactionId};
use crate::ledger::{Subscription, Transaction, TransactionKind};
use crate::locale::Locale;
use crate::outbox::{NotificationStatus, OutboxState};
use crate::time::Timestamp;

mod known;
use known::{FundGuard, Known, Versions};

/// The schema migrations this library knows, in order: (version, name, SQL).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "initial", include_str!("migrations/0001_initial.sql")),
    (
        2,
        "administration",
        include_str!("migrations/0002_administration.sql"),
    ),
];

/// Lost optimistic races before a change locks the client's row instead.
const OPTIMISTIC_TRIES: u32 = 3;

/// Attempts at one operation that keeps failing with a serialization failure or deadlock.
const MAX_SERIALIZATION_RETRIES: u32 = 10;

/// How long a call waits for a free pooled connection before STORAGE_ERROR.
const POOL_WAIT: Duration = Duration::from_secs(3);

/// How long connecting may take when the URL does not say (`connect_timeout`).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL store behind a pool of connections, each with its statements prepared.
pub(crate) struct PgStore {
    pool: r2d2::Pool<Manager>,
    /// `host:port` of the database, for error messages (never the password).
    server: String,
    round_trips: AtomicU64,
    serialization_retries: AtomicU64,
    lost_races: AtomicU64,
    known: Known,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("server", &self.server)
            .finish()
    }
}

/// A pooled connection and its prepared statements.
struct Conn {
    client: postgres::Client,
    sql: Statements,
}

struct Manager {
    config: postgres::Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> std::result::Result<Conn, postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        let sql = Statements::prepare(&mut client)?;
        Ok(Conn { client, sql })
    }

    fn is_valid(&self, conn: &mut Conn) -> std::result::Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// Why one try at an operation failed.
enum Failure {
    /// The database said no, or the connection failed. `before_write` is true when nothing
    /// that changes data was sent on this try, so it is safe to try again elsewhere.
    Db {
        error: postgres::Error,
        before_write: bool,
    },
    /// A rule or a record said no: the answer, not a store failure.
    Core(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Core(error)
    }
}

/// `?` on a read: nothing was written yet.
fn read(error: postgres::Error) -> Failure {
    Failure::Db {
        error,
        before_write: true,
    }
}

/// `?` on a write: it may have committed.
fn wrote(error: postgres::Error) -> Failure {
    Failure::Db {
        error,
        before_write: false,
    }
}

type Try<T> = std::result::Result<T, Failure>;

impl PgStore {
    /// Connects to `url`, migrates the schema and builds the pool.
    pub(crate) fn connect(url: &str, config: &Config) -> Result<PgStore> {
        PgStore::open(url, config, Schema::Migrate)
    }

    /// Connects to `url` without writing to the database: refuses one without fundcore's
    /// tables, or with a schema of another version than this library's (STORAGE_ERROR).
    pub(crate) fn connect_existing(url: &str, config: &Config) -> Result<PgStore> {
        PgStore::open(url, config, Schema::Existing)
    }

    fn open(url: &str, config: &Config, schema: Schema) -> Result<PgStore> {
        let mut pg_config: postgres::Config = url
            .parse()
            .map_err(|err| Error::storage(format!("invalid PostgreSQL URL: {err}")))?;
        if pg_config.get_connect_timeout().is_none() {
            pg_config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("fundcore");
        }
        let server = describe_server(&pg_config);
        let fail = |err: postgres::Error| {
            Error::storage(format!("PostgreSQL at {server}: {}", describe(&err)))
        };
        let mut client = pg_config.connect(NoTls).map_err(fail)?;
        match schema {
            Schema::Migrate => migrate(&mut client, &server)?,
            Schema::Existing => check_schema(&mut client, &server)?,
        }
        drop(client);
        let pool = r2d2::Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(1))
            .connection_timeout(POOL_WAIT)
            // A dead connection shows itself on use; checking each one costs a round trip.
            .test_on_check_out(false)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(Manager { config: pg_config });
        Ok(PgStore {
            pool,
            server,
            round_trips: AtomicU64::new(0),
            serialization_retries: AtomicU64::new(0),
            lost_races: AtomicU64::new(0),
            known: Known::new(),
        })
    }

    fn storage_error(&self, detail: impl std::fmt::Display) -> Error {
        Error::storage(format!("PostgreSQL at {}: {detail}", self.server))
    }

    /// Runs `op` on a pooled connection, retrying serialization failures and deadlocks with
    /// backoff, and connections that turn out dead before anything was written.
    fn run<T>(&self, mut op: impl FnMut(&mut Conn, &PgStore) -> Try<T>) -> Result<T> {
        let mut serialization_failures = 0;
        let mut dead_connections = 0;
        loop {
            let mut conn = self
                .pool
                .get()
                .map_err(|err| self.storage_error(format!("no connection: {err}")))?;
            match op(&mut conn, self) {
                Ok(value) => return Ok(value),
                Err(Failure::Core(error)) => return Err(error),
                Err(Failure::Db {
                    error,
                    before_write,
                }) => {
                    let retry_reason = match error.code() {
                        Some(code)
                            if *code == postgres::error::SqlState::T_R_SERIALIZATION_FAILURE =>
                        {
                            Some("serialization")
                        }
                        Some(code) if *code == postgres::error::SqlState::T_R_DEADLOCK_DETECTED => {
                            Some("deadlock")
                        }
                        _ => None,
                    };
                    if let Some(reason) = retry_reason
                        && serialization_failures < MAX_SERIALIZATION_RETRIES
                    {
                        serialization_failures += 1;
                        self.serialization_retries.fetch_add(1, Ordering::Relaxed);
                        crate::observe::store_retry(reason);
                        std::thread::sleep(retry_delay(serialization_failures));
                        continue;
                    }
                    let dead = conn.client.is_closed();
                    if dead && before_write && dead_connections <= self.pool.max_size() {
                        // An idle connection from before a database restart: try a fresh one.
                        dead_connections += 1;
                        continue;
                    }
                    return Err(self.storage_error(describe(&error)));
                }
            }
        }
    }

    fn trip(&self) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }

    /// One try at a subscribe or cancel; `Ok(None)` when the client is unknown, `Err` with
    /// [`Failure::Core`] for a rule's answer, `Ok(Some(Err(())))` when another change to the
    /// client won the race.
    fn try_move_money(
        &self,
        conn: &mut Conn,
        client_id: ClientId,
        fund: FundId,
        key: Option<&str>,
        locked: bool,
        decide: &mut dyn FnMut(MoneyView) -> Result<Decision>,
    ) -> Try<Option<std::result::Result<Transaction, ()>>> {
        let params: [&(dyn ToSql + Sync); 3] = [&client_id.0, &i64::from(fund), &key];
        let Conn { client, sql } = conn;
        if !locked {
            self.trip();
            let rows = client.query(&sql.read_money, &params).map_err(read)?;
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            let (view, versions) = money_view(row)?;
            self.known.saw(&view, versions);
            let change = match decide(view)? {
                Decision::Replay(original) => return Ok(Some(Ok(original))),
                Decision::Commit(change) => change,
            };
            versions.check_fund_read()?;
            self.trip();
            let written =
                write_money(client, &sql.write_money, versions, &change).map_err(wrote)?;
            return Ok(Some(self.outcome(written, versions, *change)));
        }
        self.trip();
        let mut tx = client.transaction().map_err(read)?;
        // Lock first, then read in a statement of its own: a locking read that waited for
        // another change would see the client's new row but the other tables as they were
        // before that change (READ COMMITTED re-checks only the locked row).
        self.trip();
        if tx
            .query(&sql.lock_client, &[&client_id.0])
            .map_err(read)?
            .is_empty()
        {
            return Ok(None);
        }
        self.trip();
        let rows = tx.query(&sql.read_money, &params).map_err(read)?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let (view, versions) = money_view(row)?;
        self.known.saw(&view, versions);
        let change = match decide(view)? {
            Decision::Replay(original) => return Ok(Some(Ok(original))),
            Decision::Commit(change) => change,
        };
        versions.check_fund_read()?;
        self.trip();
        let written = write_money(&mut tx, &sql.write_money, versions, &change).map_err(wrote)?;
        self.trip();
        tx.commit().map_err(wrote)?;
        Ok(Some(self.outcome(written, versions, *change)))
    }

    /// The transaction of a change whose guarded write committed, or `Err(())` when the guard
    /// found the client or the fund changed since they were read.
    fn outcome(
        &self,
        written: bool,
        versions: Versions,
        change: MoneyMove,
    ) -> std::result::Result<Transaction, ()> {
        if written {
            self.known.committed(versions, &change);
            Ok(change.entry.transaction)
        } else {
            Err(())
        }
    }

    /// A subscribe or cancel in one round trip, decided on what this process saw of the client
    /// and the fund. `None`, with nothing written, when it saw too little, when the rules
    /// refuse (a refusal is given on a fresh read only), or when the guarded write finds that
    /// anything changed since or that the idempotency key was used before.
    fn try_known(
        &self,
        client_id: ClientId,
        fund: FundId,
        decide: &mut dyn FnMut(MoneyView) -> Result<Decision>,
    ) -> Result<Option<Transaction>> {
        let Some((view, versions)) = self.known.view(client_id, fund) else {
            return Ok(None);
        };
        let Ok(Decision::Commit(change)) = decide(view) else {
            return Ok(None);
        };
        let sent = self.run(|conn, store| {
            store.trip();
            match write_money(&mut conn.client, &conn.sql.write_money, versions, &change) {
                Ok(written) => Ok(OneTrip::Guarded { written }),
                Err(error) if names_constraint(&error, IDEMPOTENCY_KEY_CONSTRAINT) => {
                    Ok(OneTrip::KeyUsed)
                }
                // The write is the first thing sent, so a connection that died in the pool with
                // a server restart shows here (on the two-trip path the read shows it).
                Err(error) if ended_by_server(&error) => Ok(OneTrip::SessionEnded),
                Err(error) => Err(wrote(error)),
            }
        })?;
        let written = match sent {
            OneTrip::Guarded { written } => {
                if !written {
                    self.lost_race();
                }
                written
            }
            OneTrip::KeyUsed => false,
            // The statement's fate is settled, so one lookup tells whether it committed.
            OneTrip::SessionEnded => self.transaction(change.entry.transaction.id)?.is_some(),
        };
        Ok(match self.outcome(written, versions, *change) {
            Ok(transaction) => Some(transaction),
            Err(()) => {
                self.known.forget(client_id, fund);
                None
            }
        })
    }

    /// Counts a change read again because another change to its client or fund committed
    /// since it was read or seen.
    fn lost_race(&self) {
        self.lost_races.fetch_add(1, Ordering::Relaxed);
        crate::observe::lost_race();
    }

    /// Whether a client exists (asked only when a listing came back empty).
    fn client_exists(&self, conn: &mut Conn, id: ClientId) -> Try<bool> {
        self.trip();
        let rows = conn
            .client
            .query(&conn.sql.client_exists, &[&id.0])
            .map_err(read)?;
        Ok(!rows.is_empty())
    }
}

/// How a one-trip write ended, when it did not fail.
enum OneTrip {
    /// The guard held and the change committed, or it did not and nothing was written.
    Guarded { written: bool },
    /// The idempotency key was used before: nothing was written.
    KeyUsed,
    /// The server ended the session (a restart): whether the write committed is unknown.
    SessionEnded,
}

/// The unique index a guarded write runs into when its idempotency key was used before.
const IDEMPOTENCY_KEY_CONSTRAINT: &str = "fundcore_idempotency_keys_pkey";

/// Whether the server ended the session with `error` (a shutdown or restart): its backend is
/// gone, so nothing it was sent can still commit.
fn ended_by_server(error: &postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        matches!(
            db.parsed_severity(),
            Some(postgres::error::Severity::Fatal | postgres::error::Severity::Panic)
        )
    })
}

/// Whether `error` is a unique violation of `constraint`.
fn names_constraint(error: &postgres::Error, constraint: &str) -> bool {
    error.as_db_error().is_some_and(|db| {
        *db.code() == postgres::error::SqlState::UNIQUE_VIOLATION
            && db.constraint() == Some(constraint)
    })
}

fn retry_delay(failures: u32) -> Duration {
    // 2, 4, 8 … ms up to 200 ms, with jitter so racing retries spread out.
    let base = Duration::from_millis(1u64 << failures.min(7)).min(Duration::from_millis(200));
    let jitter = u64::from(uuid::Uuid::now_v7().as_bytes()[15]) % 1000;
    base + Duration::from_micros(jitter * base.as_micros() as u64 / 1000)
}

/// A database error in words: the server's message and SQLSTATE when it sent one (the driver's
/// own text for those is only "db error").
fn describe(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    // The driver's text names the step ("error connecting to server"); the cause says why.
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

fn describe_server(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

/// What connecting does with the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Schema {
    /// Creates or upgrades it (an engine).
    Migrate,
    /// Requires this library's version and writes nothing (a tool reading a store).
    Existing,
}

/// Fails unless the database holds fundcore's schema at the version this library knows.
fn check_schema(client: &mut postgres::Client, server: &str) -> Result<()> {
    let fail = |detail: String| Error::storage(format!("PostgreSQL at {server}: {detail}"));
    let applied: Option<i32> =
        match client.query_one("SELECT max(version) FROM fundcore_migrations", &[]) {
            Ok(row) => row.try_get(0).map_err(|err| fail(describe(&err)))?,
            Err(err) if err.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) => None,
            Err(err) => return Err(fail(describe(&err))),
        };
    let known = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
    match applied {
        None => Err(fail("the database holds no fundcore store".to_owned())),
        Some(applied) if applied == known => Ok(()),
        Some(applied) if applied < known => Err(fail(format!(
            "the database has fundcore schema version {applied}, older than this library's \
             ({known}); connect an engine once to upgrade it"
        ))),
        Some(applied) => Err(fail(format!(
            "the database has fundcore schema version {applied}, newer than this library knows \
             ({known}); upgrade fundcore"
        ))),
    }
}

/// Creates or upgrades the schema, one process at a time.
fn migrate(client: &mut postgres::Client, server: &str) -> Result<()> {
    let fail = |err: postgres::Error| {
        Error::storage(format!("PostgreSQL at {server}: {}", describe(&err)))
    };
    // Two processes creating the same table at once can collide in the catalogue; the loser
    // finds it created on the next try.
    let mut tries = 0;
    loop {
        let created = client.batch_execute(
            "CREATE TABLE IF NOT EXISTS fundcore_schema_lock (id integer PRIMARY KEY);
             CREATE TABLE IF NOT EXISTS fundcore_migrations (
                 version integer PRIMARY KEY,
                 name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now());
             INSERT INTO fundcore_schema_lock (id) VALUES (1) ON CONFLICT DO NOTHING;",
        );
        match created {
            Ok(()) => break,
            Err(err) if tries < 5 && err.code().is_some() => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20 * tries));
            }
            Err(err) => return Err(fail(err)),
        }
    }
    let mut tx = client.transaction().map_err(fail)?;
    tx.execute(
        "SELECT id FROM fundcore_schema_lock WHERE id = 1 FOR UPDATE",
        &[],
    )
    .map_err(fail)?;
    let applied: Option<i32> = tx
        .query_one("SELECT max(version) FROM fundcore_migrations", &[])
        .map_err(fail)?
        .try_get(0)
        .map_err(fail)?;
    let applied = applied.unwrap_or(0);
    let known = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
    if applied > known {
        return Err(Error::storage(format!(
            "PostgreSQL at {server}: the database has fundcore schema version {applied}, newer \
             than this library knows ({known}); upgrade fundcore"
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > applied) {
        tx.batch_execute(sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO fundcore_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .map_err(fail)?;
    }
    tx.commit().map_err(fail)
}

/// The statements every connection prepares once.
struct Statements {
    read_money: Statement,
    lock_client: Statement,
    write_money: Statement,
    insert_client: Statement,
    client: Statement,
    client_exists: Statement,
    subscriptions: Statement,
    history: Statement,
    transaction: Statement,
    notifications: Statement,
    claim_due: Statement,
    settle: Statement,
    requeue_failed: Statement,
    outbox_state: Statement,
    funds: Statement,
    fund: Statement,
    create_fund: Statement,
    lock_fund: Statement,
    write_fund: Statement,
    lock_client_row: Statement,
    write_client: Statement,
    clients: Statement,
    audit_events: Statement,
    import_audit_events: Statement,
}

const CLIENT_COLUMNS: &str = "c.id, c.name, c.email, c.phone, c.channel, c.balance, c.created_at";
const TRANSACTION_COLUMNS: &str = "t.client_id, t.id, t.fund_id, t.fund_name, t.kind, t.amount, \
     t.balance_after, t.created_at, t.idempotency_key";
const SUBSCRIPTION_COLUMNS: &str =
    "s.client_id, s.fund_id, s.fund_name, s.amount, s.transaction_id, s.subscribed_at";
const NOTICE_COLUMNS: &str = "o.id, o.channel, o.recipient, o.client_name, o.locale, o.status, \
     o.attempts, o.last_error, o.delivered_at, o.next_attempt_at";
const FUND_COLUMNS: &str = "f.id, f.name, f.minimum, f.category, f.active";
const AUDIT_COLUMNS: &str = "e.id, e.at, e.actor, e.action, e.target, e.before::text, \
     e.after::text, e.request_id";

impl Statements {
    fn prepare(client: &mut postgres::Client) -> std::result::Result<Statements, postgres::Error> {
        // Column positions are read by `money_view`.
        let read_money = format!(
            "SELECT {CLIENT_COLUMNS}, c.version, c.newest_transaction_id,
                    {SUBSCRIPTION_COLUMNS},
                    k.request_kind, k.request_fund_id, k.request_amount,
                    {TRANSACTION_COLUMNS},
                    {FUND_COLUMNS}, f.version
             FROM fundcore_clients c
             LEFT JOIN fundcore_funds f ON f.id = $2
             LEFT JOIN fundcore_subscriptions s ON s.client_id = c.id AND s.fund_id = $2
             LEFT JOIN fundcore_idempotency_keys k ON k.client_id = c.id AND k.key = $3
             LEFT JOIN fundcore_transactions t ON t.client_id = c.id AND t.id = k.transaction_id
             WHERE c.id = $1"
        );
        Ok(Statements {
            lock_client: client
                .prepare("SELECT version FROM fundcore_clients WHERE id = $1 FOR UPDATE")?,
            read_money: client.prepare(&read_money)?,
            write_money: client.prepare(WRITE_MONEY)?,
            insert_client: client.prepare(
                "INSERT INTO fundcore_clients
                     (id, name, email, phone, channel, balance, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )?,
            client: client.prepare(&format!(
                "SELECT {CLIENT_COLUMNS} FROM fundcore_clients c WHERE c.id = $1"
            ))?,
            client_exists: client.prepare("SELECT 1 FROM fundcore_clients WHERE id = $1")?,
            subscriptions: client.prepare(&format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM fundcore_subscriptions s
                 WHERE s.client_id = $1 ORDER BY s.fund_id"
            ))?,
            history: client.prepare(&format!(
                "SELECT {TRANSACTION_COLUMNS} FROM fundcore_transactions t
                 WHERE t.client_id = $1 AND t.id < $2 ORDER BY t.id DESC LIMIT $3"
            ))?,
            transaction: client.prepare(&format!(
                "SELECT {TRANSACTION_COLUMNS} FROM fundcore_transactions t WHERE t.id = $1"
            ))?,
            notifications: client.prepare(&format!(
                "SELECT {TRANSACTION_COLUMNS}, {NOTICE_COLUMNS}
                 FROM fundcore_outbox o
                 JOIN fundcore_transactions t ON t.client_id = o.client_id AND t.id = o.transaction_id
                 WHERE o.client_id = $1 ORDER BY o.transaction_id DESC"
            ))?,
            claim_due: client.prepare(&format!(
                "WITH due AS (
                     SELECT client_id, transaction_id FROM fundcore_outbox
                     WHERE status = 'pending' AND next_attempt_at <= $1
                     ORDER BY next_attempt_at LIMIT $2
                     FOR UPDATE SKIP LOCKED)
                 UPDATE fundcore_outbox o SET next_attempt_at = $3, claim = $4
                 FROM due, fundcore_transactions t
                 WHERE o.client_id = due.client_id AND o.transaction_id = due.transaction_id
                   AND t.client_id = o.client_id AND t.id = o.transaction_id
                 RETURNING {TRANSACTION_COLUMNS}, {NOTICE_COLUMNS}"
            ))?,
            settle: client.prepare(
                "UPDATE fundcore_outbox
                 SET status = $3, attempts = $4, last_error = $5, delivered_at = $6,
                     next_attempt_at = $7, claim = NULL
                 WHERE client_id = $1 AND transaction_id = $2 AND claim = $8",
            )?,
            requeue_failed: client.prepare(
                "WITH failed AS (
                     SELECT client_id, transaction_id FROM fundcore_outbox
                     WHERE status = 'failed' ORDER BY client_id, transaction_id LIMIT $2
                     FOR UPDATE SKIP LOCKED)
                 UPDATE fundcore_outbox o
                 SET status = 'pending', attempts = 0, next_attempt_at = $1, claim = NULL
                 FROM failed
                 WHERE o.client_id = failed.client_id AND o.transaction_id = failed.transaction_id",
            )?,
            // One statement, so one snapshot. The oldest pending entry is found through the
            // partial index of pending entries and its transaction's key.
            outbox_state: client.prepare(
                "SELECT count(*) FILTER (WHERE status = 'pending'),
                        count(*) FILTER (WHERE status = 'failed'),
                        count(*) FILTER (WHERE status = 'delivered'),
                        (SELECT min(t.created_at)
                         FROM fundcore_outbox p
                         JOIN fundcore_transactions t
                           ON t.client_id = p.client_id AND t.id = p.transaction_id
                         WHERE p.status = 'pending')
                 FROM fundcore_outbox",
            )?,
            funds: client.prepare(&format!(
                "SELECT {FUND_COLUMNS} FROM fundcore_funds f ORDER BY f.id"
            ))?,
            fund: client.prepare(&format!(
                "SELECT {FUND_COLUMNS} FROM fundcore_funds f WHERE f.id = $1"
            ))?,
            create_fund: client.prepare(&format!(
                "WITH created AS (
                     INSERT INTO fundcore_funds (id, name, minimum, category, active)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING
                     RETURNING id
                 ), logged AS ({})
                 SELECT count(*) FROM created",
                insert_audit_event(6, "created")
            ))?,
            lock_fund: client.prepare(&format!(
                "SELECT {FUND_COLUMNS}, (SELECT id FROM fundcore_audit_events ORDER BY id DESC LIMIT 1)
                 FROM fundcore_funds f WHERE f.id = $1 FOR UPDATE OF f"
            ))?,
            write_fund: client.prepare(&format!(
                "WITH changed AS (
                     UPDATE fundcore_funds
                     SET name = $2, minimum = $3, category = $4, active = $5,
                         version = version + 1
                     WHERE id = $1
                     RETURNING id
                 ), logged AS ({})
                 SELECT count(*) FROM changed",
                insert_audit_event(6, "changed")
            ))?,
            lock_client_row: client.prepare(&format!(
                "SELECT {CLIENT_COLUMNS}, (SELECT id FROM fundcore_audit_events ORDER BY id DESC LIMIT 1)
                 FROM fundcore_clients c WHERE c.id = $1 FOR UPDATE OF c"
            ))?,
            // The client's version moves too: a subscribe or cancel read before the change
            // must not queue a notification on the old channel or recipient after it.
            write_client: client.prepare(&format!(
                "WITH changed AS (
                     UPDATE fundcore_clients
                     SET name = $2, email = $3, phone = $4, channel = $5,
                         version = version + 1
                     WHERE id = $1
                     RETURNING id
                 ), logged AS ({})
                 SELECT count(*) FROM changed",
                insert_audit_event(6, "changed")
            ))?,
            clients: client.prepare(&format!(
                "SELECT {CLIENT_COLUMNS} FROM fundcore_clients c
                 WHERE c.id < $1 ORDER BY c.id DESC LIMIT $2"
            ))?,
            audit_events: client.prepare(&format!(
                "SELECT {AUDIT_COLUMNS} FROM fundcore_audit_events e
                 WHERE e.id < $1 ORDER BY e.id DESC LIMIT $2"
            ))?,
            import_audit_events: client.prepare(
                "INSERT INTO fundcore_audit_events
                     (id, at, actor, action, target, before, after, request_id)
                 SELECT id, at, actor, action, target, before::jsonb, after::jsonb, request_id
                 FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[],
                             $5::text[], $6::text[], $7::text[], $8::text[])
                     AS e(id, at, actor, action, target, before, after, request_id)",
            )?,
        })
    }
}

/// An insert of one audit event whose eight values are the parameters from `$first` on (see
/// [`AuditRow`]), made once per row of the CTE `source` (the change it records).
fn insert_audit_event(first: usize, source: &str) -> String {
    let p = |offset: usize| first + offset;
    format!(
        "INSERT INTO fundcore_audit_events
             (id, at, actor, action, target, before, after, request_id)
         SELECT ${}::uuid, ${}::timestamptz, ${}::text, ${}::text, ${}::text,
                ${}::text::jsonb, ${}::text::jsonb, ${}::text
         FROM {source}",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
        p(7),
    )
}

/// An audit event as the parameters of a statement: `before` and `after` as JSON text.
struct AuditRow<'a> {
    event: &'a AuditEvent,
    at: SystemTime,
    action: &'static str,
    before: String,
    after: String,
}

impl<'a> AuditRow<'a> {
    fn new(event: &'a AuditEvent) -> Result<AuditRow<'a>> {
        Ok(AuditRow {
            event,
            at: to_sql_time(event.at),
            action: event.action.as_str(),
            before: json_text(&event.before)?,
            after: json_text(&event.after)?,
        })
    }

    /// The eight values [`insert_audit_event`] expects, in order.
    fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.event.id.0,
            &self.at,
            &self.event.actor,
            &self.action,
            &self.event.target,
            &self.before,
            &self.after,
            &self.event.request_id,
        ]
    }
}

/// Every record of a subscribe or cancel in one statement, written only if the client's
/// `version`, newest transaction and contact data are still the ones decided on ($4, $20,
/// $23–$26) and so are the fund's version, name, minimum and active flag ($19, $6, $21, $22):
/// otherwise nothing is written and the count is 0. The fund's row is read, not locked: every sub-statement sees the
/// statement's snapshot, so a fund changed before the write began fails the guard.
const WRITE_MONEY: &str = "
WITH moved AS (
    UPDATE fundcore_clients
    SET balance = $2, version = version + 1, newest_transaction_id = $3
    WHERE id = $1 AND version = $4 AND newest_transaction_id IS NOT DISTINCT FROM $20
      AND name = $23 AND channel = $24 AND email = $25 AND phone = $26
      AND EXISTS (SELECT 1 FROM fundcore_funds
                  WHERE id = $5 AND version = $19 AND name = $6 AND minimum = $21
                    AND active = $22)
    RETURNING id
), recorded AS (
    INSERT INTO fundcore_transactions
        (client_id, id, fund_id, fund_name, kind, amount, balance_after, created_at, idempotency_key)
    SELECT id, $3, $5, $6, $7, $8, $2, $9, $10 FROM moved
), opened AS (
    INSERT INTO fundcore_subscriptions
        (client_id, fund_id, fund_name, amount, transaction_id, subscribed_at)
    SELECT id, $5, $6, $8, $3, $9 FROM moved WHERE $7::text = 'subscription'
), closed AS (
    DELETE FROM fundcore_subscriptions
    WHERE client_id = $1 AND fund_id = $5 AND $7::text = 'cancellation'
      AND EXISTS (SELECT 1 FROM moved)
), keyed AS (
    INSERT INTO fundcore_idempotency_keys
        (client_id, key, request_kind, request_fund_id, request_amount, transaction_id)
    SELECT id, $10, $11, $12, $13, $3 FROM moved WHERE $10::text IS NOT NULL
), queued AS (
    INSERT INTO fundcore_outbox
        (client_id, transaction_id, id, channel, recipient, client_name, locale, status,
         attempts, next_attempt_at)
    SELECT id, $3, $14, $15, $16, $17, $18, 'pending', 0, $9 FROM moved
    WHERE $14::uuid IS NOT NULL
)
SELECT count(*) FROM moved";

/// Writes a decided change if the client and the fund are still at the versions read; false if
/// either is not.
fn write_money(
    client: &mut impl postgres::GenericClient,
    statement: &Statement,
    versions: Versions,
    change: &MoneyMove,
) -> std::result::Result<bool, postgres::Error> {
    let tx = &change.entry.transaction;
    let notice = change.entry.notice.as_ref();
    let (request_kind, request_fund, request_amount) = match &change.idempotency {
        Some(IdempotencyRecord {
            request: Request::Subscribe { fund_id, amount },
            ..
        }) => (Some("subscribe"), Some(i64::from(*fund_id)), *amount),
        Some(IdempotencyRecord {
            request: Request::Cancel { fund_id },
            ..
        }) => (Some("cancel"), Some(i64::from(*fund_id)), None),
        None => (None, None, None),
    };
    // A key is recorded only with its request; the transaction carries the key.
    let key = change
        .idempotency
        .as_ref()
        .and(tx.idempotency_key.as_deref());
    let row = client.query_one(
        statement,
        &[
            &tx.client_id.0,
            &change.client.balance,
            &tx.id.0,
            &versions.client,
            &i64::from(tx.fund_id),
            &tx.fund_name,
            &tx.kind.as_str(),
            &tx.amount,
            &to_sql_time(tx.created_at),
            &key,
            &request_kind,
            &request_fund,
            &request_amount,
            &notice.map(|n| n.id.0),
            &notice.map(|n| n.channel.as_str()),
            &notice.map(|n| n.recipient.as_str()),
            &notice.map(|n| n.client_name.as_str()),
            &notice.map(|n| n.locale.as_str()),
            &versions.fund.map(|fund| fund.version),
            &versions.newest_transaction.map(|id| id.0),
            &versions.fund.map(|fund| fund.minimum),
            &versions.fund.map(|fund| fund.active),
            &change.client.name,
            &change.client.channel.as_str(),
            &change.client.email,
            &change.client.phone,
        ],
    )?;
    Ok(row.try_get::<_, i64>(0)? == 1)
}

impl Store for PgStore {
    fn seed(&self, seed: &Seed) -> Result<Seed> {
        self.run(|conn, store| {
            store.trip();
            let mut tx = conn.client.transaction().map_err(wrote)?;
            let created = tx
                .execute(
                    "INSERT INTO fundcore_settings (initial_balance) VALUES ($1)
                     ON CONFLICT DO NOTHING",
                    &[&seed.initial_balance],
                )
                .map_err(wrote)?;
            if created == 1 {
                for fund in &seed.funds {
                    tx.execute(
                        "INSERT INTO fundcore_funds (id, name, minimum, category, active)
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        &[
                            &i64::from(fund.id),
                            &fund.name,
                            &fund.minimum,
                            &fund.category.as_str(),
                            &fund.active,
                        ],
                    )
                    .map_err(wrote)?;
                }
            }
            tx.commit().map_err(wrote)?;
            let initial_balance: Decimal = conn
                .client
                .query_one("SELECT initial_balance FROM fundcore_settings", &[])
                .map_err(read)?
                .try_get(0)
                .map_err(read)?;
            let funds = conn
                .client
                .query(&conn.sql.funds, &[])
                .map_err(read)?
                .iter()
                .map(|row| fund_from(row, 0))
                .collect::<Result<_>>()?;
            Ok(Seed {
                initial_balance,
                funds,
            })
        })
    }

    fn largest_id(&self) -> Result<uuid::Uuid> {
        self.run(|conn, _| {
            let mut largest = uuid::Uuid::nil();
            for sql in [
                "SELECT id FROM fundcore_clients ORDER BY id DESC LIMIT 1",
                "SELECT id FROM fundcore_transactions ORDER BY id DESC LIMIT 1",
                "SELECT id FROM fundcore_audit_events ORDER BY id DESC LIMIT 1",
            ] {
                if let Some(row) = conn.client.query_opt(sql, &[]).map_err(read)? {
                    largest = largest.max(row.try_get(0).map_err(read)?);
                }
            }
            Ok(largest)
        })
    }

    fn insert_client(&self, client: &Client) -> Result<()> {
        self.run(|conn, store| {
            store.trip();
            conn.client
                .execute(
                    &conn.sql.insert_client,
                    &[
                        &client.id.0,
                        &client.name,
                        &client.email,
                        &client.phone,
                        &client.channel.as_str(),
                        &client.balance,
                        &to_sql_time(client.created_at),
                    ],
                )
                .map_err(wrote)?;
            Ok(())
        })
    }

    fn client(&self, id: ClientId) -> Result<Option<Client>> {
        self.run(|conn, store| {
            store.trip();
            let rows = conn
                .client
                .query(&conn.sql.client, &[&id.0])
                .map_err(read)?;
            rows.first()
                .map(|row| client_from(row, 0))
                .transpose()
                .map_err(Into::into)
        })
    }

    fn move_money(
        &self,
        client_id: ClientId,
        fund: FundId,
        key: Option<&str>,
        decide: &mut dyn FnMut(MoneyView) -> Result<Decision>,
    ) -> Result<Option<Transaction>> {
        if let Some(transaction) = self.try_known(client_id, fund, decide)? {
            return Ok(Some(transaction));
        }
        let mut lost_races = 0;
        loop {
            let locked = lost_races >= OPTIMISTIC_TRIES;
            let outcome = self.run(|conn, store| {
                store.try_move_money(conn, client_id, fund, key, locked, &mut *decide)
            })?;
            match outcome {
                None => return Ok(None),
                Some(Ok(transaction)) => return Ok(Some(transaction)),
                Some(Err(())) => {
                    lost_races += 1;
                    self.lost_race();
                }
            }
        }
    }

    fn subscriptions(&self, client: ClientId) -> Result<Option<Vec<Subscription>>> {
        self.run(|conn, store| {
            store.trip();
            let rows = conn
                .client
                .query(&conn.sql.subscriptions, &[&client.0])
                .map_err(read)?;
            if rows.is_empty() && !store.client_exists(conn, client)? {
                return Ok(None);
            }
            let subscriptions = rows.iter().map(|row| subscription_from(row, 0));
            Ok(Some(subscriptions.collect::<Result<_>>()?))
        })
    }

    fn history(
        &self,
        client: ClientId,
        limit: usize,
        before: Option<TransactionId>,
    ) -> Result<Option<Vec<Transaction>>> {
        let before = before.map_or(uuid::Uuid::max(), |id| id.0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(|conn, store| {
            store.trip();
            let rows = conn
                .client
                .query(&conn.sql.history, &[&client.0, &before, &limit])
                .map_err(read)?;
            if rows.is_empty() && !store.client_exists(conn, client)? {
                return Ok(None);
            }
            let page = rows.iter().map(|row| transaction_from(row, 0));
            Ok(Some(page.collect::<Result<_>>()?))
        })
    }

    fn transaction(&self, id: TransactionId) -> Result<Option<Transaction>> {
        self.run(|conn, store| {
            store.trip();
            let rows = conn
                .client
                .query(&conn.sql.transaction, &[&id.0])
                .map_err(read)?;
            Ok(rows
                .first()
                .map(|row| transaction_from(row, 0))
                .transpose()?)
        })
    }

    fn notifications(&self, client: ClientId) -> Result<Option<Vec<LedgerEntry>>> {
        self.run(|conn, store| {
            store.trip();
            let rows = conn
                .client
                .query(&conn.sql.notifications, &[&client.0])
                .map_err(read)?;
            if rows.is_empty() && !store.client_exists(conn, client)? {
                return Ok(None);
            }
            let entries = rows.iter().map(|row| {
                Ok(LedgerEntry {
                    transaction: transaction_from(row, 0)?,
                    notice: Some(notice_from(row, TRANSACTION_WIDTH)?),
                })
            });
            Ok(Some(entries.collect::<Result<_>>()?))
        })
    }

    fn claim_due(&self, now: Timestamp, limit: usize, lease: Duration) -> Result<Vec<Claimed>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let lease_end = now.plus(lease);
        // Unique per claim; v7 only because the crate builds v7 ids already.
        let claim = uuid::Uuid::now_v7();
        self.run(|conn, store| {
            store.trip();
            let rows = conn
                .client
                .query(
                    &conn.sql.claim_due,
                    &[&to_sql_time(now), &limit, &to_sql_time(lease_end), &claim],
                )
                .map_err(wrote)?;
            let mut claimed: Vec<Claimed> = rows
                .iter()
                .map(|row| {
                    let mut notice = notice_from(row, TRANSACTION_WIDTH)?;
                    // The lease moved the next attempt; the notice is due now for the engine.
                    notice.next_attempt_at = Some(now);
                    Ok(Claimed {
                        transaction: transaction_from(row, 0)?,
                        notice,
                        claim: claim.as_bytes().to_vec(),
                    })
                })
                .collect::<Result<_>>()?;
            claimed.sort_by_key(|c| c.transaction.id);
            Ok(claimed)
        })
    }

    fn settle(&self, claimed: &Claimed, notice: &Notice) -> Result<()> {
        let claim = uuid::Uuid::from_slice(&claimed.claim)
            .map_err(|_| Error::storage("a claim that this store did not make"))?;
        let tx = &claimed.transaction;
        let attempts = i32::try_from(notice.attempts).unwrap_or(i32::MAX);
        self.run(|conn, store| {
            store.trip();
            conn.client
                .execute(
                    &conn.sql.settle,
                    &[
                        &tx.client_id.0,
                        &tx.id.0,
                        &notice.status.as_str(),
                        &attempts,
                        &notice.last_error,
                        &notice.delivered_at.map(to_sql_time),
                        &notice.next_attempt_at.map(to_sql_time),
                        &claim,
                    ],
                )
                .map_err(wrote)?;
            Ok(())
        })
    }

    fn requeue_failed(&self, now: Timestamp, limit: usize) -> Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(|conn, store| {
            store.trip();
            let requeued = conn
                .client
                .execute(&conn.sql.requeue_failed, &[&to_sql_time(now), &limit])
                .map_err(wrote)?;
            Ok(usize::try_from(requeued).unwrap_or(usize::MAX))
        })
    }

    fn outbox_state(&self) -> Result<OutboxState> {
        self.run(|conn, store| {
            store.trip();
            let row = conn
                .client
                .query_one(&conn.sql.outbox_state, &[])
                .map_err(read)?;
            let count = |at: usize| -> Result<u64> {
                let count: i64 = col(&row, at)?;
                u64::try_from(count).map_err(|_| corrupt("count", &count.to_string()))
            };
            Ok(OutboxState {
                pending: count(0)?,
                failed: count(1)?,
                delivered: count(2)?,
                oldest_pending_at: col::<Option<SystemTime>>(&row, 3)?.map(from_sql_time),
                oldest_pending_age: None,
            })
        })
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn commits_are_durable(&self) -> bool {
        true
    }

    fn stored_seed(&self) -> Result<Option<Seed>> {
        self.run(|conn, _| {
            let Some(row) = conn
                .client
                .query_opt("SELECT initial_balance FROM fundcore_settings", &[])
                .map_err(read)?
            else {
                return Ok(None);
            };
            let funds = conn
                .client
                .query(&conn.sql.funds, &[])
                .map_err(read)?
                .iter()
                .map(|row| fund_from(row, 0))
                .collect::<Result<_>>()?;
            Ok(Some(Seed {
                initial_balance: col(&row, 0)?,
                funds,
            }))
        })
    }

    fn client_ids(&self, after: Option<ClientId>, limit: usize) -> Result<Vec<ClientId>> {
        let after = after.map_or(uuid::Uuid::nil(), |id| id.0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(|conn, _| {
            let rows = conn
                .client
                .query(
                    "SELECT id FROM fundcore_clients WHERE id > $1 ORDER BY id LIMIT $2",
                    &[&after, &limit],
                )
                .map_err(read)?;
            Ok(rows
                .iter()
                .map(|row| col(row, 0).map(ClientId))
                .collect::<Result<_>>()?)
        })
    }

    fn bundle(&self, id: ClientId) -> Result<Option<ClientBundle>> {
        self.run(|conn, _| {
            // One snapshot for all four reads.
            let mut tx = conn
                .client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(read)?;
            let Some(row) = tx
                .query_opt(
                    &format!("SELECT {CLIENT_COLUMNS} FROM fundcore_clients c WHERE c.id = $1"),
                    &[&id.0],
                )
                .map_err(read)?
            else {
                return Ok(None);
            };
            let client = client_from(&row, 0)?;
            let subscriptions = tx
                .query(
                    &format!(
                        "SELECT {SUBSCRIPTION_COLUMNS} FROM fundcore_subscriptions s
                         WHERE s.client_id = $1 ORDER BY s.fund_id"
                    ),
                    &[&id.0],
                )
                .map_err(read)?
                .iter()
                .map(|row| subscription_from(row, 0))
                .collect::<Result<_>>()?;
            let entries = tx
                .query(
                    &format!(
                        "SELECT {TRANSACTION_COLUMNS}, {NOTICE_COLUMNS}
                         FROM fundcore_transactions t
                         LEFT JOIN fundcore_outbox o
                           ON o.client_id = t.client_id AND o.transaction_id = t.id
                         WHERE t.client_id = $1 ORDER BY t.id"
                    ),
                    &[&id.0],
                )
                .map_err(read)?
                .iter()
                .map(|row| {
                    let notice = match col::<Option<uuid::Uuid>>(row, TRANSACTION_WIDTH)? {
                        Some(_) => Some(notice_from(row, TRANSACTION_WIDTH)?),
                        None => None,
                    };
                    Ok(LedgerEntry {
                        transaction: transaction_from(row, 0)?,
                        notice,
                    })
                })
                .collect::<Result<_>>()?;
            let idempotency = tx
                .query(
                    "SELECT key, request_kind, request_fund_id, request_amount, transaction_id
                     FROM fundcore_idempotency_keys WHERE client_id = $1 ORDER BY key",
                    &[&id.0],
                )
                .map_err(read)?
                .iter()
                .map(|row| {
                    let fund_id = fund_id(col(row, 2)?)?;
                    let request = match col::<&str>(row, 1)? {
                        "subscribe" => Request::Subscribe {
                            fund_id,
                            amount: col(row, 3)?,
                        },
                        "cancel" => Request::Cancel { fund_id },
                        other => return Err(corrupt("request kind", other)),
                    };
                    let record = IdempotencyRecord {
                        request,
                        transaction_id: TransactionId(col(row, 4)?),
                    };
                    Ok((col::<String>(row, 0)?, record))
                })
                .collect::<Result<_>>()?;
            tx.commit().map_err(read)?;
            Ok(Some(ClientBundle {
                client,
                subscriptions,
                entries,
                idempotency,
            }))
        })
    }

    fn import_bundle(&self, bundle: &ClientBundle) -> Result<()> {
        self.run(|conn, _| import_bundle(&mut conn.client, bundle).map_err(wrote))
    }

    fn funds(&self) -> Result<Vec<Fund>> {
        self.run(|conn, store| {
            store.trip();
            let rows = conn.client.query(&conn.sql.funds, &[]).map_err(read)?;
            Ok(rows
                .iter()
                .map(|row| fund_from(row, 0))
                .collect::<Result<_>>()?)
        })
    }

    fn fund(&self, id: FundId) -> Result<Option<Fund>> {
        self.run(|conn, store| {
            store.trip();
            let rows = conn
                .client
                .query(&conn.sql.fund, &[&i64::from(id)])
                .map_err(read)?;
            Ok(rows.first().map(|row| fund_from(row, 0)).transpose()?)
        })
    }

    fn create_fund(&self, fund: &Fund, event: &AuditEvent) -> Result<bool> {
        let audit = AuditRow::new(event)?;
        let fund_id = i64::from(fund.id);
        let category = fund.category.as_str();
        self.run(|conn, store| {
            // One statement, so one transaction: the fund and its event, or (id taken) nothing.
            let mut params: Vec<&(dyn ToSql + Sync)> =
                vec![&fund_id, &fund.name, &fund.minimum, &category, &fund.active];
            params.extend(audit.params());
            store.trip();
            let row = conn
                .client
                .query_one(&conn.sql.create_fund, &params)
                .map_err(wrote)?;
            Ok(col::<i64>(&row, 0)? == 1)
        })
    }

    fn update_fund(
        &self,
        id: FundId,
        decide: &mut dyn FnMut(Fund, Option<AuditEventId>) -> Result<Option<(Fund, AuditEvent)>>,
    ) -> Result<Option<Fund>> {
        let fund_id = i64::from(id);
        self.run(|conn, store| {
            let Conn { client, sql } = conn;
            store.trip();
            let mut tx = client.transaction().map_err(read)?;
            store.trip();
            let rows = tx.query(&sql.lock_fund, &[&fund_id]).map_err(read)?;
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            let current = fund_from(row, 0)?;
            let newest_event = col::<Option<uuid::Uuid>>(row, 5)?.map(AuditEventId);
            let Some((updated, event)) = decide(current.clone(), newest_event)? else {
                // Nothing changes: no event either.
                store.trip();
                tx.rollback().map_err(read)?;
                return Ok(Some(current));
            };
            let audit = AuditRow::new(&event)?;
            let category = updated.category.as_str();
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                &fund_id,
                &updated.name,
                &updated.minimum,
                &category,
                &updated.active,
            ];
            params.extend(audit.params());
            store.trip();
            let row = tx.query_one(&sql.write_fund, &params).map_err(wrote)?;
            if col::<i64>(&row, 0)? != 1 {
                return Err(Error::storage("a locked fund vanished").into());
            }
            store.trip();
            tx.commit().map_err(wrote)?;
            store.known.forget_fund(id);
            Ok(Some(updated))
        })
    }

    fn update_client(
        &self,
        id: ClientId,
        decide: &mut dyn FnMut(
            Client,
            Option<AuditEventId>,
        ) -> Result<Option<(Client, AuditEvent)>>,
    ) -> Result<Option<Client>> {
        self.run(|conn, store| {
            let Conn { client, sql } = conn;
            store.trip();
            let mut tx = client.transaction().map_err(read)?;
            store.trip();
            let rows = tx.query(&sql.lock_client_row, &[&id.0]).map_err(read)?;
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            let current = client_from(row, 0)?;
            let newest_event = col::<Option<uuid::Uuid>>(row, 7)?.map(AuditEventId);
            let Some((updated, event)) = decide(current.clone(), newest_event)? else {
                store.trip();
                tx.rollback().map_err(read)?;
                return Ok(Some(current));
            };
            let audit = AuditRow::new(&event)?;
            let channel = updated.channel.as_str();
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                &id.0,
                &updated.name,
                &updated.email,
                &updated.phone,
                &channel,
            ];
            params.extend(audit.params());
            store.trip();
            let row = tx.query_one(&sql.write_client, &params).map_err(wrote)?;
            if col::<i64>(&row, 0)? != 1 {
                return Err(Error::storage("a locked client vanished").into());
            }
            store.trip();
            tx.commit().map_err(wrote)?;
            store.known.forget_client(id);
            Ok(Some(updated))
        })
    }

    fn clients(&self, limit: usize, before: Option<ClientId>) -> Result<Vec<Client>> {
        let before = before.map_or(uuid::Uuid::max(), |id| id.0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(|conn, store| {
            store.trip();
            let rows = conn
                .client
                .query(&conn.sql.clients, &[&before, &limit])
                .map_err(read)?;
            Ok(rows
                .iter()
                .map(|row| client_from(row, 0))
                .collect::<Result<_>>()?)
        })
    }

    fn audit_events(&self, limit: usize, before: Option<AuditEventId>) -> Result<Vec<AuditEvent>> {
        let before = before.map_or(uuid::Uuid::max(), |id| id.0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(|conn, store| {
            store.trip();
            let rows = conn
                .client
                .query(&conn.sql.audit_events, &[&before, &limit])
                .map_err(read)?;
            Ok(rows
                .iter()
                .map(|row| audit_event_from(row, 0))
                .collect::<Result<_>>()?)
        })
    }

    fn import_audit_events(&self, events: &[AuditEvent]) -> Result<()> {
        let rows = events
            .iter()
            .map(AuditRow::new)
            .collect::<Result<Vec<_>>>()?;
        // One array per column: the whole batch is one statement.
        let ids: Vec<uuid::Uuid> = rows.iter().map(|row| row.event.id.0).collect();
        let ats: Vec<SystemTime> = rows.iter().map(|row| row.at).collect();
        let actors: Vec<&str> = rows.iter().map(|row| row.event.actor.as_str()).collect();
        let actions: Vec<&str> = rows.iter().map(|row| row.action).collect();
        let targets: Vec<&str> = rows.iter().map(|row| row.event.target.as_str()).collect();
        let befores: Vec<&str> = rows.iter().map(|row| row.before.as_str()).collect();
        let afters: Vec<&str> = rows.iter().map(|row| row.after.as_str()).collect();
        let request_ids: Vec<Option<&str>> = rows
            .iter()
            .map(|row| row.event.request_id.as_deref())
            .collect();
        self.run(|conn, store| {
            store.trip();
            conn.client
                .execute(
                    &conn.sql.import_audit_events,
                    &[
                        &ids,
                        &ats,
                        &actors,
                        &actions,
                        &targets,
                        &befores,
                        &afters,
                        &request_ids,
                    ],
                )
                .map_err(wrote)?;
            Ok(())
        })
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            round_trips: self.round_trips.load(Ordering::Relaxed),
            serialization_retries: self.serialization_retries.load(Ordering::Relaxed),
            lost_races: self.lost_races.load(Ordering::Relaxed),
        }
    }
}

/// Writes a copied client in one transaction.
fn import_bundle(
    client: &mut postgres::Client,
    bundle: &ClientBundle,
) -> std::result::Result<(), postgres::Error> {
    let c = &bundle.client;
    let newest = bundle.entries.last().map(|entry| entry.transaction.id.0);
    let mut tx = client.transaction()?;
    tx.execute(
        "INSERT INTO fundcore_clients
             (id, name, email, phone, channel, balance, created_at, newest_transaction_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &c.id.0,
            &c.name,
            &c.email,
            &c.phone,
            &c.channel.as_str(),
            &c.balance,
            &to_sql_time(c.created_at),
            &newest,
        ],
    )?;
    for entry in &bundle.entries {
        let t = &entry.transaction;
        tx.execute(
            "INSERT INTO fundcore_transactions
                 (client_id, id, fund_id, fund_name, kind, amount, balance_after, created_at,
                  idempotency_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &t.client_id.0,
                &t.id.0,
                &i64::from(t.fund_id),
                &t.fund_name,
                &t.kind.as_str(),
                &t.amount,
                &t.balance_after,
                &to_sql_time(t.created_at),
                &t.idempotency_key,
            ],
        )?;
        if let Some(n) = &entry.notice {
            let attempts = i32::try_from(n.attempts).unwrap_or(i32::MAX);
            tx.execute(
                "INSERT INTO fundcore_outbox
                     (client_id, transaction_id, id, channel, recipient, client_name, locale,
                      status, attempts, last_error, delivered_at, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &[
                    &t.client_id.0,
                    &t.id.0,
                    &n.id.0,
                    &n.channel.as_str(),
                    &n.recipient,
                    &n.client_name,
                    &n.locale.as_str(),
                    &n.status.as_str(),
                    &attempts,
                    &n.last_error,
                    &n.delivered_at.map(to_sql_time),
                    &n.next_attempt_at.map(to_sql_time),
                ],
            )?;
        }
    }
    for s in &bundle.subscriptions {
        tx.execute(
            "INSERT INTO fundcore_subscriptions
                 (client_id, fund_id, fund_name, amount, transaction_id, subscribed_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &s.client_id.0,
                &i64::from(s.fund_id),
                &s.fund_name,
                &s.amount,
                &s.transaction_id.0,
                &to_sql_time(s.subscribed_at),
            ],
        )?;
    }
    for (key, record) in &bundle.idempotency {
        let (kind, fund, amount) = match &record.request {
            Request::Subscribe { fund_id, amount } => ("subscribe", *fund_id, *amount),
            Request::Cancel { fund_id } => ("cancel", *fund_id, None),
        };
        tx.execute(
            "INSERT INTO fundcore_idempotency_keys
                 (client_id, key, request_kind, request_fund_id, request_amount, transaction_id)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &c.id.0,
                key,
                &kind,
                &i64::from(fund),
                &amount,
                &record.transaction_id.0,
            ],
        )?;
    }
    tx.commit()
}

// ------------------------------------------------------------------ rows to records

/// Columns of [`TRANSACTION_COLUMNS`].
const TRANSACTION_WIDTH: usize = 9;

/// Column `at` of `row`, or STORAGE_ERROR when it does not have the expected type.
fn col<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, at: usize) -> Result<T> {
    row.try_get(at)
        .map_err(|err| Error::storage(format!("unexpected column {at}: {err}")))
}

fn corrupt(what: &str, value: &str) -> Error {
    Error::storage(format!("corrupt record: {what} {value:?}"))
}

fn fund_id(value: i64) -> Result<FundId> {
    FundId::try_from(value).map_err(|_| corrupt("fund id", &value.to_string()))
}

fn channel(text: &str) -> Result<Channel> {
    text.parse().map_err(|_| corrupt("channel", text))
}

fn kind(text: &str) -> Result<TransactionKind> {
    text.parse().map_err(|_| corrupt("transaction kind", text))
}

fn status(text: &str) -> Result<NotificationStatus> {
    text.parse()
        .map_err(|_| corrupt("notification status", text))
}

fn category(text: &str) -> Result<Category> {
    text.parse().map_err(|_| corrupt("category", text))
}

fn locale(text: &str) -> Result<Locale> {
    text.parse().map_err(|_| corrupt("locale", text))
}

fn action(text: &str) -> Result<AuditAction> {
    text.parse().map_err(|_| corrupt("audit action", text))
}

/// A JSON object as the text sent for a `jsonb` column.
fn json_text(object: &serde_json::Map<String, serde_json::Value>) -> Result<String> {
    serde_json::to_string(object).map_err(|err| Error::storage(format!("encode: {err}")))
}

/// A `jsonb` column read as text.
fn json_object(text: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(text).map_err(|_| corrupt("audit event field", text))
}

fn audit_event_from(row: &Row, at: usize) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: AuditEventId(col(row, at)?),
        at: from_sql_time(col(row, at + 1)?),
        actor: col(row, at + 2)?,
        action: action(col(row, at + 3)?)?,
        target: col(row, at + 4)?,
        before: json_object(col(row, at + 5)?)?,
        after: json_object(col(row, at + 6)?)?,
        request_id: col(row, at + 7)?,
    })
}

fn fund_from(row: &Row, at: usize) -> Result<Fund> {
    Ok(Fund {
        id: fund_id(col(row, at)?)?,
        name: col(row, at + 1)?,
        minimum: col(row, at + 2)?,
        category: category(col(row, at + 3)?)?,
        active: col(row, at + 4)?,
    })
}

fn client_from(row: &Row, at: usize) -> Result<Client> {
    Ok(Client {
        id: ClientId(col(row, at)?),
        name: col(row, at + 1)?,
        email: col(row, at + 2)?,
        phone: col(row, at + 3)?,
        channel: channel(col(row, at + 4)?)?,
        balance: col(row, at + 5)?,
        created_at: from_sql_time(col(row, at + 6)?),
    })
}

fn subscription_from(row: &Row, at: usize) -> Result<Subscription> {
    Ok(Subscription {
        client_id: ClientId(col(row, at)?),
        fund_id: fund_id(col(row, at + 1)?)?,
        fund_name: col(row, at + 2)?,
        amount: col(row, at + 3)?,
        transaction_id: TransactionId(col(row, at + 4)?),
        subscribed_at: from_sql_time(col(row, at + 5)?),
    })
}

fn transaction_from(row: &Row, at: usize) -> Result<Transaction> {
    Ok(Transaction {
        client_id: ClientId(col(row, at)?),
        id: TransactionId(col(row, at + 1)?),
        fund_id: fund_id(col(row, at + 2)?)?,
        fund_name: col(row, at + 3)?,
        kind: kind(col(row, at + 4)?)?,
        amount: col(row, at + 5)?,
        balance_after: col(row, at + 6)?,
        created_at: from_sql_time(col(row, at + 7)?),
        idempotency_key: col(row, at + 8)?,
    })
}

fn notice_from(row: &Row, at: usize) -> Result<Notice> {
    let attempts: i32 = col(row, at + 6)?;
    Ok(Notice {
        id: NotificationId(col(row, at)?),
        channel: channel(col(row, at + 1)?)?,
        recipient: col(row, at + 2)?,
        client_name: col(row, at + 3)?,
        locale: locale(col(row, at + 4)?)?,
        status: status(col(row, at + 5)?)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| corrupt("attempts", &attempts.to_string()))?,
        last_error: col(row, at + 7)?,
        delivered_at: col::<Option<SystemTime>>(row, at + 8)?.map(from_sql_time),
        next_attempt_at: col::<Option<SystemTime>>(row, at + 9)?.map(from_sql_time),
    })
}

impl Versions {
    /// A change can be written only against a fund that was read (the guard would fail
    /// forever otherwise).
    fn check_fund_read(self) -> Result<()> {
        match self.fund {
            Some(_) => Ok(()),
            None => Err(Error::storage(
                "a money move for a fund the store did not read",
            )),
        }
    }
}

/// Where [`FUND_COLUMNS`] start in the row of `read_money`.
const MONEY_FUND_AT: usize = 18 + TRANSACTION_WIDTH;

/// The read of a subscribe or cancel, and the versions it was made at.
fn money_view(row: &Row) -> Result<(MoneyView, Versions)> {
    let client = client_from(row, 0)?;
    let version: i64 = col(row, 7)?;
    let newest: Option<uuid::Uuid> = col(row, 8)?;
    let subscription = match col::<Option<uuid::Uuid>>(row, 9)? {
        Some(_) => Some(subscription_from(row, 9)?),
        None => None,
    };
    let request = match col::<Option<&str>>(row, 15)? {
        Some(request_kind) => {
            let fund_id = fund_id(col(row, 16)?)?;
            Some(match request_kind {
                "subscribe" => Request::Subscribe {
                    fund_id,
                    amount: col(row, 17)?,
                },
                "cancel" => Request::Cancel { fund_id },
                other => return Err(corrupt("request kind", other)),
            })
        }
        None => None,
    };
    let replay = match request {
        Some(request) => {
            if col::<Option<uuid::Uuid>>(row, 18)?.is_none() {
                return Err(Error::storage("idempotency record without its transaction"));
            }
            Some((request, transaction_from(row, 18)?))
        }
        None => None,
    };
    let (fund, fund_guard) = match col::<Option<i64>>(row, MONEY_FUND_AT)? {
        Some(_) => {
            let fund = fund_from(row, MONEY_FUND_AT)?;
            let guard = FundGuard::of(&fund, col::<i64>(row, MONEY_FUND_AT + 5)?);
            (Some(fund), Some(guard))
        }
        None => (None, None),
    };
    let view = MoneyView {
        client,
        fund,
        subscription,
        replay,
        newest_transaction: newest.map(TransactionId),
    };
    let versions = Versions {
        client: version,
        newest_transaction: view.newest_transaction,
        fund: fund_guard,
    };
    Ok((view, versions))
}

fn to_sql_time(at: Timestamp) -> SystemTime {
    let micros = at.unix_micros();
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

fn from_sql_time(at: SystemTime) -> Timestamp {
    let micros = match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
    };
    Timestamp::from_unix_micros(micros)
}
