//! The PostgreSQL store: any number of processes and hosts share one database.
//!
//! - A subscribe or cancel ([`money`]) is decided by the engine on one read and written by one
//!   guarded statement, or by the write alone when this process has seen the client and the
//!   fund ([`known`]). The client's row is the only lock it takes.
//! - An administrative change ([`admin`]) commits with its audit event in one transaction.
//! - The outbox ([`outbox`]) is shared by every dispatcher through claims with a lease.
//! - The schema ([`schema`]) is created and upgraded on connect by versioned migrations.
//! - Every call has a deadline ([`Config::operation_timeout`]): connecting, waiting for a
//!   pooled connection and every answer end by it ([`connect`]).
//! - A change whose reply was lost (the connection failed in any way after it was sent) is
//!   looked up on a fresh connection ([`outcome`]): the caller gets the committed result, or
//!   STORAGE_ERROR when nothing committed, or OUTCOME_UNKNOWN when neither can be learned
//!   before the deadline.
//! - Serialization failures and deadlocks (SQLSTATE 40001, 40P01) are retried with bounded
//!   backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use super::{
    Claimed, ClientBundle, Decision, LedgerEntry, MoneyView, Notice, Seed, Store, StoreStats,
};
use crate::audit::AuditEvent;
use crate::client::Client;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::fund::Fund;
use crate::ids::{AuditEventId, ClientId, FundId, NotificationId, TransactionId};
use crate::ledger::{Subscription, Transaction};
use crate::outbox::OutboxState;
use crate::time::Timestamp;

mod admin;
mod connect;
mod copy;
mod known;
mod money;
mod outbox;
mod outcome;
mod rows;
mod schema;
mod statements;

use connect::{Conn, Manager, PgError, Settings};
use known::Known;
use outcome::{Lost, Sent, Try, read, sent};
use rows::{client_from, col, fund_from, subscription_from, to_sql_time, transaction_from};
use statements::Q;

/// Pause between two connection attempts while a change's outcome is being learned.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

/// Attempts at one operation that keeps failing with a serialization failure or deadlock.
const MAX_SERIALIZATION_RETRIES: u32 = 10;

/// The PostgreSQL store behind a pool of connections.
pub(crate) struct PgStore {
    pool: r2d2::Pool<Manager>,
    settings: Arc<Settings>,
    /// The settings of a connection opened for one call (after a failure, for a lookup): it
    /// prepares nothing, so its first statement goes out at once.
    fresh: Settings,
    round_trips: AtomicU64,
    serialization_retries: AtomicU64,
    lost_races: AtomicU64,
    lost_replies: AtomicU64,
    known: Known,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("server", &self.settings.server)
            .finish()
    }
}

