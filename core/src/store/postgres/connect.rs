//! Connections to the database: the URL and what is added to it (keepalives, a TCP user
//! timeout, a bounded connect), one private runtime per connection so that every wait on the
//! network ends at the call's deadline, and the pool.
//!
//! tokio-postgres is driven here rather than through the blocking `postgres` crate because the
//! latter cannot bound a wait: a silent network (a half-open connection, a server that accepts
//! and never answers) would hold a call for hours. Like that crate, each connection's socket is
//! driven inside the future its caller waits on (no task of its own): a task per connection
//! cost about 7 % of the operations per second at one caller, measured against it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio_postgres::error::{DbError, Severity, SqlState};
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, NoTls, Row, Statement};

use super::statements::Q;
use crate::config::Config;
use crate::error::{Error, Result};

/// How long connecting may take when the URL does not say (`connect_timeout`), at most the
/// operation timeout.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Seconds between keepalive probes once a connection is idle, and between unanswered probes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);

/// Unanswered keepalive probes before the kernel gives a connection up.
const KEEPALIVE_RETRIES: u32 = 3;

/// What every connection of a store is opened with.
#[derive(Debug)]
pub(super) struct Settings {
    config: tokio_postgres::Config,
    /// `host:port` of the database (the first host of a multi-host URL), for error messages;
    /// never the password.
    pub server: String,
    /// The longest a call waits on the network ([`Config::operation_timeout`]).
    pub timeout: Duration,
    /// Whether each connection prepares its statements ([`Config::prepared_statements`]).
    pub prepared: bool,
}

impl Settings {
    /// The settings of `url` with fundcore's additions: an application name, a connect
    /// timeout, TCP keepalives and a TCP user timeout no longer than the operation timeout.
    pub fn new(url: &str, config: &Config) -> Result<Settings> {
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|err| Error::storage(format!("invalid PostgreSQL URL: {err}")))?;
        let timeout = config.operation_timeout;
        let connect = pg
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
            .min(timeout);
        pg.connect_timeout(connect);
        if pg.get_application_name().is_none() {
            pg.application_name("fundcore");
        }
        // A dead peer is noticed by the kernel within a few seconds of silence, and data that
        // goes unacknowledged fails the connection at the deadline.
        pg.keepalives(true)
            .keepalives_idle(KEEPALIVE_INTERVAL.max(timeout / 2))
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES)
            .tcp_user_timeout(timeout);
        let server = describe_server(&pg);
        Ok(Settings {
            config: pg,
            server,
            timeout,
            prepared: config.prepared_statements,
        })
    }

    /// The same settings without prepared statements (the connection that migrates the
    /// schema prepares nothing: the tables may not exist yet).
    pub fn unprepared(&self) -> Settings {
        Settings {
            config: self.config.clone(),
            server: self.server.clone(),
            timeout: self.timeout,
            prepared: false,
        }
    }

    /// The deadline of a call starting now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// How long an explicit transaction may sit idle before the server rolls it back: a
    /// transaction left open by a connection that died (its COMMIT lost on the way) then
    /// releases its locks in time for the lookup of its outcome.
    pub fn idle_transaction_limit(&self) -> Duration {
        (self.timeout / 4).max(Duration::from_millis(50))
    }
}

fn describe_server(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let more = config.get_hosts().len().saturating_sub(1);
    if more > 0 {
        format!("{host}:{port} (+{more} hosts)")
    } else {
        format!("{host}:{port}")
    }
}

/// Why a statement failed.
#[derive(Debug)]
pub(super) enum PgError {
    /// The server warned, while the statement ran, that a commit was cancelled while waiting
    /// for synchronous replication: it committed on the primary and may not be on a standby.
    NotReplicated,
    /// The driver or the database said so.
    Driver(tokio_postgres::Error),
    /// The call's deadline passed first.
    TimedOut,
    /// The connection ended (its socket closed or failed) before the answer came.
    Closed,
    /// No runtime could be started for the connection.
    Runtime(std::io::Error),
    /// The session does not hold the statements this connection prepared (a pooler in
    /// transaction mode hands each transaction to any server connection).
    NotThisSession,
    /// A statement that returns one row returned none or several.
    RowCount(usize),
}