/// What connecting does with the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Schema {
    /// Creates or upgrades it (an engine).
    Migrate,
    /// Requires this library's version and writes nothing (a tool reading a store).
    Existing,
}

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
        inside_async_runtime()?;
        let settings = Arc::new(Settings::new(url, config)?);
        let fail =
            |err: PgError| Error::storage(format!("PostgreSQL at {}: {err}", settings.server));
        // The statements are prepared on the pool's connections, once the tables exist.
        let setup = settings.unprepared();
        let mut conn = Conn::open(&setup, setup.deadline()).map_err(fail)?;
        match schema {
            Schema::Migrate => schema::migrate(&mut conn, &setup)?,
            Schema::Existing => schema::check(&mut conn, &setup.server)?,
        }
        drop(conn);
        if settings.prepared {
            // One connection as the pool makes them, now: behind a pooler in transaction mode
            // its prepared statements are not in its session, and connecting says so.
            drop(Conn::open(&settings, settings.deadline()).map_err(fail)?);
        }
        let pool = r2d2::Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(1))
            .connection_timeout(settings.timeout)
            // A dead connection shows itself on use; checking each one costs a round trip.
            .test_on_check_out(false)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(Manager {
                settings: Arc::clone(&settings),
            });
        Ok(PgStore {
            pool,
            fresh: settings.unprepared(),
            settings,
            round_trips: AtomicU64::new(0),
            serialization_retries: AtomicU64::new(0),
            lost_races: AtomicU64::new(0),
            lost_replies: AtomicU64::new(0),
            known: Known::new(),
        })
    }

    fn storage_error(&self, detail: impl std::fmt::Display) -> Error {
        Error::storage(format!("PostgreSQL at {}: {detail}", self.settings.server))
    }

    fn outcome_unknown(&self, detail: impl std::fmt::Display) -> Error {
        Error::outcome_unknown(format!("PostgreSQL at {}: {detail}", self.settings.server))
    }

    /// A connection for a call ending at `deadline`: a pooled one, or after a failure a new
    /// one (the pool may still hold connections from before a restart or a failover).
    fn checkout(&self, deadline: Instant, fresh: bool) -> std::result::Result<Held, PgError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(PgError::TimedOut);
        }
        let mut held = if fresh {
            Held::Fresh(Conn::open(&self.fresh, deadline)?)
        } else {
            // Half the time left for a pooled connection: the pool's own error says only that
            // it waited, so the rest goes to connecting, which says why it cannot.
            match self.pool.get_timeout(remaining / 2) {
                Ok(mut conn) => {
                    conn.catch_up();
                    if conn.is_broken() {
                        // Died idle in the pool (a restart, a failover): not sent on, dropped.
                        drop(conn);
                        Held::Fresh(Conn::open(&self.fresh, deadline)?)
                    } else {
                        Held::Pooled(conn)
                    }
                }
                // Opened as the pool opens them, so the error is the pool's own.
                Err(_) => Held::Fresh(Conn::open(&self.settings, deadline)?),
            }
        };
        held.set_deadline(deadline);
        Ok(held)
    }

    /// Runs a call that only reads: on a failed connection it is tried again on a new one
    /// while the deadline allows.
    fn read<T>(&self, op: impl FnMut(&mut Conn, &PgStore) -> Try<T>) -> Result<T> {
        self.run(Lost::Unknown, op)
    }

    /// Runs `op`, retrying serialization failures and deadlocks with backoff and connections
    /// that failed before anything was written; a change whose reply was lost is settled as
    /// `lost` says ([`outcome`]).
    fn run<T>(
        &self,
        lost: Lost<'_, T>,
        op: impl FnMut(&mut Conn, &PgStore) -> Try<T>,
    ) -> Result<T> {
        self.run_until(self.settings.deadline(), lost, op)
    }

    /// [`PgStore::run`] with the deadline of a call that started earlier.
    fn run_until<T>(
        &self,
        deadline: Instant,
        mut lost: Lost<'_, T>,
        mut op: impl FnMut(&mut Conn, &PgStore) -> Try<T>,
    ) -> Result<T> {
        inside_async_runtime()?;
        let mut serialization_failures = 0;
        let mut fresh = false;
        // Set once a change may have committed: a failure after it cannot say "nothing saved".
        let mut uncertain: Option<String> = None;
        loop {
            let failed = |error: &dyn std::fmt::Display, uncertain: &Option<String>| match uncertain
            {
                Some(first) => self.outcome_unknown(format!("{first}; then {error}")),
                None => self.storage_error(error),
            };
            let mut conn = match self.checkout(deadline, fresh) {
                Ok(conn) => conn,
                // A change that may have committed is worth waiting for (a restart, a
                // promotion); otherwise the caller hears at once that the store is away.
                Err(error)
                    if uncertain.is_none() || Instant::now() + RECONNECT_PAUSE >= deadline =>
                {
                    return Err(failed(&connecting(&error), &uncertain));
                }
                Err(_) => {
                    sleep_before(RECONNECT_PAUSE, deadline);
                    continue;
                }
            };
            let (error, what) = match op(&mut conn, self) {
                Ok(value) => return Ok(value),
                Err(outcome::Failure::Core(error)) => return Err(error),
                Err(outcome::Failure::Db { error, sent }) => (error, sent),
            };
            drop(conn);
            if let Some(reason) = error.retry_reason()
                && serialization_failures < MAX_SERIALIZATION_RETRIES
            {
                serialization_failures += 1;
                self.serialization_retries.fetch_add(1, Ordering::Relaxed);
                crate::observe::store_retry(reason);
                sleep_before(retry_delay(serialization_failures), deadline);
                continue;
            }
            if matches!(error, PgError::NotReplicated) && what == Sent::MaybeCommitted {
                // Committed on the primary, maybe on no standby: a failover could still lose
                // it, and a lookup on the primary would find it all the same.
                return Err(self.outcome_unknown(error));
            }
            if error.read_only_server()
                && Instant::now() + RECONNECT_PAUSE + self.settings.timeout / 4 < deadline
            {
                // A standby or a primary turned read-only refused it: nothing committed, and a
                // new connection may reach the primary (a multi-host URL after a failover). A
                // try is started only with a quarter of the deadline left: one cut short by the
                // deadline after sending its write could only answer OUTCOME_UNKNOWN.
                fresh = true;
                sleep_before(RECONNECT_PAUSE, deadline);
                continue;
            }
            if error.refused_by_server() {
                // The database answered: what was sent did not commit.
                return Err(failed(&error, &uncertain));
            }
            fresh = true;
            if what == Sent::Nothing || what == Sent::Uncommitted {
                // Nothing that was sent can commit: another connection may do.
                if Instant::now() < deadline {
                    continue;
                }
                return Err(failed(&error, &uncertain));
            }
            self.lost_replies.fetch_add(1, Ordering::Relaxed);
            crate::observe::lost_reply();
            match &mut lost {
                Lost::Unknown => return Err(self.outcome_unknown(error)),
                Lost::Repeat => {
                    uncertain.get_or_insert_with(|| error.to_string());
                    if Instant::now() >= deadline {
                        return Err(failed(&error, &uncertain));
                    }
                }
                Lost::LookUp(look_up) => match self.look_up(deadline, &error, &mut **look_up)? {
                    outcome::Settled::Committed(value) => return Ok(value),
                    outcome::Settled::NotCommitted => {}
                },
            }
        }
    }

    fn trip(&self) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
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
        let rows = conn.query(Q::ClientExists, &[&id.0]).map_err(read)?;
        Ok(!rows.is_empty())
    }

    fn funds_on(conn: &mut Conn) -> Try<Vec<Fund>> {
        let rows = conn.query(Q::Funds, &[]).map_err(read)?;
        Ok(rows
            .iter()
            .map(|row| fund_from(row, 0))
            .collect::<Result<_>>()?)
    }
}

/// What failing to get a connection means for a call.
fn connecting(error: &PgError) -> String {
    match error {
        PgError::TimedOut => "no connection within the operation timeout".to_owned(),
        other => format!("no connection: {other}"),
    }
}

/// A connection from the pool, or one opened for a single call.
enum Held {
    Pooled(r2d2::PooledConnection<Manager>),
    Fresh(Conn),
}

impl std::ops::Deref for Held {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match self {
            Held::Pooled(conn) => conn,
            Held::Fresh(conn) => conn,
        }
    }
}

impl std::ops::DerefMut for Held {
    fn deref_mut(&mut self) -> &mut Conn {
        match self {
            Held::Pooled(conn) => conn,
            Held::Fresh(conn) => conn,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // A transaction left open by a failed try is rolled back before the connection is
        // used again (the pool checks `has_broken`, which does the same).
        if let Held::Fresh(conn) = self {
            conn.end_transaction();
        }
    }
}

/// Sleeps for `pause`, but not past `deadline`.
fn sleep_before(pause: Duration, deadline: Instant) {
    std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
}

/// The store blocks its caller's thread on its own runtime, which tokio forbids inside a
/// runtime: an async caller gets this error instead of a panic.
fn inside_async_runtime() -> Result<()> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Err(Error::storage(
            "the PostgreSQL store was called from inside an async (tokio) runtime; call the \
             engine from a blocking thread (tokio::task::spawn_blocking)",
        )),
        Err(_) => Ok(()),
    }
}

fn retry_delay(failures: u32) -> Duration {
    // 2, 4, 8 … ms up to 200 ms, with jitter so racing retries spread out.
    let base = Duration::from_millis(1u64 << failures.min(7)).min(Duration::from_millis(200));
    let jitter = u64::from(uuid::Uuid::now_v7().as_bytes()[15]) % 1000;
    base + Duration::from_micros(jitter * base.as_micros() as u64 / 1000)
}