impl PgError {
    /// The server's error, when it sent one.
    pub fn as_db_error(&self) -> Option<&DbError> {
        match self {
            PgError::Driver(error) => error.as_db_error(),
            _ => None,
        }
    }

    /// The SQLSTATE, when the server sent one.
    pub fn code(&self) -> Option<&SqlState> {
        self.as_db_error().map(DbError::code)
    }

    /// Whether the server answered the statement with an error and the session goes on: the
    /// statement (and, outside a transaction block, its implicit transaction) did not commit.
    /// Only a plain ERROR says so. A FATAL or PANIC ends the session and says nothing of what
    /// was committed before it; so does an error without the non-localized severity field
    /// (a pooler's own errors, such as PgBouncer's "server conn crashed?"), and so does a
    /// connection failure or shutdown code (SQLSTATE classes 08 and 57P), whatever its severity.
    pub fn refused_by_server(&self) -> bool {
        self.as_db_error().is_some_and(|db| {
            let code = db.code().code();
            db.parsed_severity() == Some(Severity::Error)
                && !code.starts_with("08")
                && !code.starts_with("57P")
        })
    }

    /// Whether the server cannot take writes (a standby, or a primary turned read-only): the
    /// statement did not commit, and another connection may reach the primary.
    pub fn read_only_server(&self) -> bool {
        self.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION)
    }

    /// Whether another try may succeed: a serialization failure or a deadlock.
    pub fn retry_reason(&self) -> Option<&'static str> {
        match self.code() {
            Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE => Some("serialization"),
            Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED => Some("deadlock"),
            _ => None,
        }
    }

    /// Whether this is a unique violation of `constraint`.
    pub fn violates(&self, constraint: &str) -> bool {
        self.as_db_error().is_some_and(|db| {
            *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(constraint)
        })
    }
}