impl Store for PgStore {
    fn seed(&self, seed: &Seed) -> Result<Seed> {
        // Every insert is ON CONFLICT DO NOTHING: sending it all again changes nothing.
        self.run(Lost::Repeat, |conn, store| {
            store.trip();
            conn.begin(store.settings.idle_transaction_limit())
                .map_err(read)?;
            let created = conn
                .execute(Q::InsertSettings, &[&seed.initial_balance])
                .map_err(outcome::uncommitted)?;
            if created == 1 {
                for fund in &seed.funds {
                    conn.execute(
                        Q::SeedFund,
                        &[
                            &i64::from(fund.id),
                            &fund.name,
                            &fund.minimum,
                            &fund.category.as_str(),
                            &fund.active,
                        ],
                    )
                    .map_err(outcome::uncommitted)?;
                }
            }
            conn.commit().map_err(sent)?;
            let initial_balance: Decimal =
                col(&conn.query_one(Q::InitialBalance, &[]).map_err(read)?, 0)?;
            Ok(Seed {
                initial_balance,
                funds: PgStore::funds_on(conn)?,
            })
        })
    }

    fn largest_id(&self) -> Result<uuid::Uuid> {
        self.read(|conn, _| {
            let mut largest = uuid::Uuid::nil();
            for q in [
                Q::LargestClientId,
                Q::LargestTransactionId,
                Q::LargestAuditEventId,
            ] {
                if let Some(row) = conn.query_opt(q, &[]).map_err(read)? {
                    largest = largest.max(col(&row, 0)?);
                }
            }
            Ok(largest)
        })
    }

    fn insert_client(&self, client: &Client) -> Result<()> {
        // The insert does nothing if the client's id exists: sending it again is safe.
        self.run(Lost::Repeat, |conn, store| {
            store.trip();
            conn.execute(
                Q::InsertClient,
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
            .map_err(sent)?;
            Ok(())
        })
    }

    fn client(&self, id: ClientId) -> Result<Option<Client>> {
        self.read(|conn, store| {
            store.trip();
            let rows = conn.query(Q::Client, &[&id.0]).map_err(read)?;
            Ok(rows.first().map(|row| client_from(row, 0)).transpose()?)
        })
    }

    fn move_money(
        &self,
        client_id: ClientId,
        fund: FundId,
        key: Option<&str>,
        decide: &mut dyn FnMut(MoneyView) -> Result<Decision>,
    ) -> Result<Option<Transaction>> {
        money::move_money(self, client_id, fund, key, decide)
    }

    fn subscriptions(&self, client: ClientId) -> Result<Option<Vec<Subscription>>> {
        self.read(|conn, store| {
            store.trip();
            let rows = conn.query(Q::Subscriptions, &[&client.0]).map_err(read)?;
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
        self.read(|conn, store| {
            store.trip();
            let rows = conn
                .query(Q::History, &[&client.0, &before, &limit])
                .map_err(read)?;
            if rows.is_empty() && !store.client_exists(conn, client)? {
                return Ok(None);
            }
            let page = rows.iter().map(|row| transaction_from(row, 0));
            Ok(Some(page.collect::<Result<_>>()?))
        })
    }

    fn transaction(&self, id: TransactionId) -> Result<Option<Transaction>> {
        self.read(|conn, store| {
            store.trip();
            let rows = conn.query(Q::Transaction, &[&id.0]).map_err(read)?;
            Ok(rows
                .first()
                .map(|row| transaction_from(row, 0))
                .transpose()?)
        })
    }

    fn notifications(&self, client: ClientId) -> Result<Option<Vec<LedgerEntry>>> {
        outbox::notifications(self, client)
    }

    fn claim_due(&self, now: Timestamp, limit: usize, lease: Duration) -> Result<Vec<Claimed>> {
        outbox::claim_due(self, now, limit, lease)
    }

    fn settle(&self, claimed: &Claimed, notice: &Notice) -> Result<()> {
        outbox::settle(self, claimed, notice)
    }

    fn requeue_failed(&self, now: Timestamp, limit: usize) -> Result<usize> {
        outbox::requeue_failed(self, now, limit)
    }

    fn failed_notifications(
        &self,
        limit: usize,
        before: Option<NotificationId>,
    ) -> Result<Vec<LedgerEntry>> {
        outbox::failed(self, limit, before)
    }

    fn outbox_state(&self) -> Result<OutboxState> {
        outbox::state(self)
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn commits_are_durable(&self) -> bool {
        true
    }

    fn backup(&self, _dest: &std::path::Path) -> Result<()> {
        Err(Error::storage(
            "a PostgreSQL store is backed up with pg_dump and restored with pg_restore \
             (docs/stores.md, Backing up and restoring a database); Engine::backup copies \
             embedded stores only",
        ))
    }

    fn stored_seed(&self) -> Result<Option<Seed>> {
        self.read(|conn, _| {
            let Some(row) = conn.query_opt(Q::InitialBalance, &[]).map_err(read)? else {
                return Ok(None);
            };
            Ok(Some(Seed {
                initial_balance: col(&row, 0)?,
                funds: PgStore::funds_on(conn)?,
            }))
        })
    }

    fn client_ids(&self, after: Option<ClientId>, limit: usize) -> Result<Vec<ClientId>> {
        let after = after.map_or(uuid::Uuid::nil(), |id| id.0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn, _| {
            let rows = conn.query(Q::ClientIds, &[&after, &limit]).map_err(read)?;
            Ok(rows
                .iter()
                .map(|row| col(row, 0).map(ClientId))
                .collect::<Result<_>>()?)
        })
    }

    fn bundle(&self, id: ClientId) -> Result<Option<ClientBundle>> {
        copy::bundle(self, id)
    }

    fn import_bundle(&self, bundle: &ClientBundle) -> Result<()> {
        copy::import_bundle(self, bundle)
    }

    fn funds(&self) -> Result<Vec<Fund>> {
        self.read(|conn, store| {
            store.trip();
            PgStore::funds_on(conn)
        })
    }

    fn fund(&self, id: FundId) -> Result<Option<Fund>> {
        self.read(|conn, store| {
            store.trip();
            let rows = conn.query(Q::Fund, &[&i64::from(id)]).map_err(read)?;
            Ok(rows.first().map(|row| fund_from(row, 0)).transpose()?)
        })
    }

    fn create_fund(&self, fund: &Fund, event: &AuditEvent) -> Result<bool> {
        admin::create_fund(self, fund, event)
    }

    fn update_fund(
        &self,
        id: FundId,
        decide: &mut dyn FnMut(Fund, Option<AuditEventId>) -> Result<Option<(Fund, AuditEvent)>>,
    ) -> Result<Option<Fund>> {
        admin::update_fund(self, id, decide)
    }

    fn update_client(
        &self,
        id: ClientId,
        decide: &mut dyn FnMut(
            Client,
            Option<AuditEventId>,
        ) -> Result<Option<(Client, AuditEvent)>>,
    ) -> Result<Option<Client>> {
        admin::update_client(self, id, decide)
    }

    fn clients(&self, limit: usize, before: Option<ClientId>) -> Result<Vec<Client>> {
        let before = before.map_or(uuid::Uuid::max(), |id| id.0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn, store| {
            store.trip();
            let rows = conn.query(Q::Clients, &[&before, &limit]).map_err(read)?;
            Ok(rows
                .iter()
                .map(|row| client_from(row, 0))
                .collect::<Result<_>>()?)
        })
    }

    fn audit_events(&self, limit: usize, before: Option<AuditEventId>) -> Result<Vec<AuditEvent>> {
        admin::audit_events(self, limit, before)
    }

    fn import_audit_events(&self, events: &[AuditEvent]) -> Result<()> {
        admin::import_audit_events(self, events)
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            round_trips: self.round_trips.load(Ordering::Relaxed),
            serialization_retries: self.serialization_retries.load(Ordering::Relaxed),
            lost_races: self.lost_races.load(Ordering::Relaxed),
        }
    }
}