impl std::fmt::Display for PgError {
    /// The server's message and SQLSTATE when it sent one (the driver's own text for those is
    /// only "db error"), else the driver's words and their causes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgError::TimedOut => f.write_str("no answer within the operation timeout"),
            PgError::Closed => f.write_str("the connection ended before the answer came"),
            PgError::NotReplicated => f.write_str(
                "the server cancelled the wait for synchronous replication: the change committed \
                 on the primary and may not have reached a standby",
            ),
            PgError::Runtime(error) => write!(f, "cannot start a connection's runtime: {error}"),
            PgError::NotThisSession => f.write_str(
                "the statements this connection prepared are not in its session: behind a \
                 connection pooler in transaction mode (PgBouncer, RDS Proxy) set \
                 prepared_statements to false",
            ),
            PgError::RowCount(rows) => write!(f, "expected one row, the database sent {rows}"),
            PgError::Driver(error) => {
                if let Some(db) = error.as_db_error() {
                    write!(f, "{} (SQLSTATE {})", db.message(), db.code().code())?;
                    let misplaced_statement = *db.code() == SqlState::INVALID_SQL_STATEMENT_NAME
                        || *db.code() == SqlState::DUPLICATE_PSTATEMENT
                        || (*db.code() == SqlState::PROTOCOL_VIOLATION
                            && db.message().contains("bind message"));
                    if misplaced_statement {
                        // Behind a pooler in transaction mode, a statement prepared on one
                        // server connection is looked for on another.
                        f.write_str(
                            "; behind a connection pooler in transaction mode (PgBouncer, RDS \
                             Proxy) set prepared_statements to false",
                        )?;
                    }
                    return Ok(());
                }
                write!(f, "{error}")?;
                let mut cause = std::error::Error::source(error);
                while let Some(inner) = cause {
                    write!(f, ": {inner}")?;
                    cause = inner.source();
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for PgError {}

/// Runs `future` (connecting: there is no connection to drive yet) on `runtime` until it is
/// done or `deadline` passes.
fn bounded<T>(
    runtime: &ConnRuntime,
    deadline: Instant,
    future: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
) -> std::result::Result<T, PgError> {
    let Some(runtime) = &runtime.0 else {
        return Err(PgError::TimedOut);
    };
    let deadline = tokio::time::Instant::from_std(deadline);
    match runtime.block_on(async { tokio::time::timeout_at(deadline, future).await }) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(PgError::Driver(error)),
        Err(_) => Err(PgError::TimedOut),
    }
}

/// A connection's runtime, shut down without waiting when dropped: a name lookup still
/// running on its blocking thread (an unreachable DNS server) must not hold the call.
struct ConnRuntime(Option<Runtime>);

impl Drop for ConnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Whether a notice is the server's warning that a commit's wait for synchronous replication
/// was cancelled (a statement timeout, a cancel request, a shutdown): SQLSTATE 01000 or 57P01
/// at severity WARNING. No statement of the store raises another warning.
fn commit_not_replicated(notice: &DbError) -> bool {
    notice.parsed_severity() == Some(Severity::Warning)
        && (*notice.code() == SqlState::WARNING || *notice.code() == SqlState::ADMIN_SHUTDOWN)
}

type PgConnection =
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>;

/// A connection's runtime and socket. The socket is driven inside the future a call waits on,
/// as the blocking driver does: each message costs no hop between tasks.
struct Driver {
    runtime: ConnRuntime,
    connection: Pin<Box<PgConnection>>,
    /// The connection ended: its socket closed or failed.
    ended: bool,
    /// The server sent [`commit_not_replicated`] since this was last cleared.
    warned: bool,
}

impl Driver {
    /// Runs `future` (a request on this connection's client) while driving the socket, until
    /// it is done, the connection ends, or `deadline` passes.
    fn run<T>(
        &mut self,
        deadline: Instant,
        future: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> std::result::Result<T, PgError> {
        let Some(runtime) = &self.runtime.0 else {
            return Err(PgError::TimedOut);
        };
        let (connection, ended, warned) = (&mut self.connection, &mut self.ended, &mut self.warned);
        let mut future = std::pin::pin!(future);
        let work = std::future::poll_fn(|cx| {
            if !*ended {
                drive(connection.as_mut(), cx, ended, warned);
            }
            match future.as_mut().poll(cx) {
                Poll::Ready(result) => Poll::Ready(result.map_err(PgError::Driver)),
                Poll::Pending if *ended => Poll::Ready(Err(PgError::Closed)),
                Poll::Pending => Poll::Pending,
            }
        });
        let deadline = tokio::time::Instant::from_std(deadline);
        match runtime.block_on(async { tokio::time::timeout_at(deadline, work).await }) {
            Ok(result) => result,
            Err(_) => Err(PgError::TimedOut),
        }
    }
}

/// Reads and writes what the socket has ready: answers go to the requests waiting for them,
/// notices are looked at, the end of the connection is noted.
fn drive(
    mut connection: Pin<&mut PgConnection>,
    cx: &mut Context<'_>,
    ended: &mut bool,
    warned: &mut bool,
) {
    loop {
        match connection.as_mut().poll_message(cx) {
            Poll::Ready(Some(Ok(AsyncMessage::Notice(notice)))) => {
                *warned |= commit_not_replicated(&notice);
            }
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(Some(Err(_)) | None) => {
                *ended = true;
                return;
            }
            Poll::Pending => return,
        }
    }
}

/// One connection: a client, the runtime and socket that carry it (driven only while a call
/// waits), and its prepared statements.
pub(super) struct Conn {
    driver: Driver,
    client: Client,
    prepared: Option<Vec<Statement>>,
    /// When the current call's waits end.
    deadline: Instant,
    in_transaction: bool,
    /// Set when the connection can no longer be trusted (a timeout or a lost session).
    broken: bool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

/// A statement's parameters.
pub(super) type Params<'a> = [&'a (dyn ToSql + Sync)];

impl Conn {
    /// Connects (the first host of a multi-host URL that fits its `target_session_attrs`) and
    /// prepares the statements unless the settings say not to, all before `deadline`.
    pub fn open(settings: &Settings, deadline: Instant) -> std::result::Result<Conn, PgError> {
        let runtime = ConnRuntime(Some(
            tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
                .map_err(PgError::Runtime)?,
        ));
        let (client, connection) = bounded(&runtime, deadline, settings.config.connect(NoTls))?;
        let mut driver = Driver {
            runtime,
            connection: Box::pin(connection),
            ended: false,
            warned: false,
        };
        let prepared = if settings.prepared {
            let statements = driver.run(deadline, prepare_all(&client))?;
            let held = driver.run(
                deadline,
                client.query_typed("SELECT statement FROM pg_prepared_statements", &[]),
            )?;
            check_prepared(&statements, &held)?;
            Some(statements)
        } else {
            None
        };
        Ok(Conn {
            driver,
            client,
            prepared,
            deadline,
            in_transaction: false,
            broken: false,
        })
    }

    /// Starts a call that must be done by `deadline`.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// Lets the connection read what reached its socket while it sat idle in the pool (the
    /// server's goodbye at a shutdown, the end of the stream after a crash), so a connection
    /// that is already dead is known to be before anything is sent on it. No round trip.
    pub fn catch_up(&mut self) {
        // Twice: the first yield lets the runtime poll the socket and wake the connection's
        // task, the second lets that task run.
        // The yield parks the runtime on its I/O driver once, which notes what the socket has;
        // the socket is then read.
        let soon = Instant::now() + Duration::from_secs(1);
        let _ = self.driver.run(soon, async {
            tokio::task::yield_now().await;
            Ok::<(), tokio_postgres::Error>(())
        });
    }

    /// Whether the connection must not be used again.
    pub fn is_broken(&self) -> bool {
        self.broken || self.driver.ended || self.client.is_closed()
    }

    fn outcome<T>(
        &mut self,
        result: std::result::Result<T, PgError>,
    ) -> std::result::Result<T, PgError> {
        // A warning that arrived while the statement ran (before its answer, on the same
        // socket) turns its success into "committed, maybe not replicated".
        let result = match result {
            Ok(_) if std::mem::take(&mut self.driver.warned) => Err(PgError::NotReplicated),
            other => other,
        };
        if let Err(error) = &result
            && (error.read_only_server()
                || (matches!(
                    error,
                    PgError::Driver(_) | PgError::TimedOut | PgError::Closed
                ) && !error.refused_by_server()))
        {
            // A timeout leaves an answer on its way; a lost session is lost.
            self.broken = true;
        }
        result
    }

    /// The rows of statement `q`.
    pub fn query(&mut self, q: Q, params: &Params<'_>) -> std::result::Result<Vec<Row>, PgError> {
        let result = match &self.prepared {
            Some(statements) => self.driver.run(
                self.deadline,
                self.client.query(&statements[q as usize], params),
            ),
            None => {
                let typed = q.typed(params);
                self.driver
                    .run(self.deadline, self.client.query_typed(q.sql(), &typed))
            }
        };
        self.outcome(result)
    }

    /// The one row of statement `q` (an error when there is not exactly one).
    pub fn query_one(&mut self, q: Q, params: &Params<'_>) -> std::result::Result<Row, PgError> {
        let mut rows = self.query(q, params)?;
        match rows.len() {
            1 => Ok(rows.remove(0)),
            count => Err(PgError::RowCount(count)),
        }
    }

    /// The first row of statement `q`, if any.
    pub fn query_opt(
        &mut self,
        q: Q,
        params: &Params<'_>,
    ) -> std::result::Result<Option<Row>, PgError> {
        Ok(self.query(q, params)?.into_iter().next())
    }

    /// The number of rows statement `q` changed.
    pub fn execute(&mut self, q: Q, params: &Params<'_>) -> std::result::Result<u64, PgError> {
        let result = match &self.prepared {
            Some(statements) => self.driver.run(
                self.deadline,
                self.client.execute(&statements[q as usize], params),
            ),
            None => {
                let typed = q.typed(params);
                self.driver
                    .run(self.deadline, self.client.execute_typed(q.sql(), &typed))
            }
        };
        self.outcome(result)
    }

    /// Statements without parameters, in one round trip (the simple query protocol).
    pub fn batch(&mut self, sql: &str) -> std::result::Result<(), PgError> {
        let result = self
            .driver
            .run(self.deadline, self.client.batch_execute(sql));
        self.outcome(result)
    }

    /// Opens a transaction block that the server rolls back if it sits idle for longer than
    /// `idle_limit` (so a block whose COMMIT was lost does not hold its locks for long).
    pub fn begin(&mut self, idle_limit: Duration) -> std::result::Result<(), PgError> {
        self.begin_with("BEGIN", idle_limit)
    }

    /// [`Conn::begin`] with another `BEGIN` statement (an isolation level, read only).
    pub fn begin_with(
        &mut self,
        begin: &str,
        idle_limit: Duration,
    ) -> std::result::Result<(), PgError> {
        self.in_transaction = true;
        self.batch(&format!(
            "{begin}; SET LOCAL idle_in_transaction_session_timeout = {}",
            idle_limit.as_millis().max(1)
        ))
    }

    /// Commits the open transaction block.
    pub fn commit(&mut self) -> std::result::Result<(), PgError> {
        let result = self.batch("COMMIT");
        self.in_transaction = false;
        result
    }

    /// Rolls the open transaction block back, if one is open. A connection that cannot is
    /// not used again (the server rolls back when it goes).
    pub fn end_transaction(&mut self) {
        if self.in_transaction {
            self.in_transaction = false;
            if self.batch("ROLLBACK").is_err() {
                self.broken = true;
            }
        }
    }
}

/// Checks that the session holds the statements this connection prepared and nothing else.
/// Behind a pooler in transaction mode the prepares land on server connections shared with
/// other clients, whose statements carry the same names (a name might then run another
/// statement): the session holds others' statements, or not all of ours, and the error names
/// the setting.
fn check_prepared(statements: &[Statement], held: &[Row]) -> std::result::Result<(), PgError> {
    let mut texts = std::collections::HashSet::with_capacity(held.len());
    for row in held {
        texts.insert(row.try_get::<_, &str>(0).map_err(PgError::Driver)?);
    }
    let only_ours =
        held.len() == statements.len() && Q::ALL.iter().all(|q| texts.contains(q.sql()));
    if only_ours {
        Ok(())
    } else {
        Err(PgError::NotThisSession)
    }
}

/// Prepares every statement of [`Q`], in order.
async fn prepare_all(
    client: &Client,
) -> std::result::Result<Vec<Statement>, tokio_postgres::Error> {
    let mut statements = Vec::with_capacity(Q::ALL.len());
    for q in Q::ALL {
        statements.push(client.prepare_typed(q.sql(), q.types()).await?);
    }
    Ok(statements)
}

/// The pool's view of connections.
pub(super) struct Manager {
    pub settings: Arc<Settings>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = PgError;

    fn connect(&self) -> std::result::Result<Conn, PgError> {
        Conn::open(&self.settings, self.settings.deadline())
    }

    fn is_valid(&self, conn: &mut Conn) -> std::result::Result<(), PgError> {
        conn.set_deadline(self.settings.deadline());
        conn.batch("")
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.end_transaction();
        conn.is_broken()
    }
}
