//! `fundcore.Engine`: the core engine behind a thread-safe Python object.
//!
//! Every method converts its arguments with the GIL held, then runs the core call with the GIL
//! released (`Python::detach`), so other Python threads keep running while the store works.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use fundcore::{
    Actor, Channel, ClientId, Config, ContactChanges, DeliveryError, Durability, Error,
    FundChanges, HistoryFilter, Invalid, Locale, Notifier, StoreLocation, TransactionId,
    TransactionKind,
};
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};

use crate::convert::{ToPy, amount_arg, count_arg, timestamp_arg};
use crate::errors::{Failure, errors_module};
use crate::records::{
    AuditEventPage, Client, ClientPage, DispatchReport, Fund, HistoryPage, LedgerReport,
    NotificationPage, OutboxState, Statement, Subscription, Transaction,
};

/// The fund-subscription engine over an embedded store or a PostgreSQL database.
///
/// `Engine(path)` opens (or creates and seeds) the embedded store in directory `path`;
/// `Engine()` opens a temporary embedded store that is deleted when the engine is closed.
/// `Engine("postgresql://user:password@host:5432/dbname")` (or `postgres://…`) connects to a
/// PostgreSQL database instead, creating or upgrading fundcore's tables and seeding a new
/// database; any number of engines in any number of processes and hosts may share it.
///
/// A store directory can be open in one engine of one process at a time: it stays locked
/// until `close()` is called, the `with` block ends, or the engine object is garbage-collected
/// (`del engine` when nothing else refers to it). Reopening the same path before that, or
/// opening one that another process holds, raises `StorageError` naming the path.
///
/// The engine is safe to share between threads: every store operation releases the GIL and
/// the core serializes what must be serialized (no overdraft, no double refund).
///
/// An engine belongs to the process that opened it. In a child created by `fork()`
/// (`multiprocessing` with the fork start method, gunicorn `--preload`, Celery prefork) every
/// call on an inherited engine, of either store, raises `StorageError` at once: open the
/// engine after the fork, in each child (e.g. in a post-fork hook), and with an embedded store
/// none in the parent before forking (a child of a process that opened one cannot open one
/// either).
///
/// Keyword settings (`None` keeps the core's default, the module's `DEFAULT_*` constant); a
/// setting of the other kind of store raises `ValidationError` (`VALIDATION_ERROR`, naming it):
///
/// - `initial_balance`: balance of new clients (`Decimal`, `int` or `str`; default
///   `DEFAULT_INITIAL_BALANCE`). With `funds`, written when the store is created and kept by
///   the store afterwards.
/// - `funds`: the catalogue as a list of `fundcore.Fund` (default: the five funds of the spec).
/// - `locale`: `"es"` (default) or `"en"`, for error messages and notifications.
/// - `notify_on_cancel`: also notify cancellations (default `True`).
/// - `max_attempts`: delivery attempts before a notification is `failed` (default
///   `DEFAULT_MAX_ATTEMPTS`).
/// - `retry_base_delay_ms`, `retry_max_delay_ms`: first retry delay, doubled per attempt, and
///   its cap (defaults `DEFAULT_RETRY_BASE_DELAY_MS` and `DEFAULT_RETRY_MAX_DELAY_MS`).
/// - `durability`, embedded store only: `"every_commit"` (default: each operation is on disk
///   before it returns) or `"periodic"` (flushed every `flush_interval_ms`, default
///   `DEFAULT_FLUSH_INTERVAL_MS`; call `flush()` to force). A PostgreSQL commit is durable when
///   it returns.
/// - `cache_capacity_bytes`, embedded store only: the store's page cache (default
///   `DEFAULT_CACHE_CAPACITY_BYTES`).
/// - `pool_size`, PostgreSQL only: database connections the engine keeps open (default
///   `DEFAULT_POOL_SIZE`, at least 1); a call that finds none free waits for one.
/// - `operation_timeout_ms`, PostgreSQL only: the longest a call waits on the network (default
///   `DEFAULT_OPERATION_TIMEOUT_MS`; from `MIN_OPERATION_TIMEOUT_MS` to
///   `MAX_OPERATION_TIMEOUT_MS`): for a connection, a pooled connection, the database's answer
///   and, when a reply was lost, for learning whether the change committed. Past it a read
///   raises `StorageError` and a change whose outcome is not known `OutcomeUnknownError`.
/// - `prepared_statements`, PostgreSQL only: each connection prepares its statements once
///   (default `True`, the fastest); `False` sends each statement unprepared, as a pooler in
///   transaction mode (PgBouncer before 1.21, RDS Proxy) needs.
///
/// Use it as a context manager to release the store deterministically:
///
/// ```python
/// with fundcore.Engine("data/fundcore") as eng:
///     ...
/// ```
#[pyclass(frozen, module = "fundcore")]
pub struct Engine {
    inner: RwLock<Option<fundcore::Engine>>,
    path: Option<PathBuf>,
    locale: Locale,
}

/// A fund id argument: any `int`; one outside the core's id range names no fund, which the
/// core says (`FUND_NOT_FOUND` with the id as given).
fn fund_arg(value: &Bound<'_, PyAny>) -> Result<u32, Failure> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        let type_name = value.get_type().name()?;
        return Err(Failure::Py(PyTypeError::new_err(format!(
            "fund_id must be an int, not {type_name}"
        ))));
    }
    // `int(value)` first: an `int` subclass (an `(int, Enum)` member) may print as a name.
    let exact = value.py().get_type::<PyInt>().call1((value,))?;
    Ok(fundcore::parse_fund_id(&exact.str()?.to_cow()?)?)
}

/// Who makes an administrative change.
fn actor_of(name: String, request_id: Option<String>) -> Actor {
    Actor { name, request_id }
}

/// `path` as the engine shows it: a directory as given, a database URL without credentials.
fn shown_path(path: &std::path::Path) -> String {
    StoreLocation::parse(&path.to_string_lossy()).to_string()
}

impl Engine {
    /// A handle on the open core engine (a cheap clone); `ValueError` once closed, and
    /// `StorageError` in a process other than the one that opened it (a child after `fork()`).
    fn engine(&self, py: Python<'_>) -> PyResult<fundcore::Engine> {
        let engine = self
            .inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| PyValueError::new_err("operation on a closed fundcore.Engine"))?;
        engine.check_process().map_err(|err| self.fail(py, err))?;
        Ok(engine)
    }

    fn fail(&self, py: Python<'_>, failure: impl Into<Failure>) -> PyErr {
        failure.into().into_pyerr(py, self.locale)
    }

    /// Runs `work` on the core engine with the GIL released.
    fn run<T, F>(&self, py: Python<'_>, work: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(&fundcore::Engine) -> fundcore::Result<T> + Send,
    {
        let engine = self.engine(py)?;
        py.detach(|| work(&engine))
            .map_err(|err| self.fail(py, err))
    }

    /// A client id to look up: malformed text names no client (`CLIENT_NOT_FOUND`).
    fn client_id(&self, py: Python<'_>, text: &str) -> PyResult<ClientId> {
        ClientId::from_str(text).map_err(|err| self.fail(py, err.into_lookup_error()))
    }
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (
        path = None,
        *,
        initial_balance = None,
        funds = None,
        locale = "es",
        notify_on_cancel = true,
        max_attempts = None,
        retry_base_delay_ms = None,
        retry_max_delay_ms = None,
        durability = "every_commit",
        flush_interval_ms = None,
        cache_capacity_bytes = None,
        pool_size = None,
        operation_timeout_ms = None,
        prepared_statements = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        path: Option<PathBuf>,
        initial_balance: Option<&Bound<'_, PyAny>>,
        funds: Option<Vec<Bound<'_, PyAny>>>,
        locale: &str,
        notify_on_cancel: bool,
        max_attempts: Option<u32>,
        retry_base_delay_ms: Option<u64>,
        retry_max_delay_ms: Option<u64>,
        durability: &str,
        flush_interval_ms: Option<u64>,
        cache_capacity_bytes: Option<u64>,
        pool_size: Option<i128>,
        operation_timeout_ms: Option<i128>,
        prepared_statements: Option<bool>,
    ) -> PyResult<Self> {
        let location = path
            .as_deref()
            .map(|path| StoreLocation::parse(&path.to_string_lossy()));
        let locale_value = Locale::from_str(locale);
        let error_locale = *locale_value.as_ref().unwrap_or(&Locale::default());
        let build = || -> Result<Config, Failure> {
            let funds = funds
                .map(|funds| {
                    funds
                        .iter()
                        .map(|item| {
                            item.cast::<Fund>()
                                .map(|fund| fund.get().0.clone())
                                .map_err(|_| {
                                    PyTypeError::new_err("funds must be a list of fundcore.Fund")
                                })
                        })
                        .collect::<PyResult<Vec<_>>>()
                })
                .transpose()?;
            let durability = Durability::from_name(durability, flush_interval_ms)?;
            let pool_size = pool_size
                .map(|size| {
                    u32::try_from(size).map_err(|_| Error::Validation {
                        field: "pool_size",
                        problem: Invalid::Config,
                    })
                })
                .transpose()?;
            // A negative or huge number is out of range like any other (the core's check).
            let operation_timeout = operation_timeout_ms
                .map(|millis| {
                    u64::try_from(millis)
                        .map(Duration::from_millis)
                        .map_err(|_| Error::Validation {
                            field: "operation_timeout",
                            problem: Invalid::Config,
                        })
                })
                .transpose()?;
            let builder = Config::builder()
                .locale(locale_value.clone()?)
                .notify_on_cancel(notify_on_cancel)
                .initial_balance(
                    initial_balance
                        .map(|balance| amount_arg(balance, "initial_balance"))
                        .transpose()?,
                )
                .funds(funds)
                .max_attempts(max_attempts)
                .retry_base_delay(retry_base_delay_ms.map(Duration::from_millis))
                .retry_max_delay(retry_max_delay_ms.map(Duration::from_millis))
                .durability(durability)
                .cache_capacity_bytes(cache_capacity_bytes)
                .pool_size(pool_size)
                .operation_timeout(operation_timeout)
                .prepared_statements(prepared_statements);
            // A temporary store is an embedded one.
            let temporary = StoreLocation::Embedded(PathBuf::new());
            Ok(builder.build_for(location.as_ref().unwrap_or(&temporary))?)
        };
        let config = build().map_err(|failure| failure.into_pyerr(py, error_locale))?;
        let locale = config.locale;
        let opened = py.detach(|| match &location {
            Some(StoreLocation::Postgres(url)) => fundcore::Engine::connect(url, config),
            Some(StoreLocation::Embedded(path)) => fundcore::Engine::open(path, config),
            None => fundcore::Engine::open_temporary(config),
        });
        let engine = opened.map_err(|err| Failure::Core(err).into_pyerr(py, locale))?;
        Ok(Engine {
            inner: RwLock::new(Some(engine)),
            path,
            locale,
        })
    }

    /// The store directory; for a PostgreSQL database its URL without the credentials
    /// (`postgresql://…@host:5432/dbname`), so it is safe to log; `None` for a temporary store.
    #[getter]
    fn path(&self) -> Option<String> {
        self.path.as_deref().map(shown_path)
    }

    /// Language of error messages and notifications: `"es"` or `"en"`.
    #[getter]
    fn locale(&self) -> &'static str {
        self.locale.as_str()
    }

    /// Balance of a newly registered client (fixed when the store was created).
    #[getter]
    fn initial_balance<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.engine(py)?.initial_balance().to_py(py)
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// Closes the engine and releases the store directory (a temporary store is deleted).
    /// Calls already running finish first; later calls raise `ValueError`. Idempotent.
    fn close(&self, py: Python<'_>) {
        let taken = self
            .inner
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        py.detach(move || drop(taken));
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { " closed" } else { "" };
        match &self.path {
            // A database URL is shown without its credentials.
            Some(path) => format!(
                "<fundcore.Engine path='{}' locale='{}'{state}>",
                shown_path(path),
                self.locale.as_str()
            ),
            None => format!(
                "<fundcore.Engine temporary locale='{}'{state}>",
                self.locale.as_str()
            ),
        }
    }

    /// The fund catalogue, by id.
    fn funds(&self, py: Python<'_>) -> PyResult<Vec<Fund>> {
        self.run(py, |engine| engine.funds())
            .map(|funds| funds.into_iter().map(Fund).collect())
    }

    /// Adds a fund to the catalogue (active), recorded in the audit trail with `actor` and
    /// `request_id`. Raises `ConflictError` (`FUND_ALREADY_EXISTS`) for a taken id and
    /// `ValidationError` for a bad name, minimum or category.
    #[pyo3(signature = (fund_id, name, minimum, category, *, actor, request_id = None))]
    #[allow(clippy::too_many_arguments)]
    fn create_fund(
        &self,
        py: Python<'_>,
        fund_id: &Bound<'_, PyAny>,
        name: &str,
        minimum: &Bound<'_, PyAny>,
        category: &str,
        actor: String,
        request_id: Option<String>,
    ) -> PyResult<Fund> {
        let convert = || -> Result<_, Failure> {
            let id = fund_arg(fund_id)?;
            let minimum = amount_arg(minimum, "minimum")?;
            let category: fundcore::Category = category.parse()?;
            Ok((id, minimum, category))
        };
        let (id, minimum, category) = convert().map_err(|f| self.fail(py, f))?;
        let actor = actor_of(actor, request_id);
        self.run(py, |engine| {
            engine.create_fund(id, name, minimum, category, &actor)
        })
        .map(Fund)
    }

    /// Changes a fund's `name`, `minimum` or `active` flag (the ones given), recorded in the
    /// audit trail. A new minimum applies to later subscriptions; an inactive fund refuses new
    /// subscriptions and still allows cancellations. Raises `NotFoundError` (`FUND_NOT_FOUND`).
    #[pyo3(signature = (fund_id, *, name = None, minimum = None, active = None, actor, request_id = None))]
    #[allow(clippy::too_many_arguments)]
    fn update_fund(
        &self,
        py: Python<'_>,
        fund_id: &Bound<'_, PyAny>,
        name: Option<String>,
        minimum: Option<&Bound<'_, PyAny>>,
        active: Option<bool>,
        actor: String,
        request_id: Option<String>,
    ) -> PyResult<Fund> {
        let convert = || -> Result<_, Failure> {
            let id = fund_arg(fund_id)?;
            let minimum = minimum
                .map(|minimum| amount_arg(minimum, "minimum"))
                .transpose()?;
            Ok((id, minimum))
        };
        let (id, minimum) = convert().map_err(|f| self.fail(py, f))?;
        let changes = FundChanges {
            name,
            minimum,
            active,
        };
        let actor = actor_of(actor, request_id);
        self.run(py, |engine| engine.update_fund(id, &changes, &actor))
            .map(Fund)
    }

    /// Changes a client's `name`, `email`, `phone` or `channel` (the ones given), validated as
    /// in `register_client` and recorded in the audit trail. Notifications created afterwards
    /// use the new channel and recipient. Raises `NotFoundError` (`CLIENT_NOT_FOUND`).
    #[pyo3(signature = (client_id, *, name = None, email = None, phone = None, channel = None, actor, request_id = None))]
    #[allow(clippy::too_many_arguments)]
    fn update_client(
        &self,
        py: Python<'_>,
        client_id: &str,
        name: Option<String>,
        email: Option<String>,
        phone: Option<String>,
        channel: Option<&str>,
        actor: String,
        request_id: Option<String>,
    ) -> PyResult<Client> {
        let id = self.client_id(py, client_id)?;
        let channel = channel
            .map(Channel::from_str)
            .transpose()
            .map_err(|err| self.fail(py, err))?;
        let changes = ContactChanges {
            name,
            email,
            phone,
            channel,
        };
        let actor = actor_of(actor, request_id);
        self.run(py, |engine| engine.update_client(id, &changes, &actor))
            .map(Client)
    }

    /// A page of clients, newest first (`limit` 1..=MAX_PAGE), older than the client `before`.
    #[pyo3(signature = (limit = 50, before = None))]
    fn clients(&self, py: Python<'_>, limit: i128, before: Option<&str>) -> PyResult<ClientPage> {
        let before = before
            .map(|text| ClientId::from_str(text).map_err(Error::from))
            .transpose()
            .map_err(|err| self.fail(py, err.on_field("before")))?;
        let limit = count_arg(limit);
        self.run(py, |engine| engine.clients(limit, before))
            .map(ClientPage)
    }

    /// A page of the audit trail, newest first (`limit` 1..=MAX_PAGE), older than the event
    /// `before`.
    #[pyo3(signature = (limit = 50, before = None))]
    fn audit_events(
        &self,
        py: Python<'_>,
        limit: i128,
        before: Option<&str>,
    ) -> PyResult<AuditEventPage> {
        let before = before
            .map(|text| fundcore::AuditEventId::from_str(text).map_err(Error::from))
            .transpose()
            .map_err(|err| self.fail(py, err.on_field("before")))?;
        let limit = count_arg(limit);
        self.run(py, |engine| engine.audit_events(limit, before))
            .map(AuditEventPage)
    }

    /// One fund. Raises `NotFoundError` (`FUND_NOT_FOUND`).
    fn fund(&self, py: Python<'_>, fund_id: &Bound<'_, PyAny>) -> PyResult<Fund> {
        let id = fund_arg(fund_id).map_err(|f| self.fail(py, f))?;
        self.run(py, |engine| engine.fund(id)).map(Fund)
    }

    /// Registers a client with the initial balance. `channel` is `"email"` or `"sms"`.
    ///
    /// With `client_id` (a UUIDv7 the caller made for this registration, e.g. with
    /// `new_client_id()`), the id is the registration's idempotency key: with an id already
    /// registered, the client is returned as stored and nothing changes, so the call can be
    /// repeated after `OutcomeUnknownError` or a crash.
    ///
    /// Raises `ValidationError` (`VALIDATION_ERROR`, with `field`).
    #[pyo3(signature = (name, email, phone, channel, *, client_id = None))]
    fn register_client(
        &self,
        py: Python<'_>,
        name: &str,
        email: &str,
        phone: &str,
        channel: &str,
        client_id: Option<&str>,
    ) -> PyResult<Client> {
        let channel = Channel::from_str(channel).map_err(|err| self.fail(py, err))?;
        let id = client_id
            .map(|text| {
                ClientId::from_str(text).map_err(|err| self.fail(py, fundcore::Error::from(err)))
            })
            .transpose()?;
        self.run(py, |engine| match id {
            Some(id) => engine.register_client_with_id(id, name, email, phone, channel),
            None => engine.register_client(name, email, phone, channel),
        })
        .map(Client)
    }

    /// One client. Raises `NotFoundError` (`CLIENT_NOT_FOUND`).
    fn client(&self, py: Python<'_>, client_id: &str) -> PyResult<Client> {
        let id = self.client_id(py, client_id)?;
        self.run(py, |engine| engine.client(id)).map(Client)
    }

    /// Subscribes a client to a fund for `amount` (`Decimal`, `int` or `str`; the fund's
    /// minimum when `None`). With `idempotency_key`, a repeated identical call returns the
    /// original transaction and changes nothing.
    ///
    /// Raises `ValidationError` (`VALIDATION_ERROR`, `BELOW_MINIMUM`), `NotFoundError`,
    /// `InsufficientBalanceError`, `ConflictError` (`ALREADY_SUBSCRIBED`, `FUND_INACTIVE`,
    /// `IDEMPOTENCY_KEY_REUSED`), `StorageError`; `TypeError` for a `float` amount.
    #[pyo3(signature = (client_id, fund_id, amount = None, *, idempotency_key = None))]
    fn subscribe(
        &self,
        py: Python<'_>,
        client_id: &str,
        fund_id: &Bound<'_, PyAny>,
        amount: Option<&Bound<'_, PyAny>>,
        idempotency_key: Option<&str>,
    ) -> PyResult<Transaction> {
        let client = self.client_id(py, client_id)?;
        let fund = fund_arg(fund_id).map_err(|f| self.fail(py, f))?;
        let amount = amount
            .map(|value| amount_arg(value, "amount"))
            .transpose()
            .map_err(|f| self.fail(py, f))?;
        self.run(py, |engine| {
            engine.subscribe(client, fund, amount, idempotency_key)
        })
        .map(Transaction)
    }

    /// Cancels the client's active subscription to a fund, refunding the subscribed amount.
    ///
    /// Raises `ConflictError` (`NOT_SUBSCRIBED`, `IDEMPOTENCY_KEY_REUSED`), `NotFoundError`,
    /// `ValidationError`, `StorageError`.
    #[pyo3(signature = (client_id, fund_id, *, idempotency_key = None))]
    fn cancel(
        &self,
        py: Python<'_>,
        client_id: &str,
        fund_id: &Bound<'_, PyAny>,
        idempotency_key: Option<&str>,
    ) -> PyResult<Transaction> {
        let client = self.client_id(py, client_id)?;
        let fund = fund_arg(fund_id).map_err(|f| self.fail(py, f))?;
        self.run(py, |engine| engine.cancel(client, fund, idempotency_key))
            .map(Transaction)
    }

    /// The client's active subscriptions, by fund id.
    fn subscriptions(&self, py: Python<'_>, client_id: &str) -> PyResult<Vec<Subscription>> {
        let id = self.client_id(py, client_id)?;
        self.run(py, |engine| engine.subscriptions(id))
            .map(|items| items.into_iter().map(Subscription).collect())
    }

    /// The client's transactions, newest first: at most `limit` (1 to `MAX_PAGE`), all older
    /// than the transaction id `before` when given (an exclusive cursor for the next page).
    ///
    /// Raises `ValidationError` for a bad `limit` or a `before` that is not a transaction id,
    /// `NotFoundError` for an unknown client.
    #[pyo3(signature = (client_id, limit = 50, before = None))]
    fn history(
        &self,
        py: Python<'_>,
        client_id: &str,
        limit: i128,
        before: Option<&str>,
    ) -> PyResult<Vec<Transaction>> {
        let id = self.client_id(py, client_id)?;
        let limit = count_arg(limit);
        let before = before
            .map(TransactionId::parse_cursor)
            .transpose()
            .map_err(|err| self.fail(py, err))?;
        self.run(py, |engine| engine.history(id, limit, before))
            .map(|items| items.into_iter().map(Transaction).collect())
    }

    /// A page of the client's history, as `history()`, with the cursor of the following page:
    /// `page.items` (newest first) and `page.next` (`None` on the last page, also when it is
    /// exactly full). `to_dict()` gives `{"items": [...], "next": ...}`.
    ///
    /// `kind` (`"subscription"` or `"cancellation"`) and `fund_id` list only the matching
    /// transactions, paged by the same cursor. A `fund_id` that names no fund raises
    /// `NotFoundError` (`FUND_NOT_FOUND`); a `kind` of another name `ValidationError`.
    #[pyo3(signature = (client_id, limit = 50, before = None, *, kind = None, fund_id = None))]
    fn history_page(
        &self,
        py: Python<'_>,
        client_id: &str,
        limit: i128,
        before: Option<&str>,
        kind: Option<&str>,
        fund_id: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<HistoryPage> {
        let id = self.client_id(py, client_id)?;
        let limit = count_arg(limit);
        let before = before
            .map(TransactionId::parse_cursor)
            .transpose()
            .map_err(|err| self.fail(py, err))?;
        let kind = kind
            .map(TransactionKind::parse)
            .transpose()
            .map_err(|err| self.fail(py, err))?;
        let fund_id = fund_id
            .map(fund_arg)
            .transpose()
            .map_err(|f| self.fail(py, f))?;
        let filter = HistoryFilter { kind, fund_id };
        self.run(py, |engine| {
            engine.history_page_filtered(id, limit, before, &filter)
        })
        .map(HistoryPage)
    }

    /// The client's statement for `start <= created_at < end` (tz-aware `datetime`s; a naive
    /// one raises `ValueError`): where the account stood at `start` (`opening_balance`,
    /// `opening_invested`), each transaction of the range oldest first with the balance and
    /// the invested amount (active subscriptions) right after it, and where it stood at `end`.
    /// From the client's `created_at` to now it charts the balance and the invested amount.
    ///
    /// Raises `ValidationError` when `start` is after `end`, `NotFoundError` for an unknown
    /// client.
    fn statement(
        &self,
        py: Python<'_>,
        client_id: &str,
        start: &Bound<'_, PyAny>,
        end: &Bound<'_, PyAny>,
    ) -> PyResult<Statement> {
        let id = self.client_id(py, client_id)?;
        let from = timestamp_arg(start, "start").map_err(|f| self.fail(py, f))?;
        let to = timestamp_arg(end, "end").map_err(|f| self.fail(py, f))?;
        self.run(py, |engine| engine.statement(id, from, to))
            .map(Statement)
    }

    /// A page of the failed notifications of every client, newest first (`limit`
    /// 1..=MAX_PAGE), older than the notification id `before`: each with its `last_error`,
    /// `attempts`, `client_id`, `channel` and `recipient`. `retry_failed_notifications()`
    /// queues them again. Raises `ValidationError` for a bad `limit` or `before`.
    #[pyo3(signature = (limit = 50, before = None))]
    fn failed_notifications(
        &self,
        py: Python<'_>,
        limit: i128,
        before: Option<&str>,
    ) -> PyResult<NotificationPage> {
        let before = before
            .map(|text| fundcore::NotificationId::from_str(text).map_err(Error::from))
            .transpose()
            .map_err(|err| self.fail(py, err.on_field("before")))?;
        let limit = count_arg(limit);
        self.run(py, |engine| engine.failed_notifications(limit, before))
            .map(NotificationPage)
    }

    /// Checks the ledger of the open store while it serves calls (a `LedgerReport`): every
    /// client's balance, replay, subscriptions, outbox entries and idempotency records, each
    /// client read whole. On the embedded store the outbox queues are not cross-checked (that
    /// needs the store stopped: `fundcore verify`). Reads every client: an operator's call.
    fn verify_ledger(&self, py: Python<'_>) -> PyResult<LedgerReport> {
        self.run(py, |engine| engine.verify_ledger())
            .map(LedgerReport)
    }

    /// One transaction by id. Raises `NotFoundError` (`TRANSACTION_NOT_FOUND`).
    fn transaction(&self, py: Python<'_>, transaction_id: &str) -> PyResult<Transaction> {
        let id = TransactionId::from_str(transaction_id)
            .map_err(|err| self.fail(py, err.into_lookup_error()))?;
        self.run(py, |engine| engine.transaction(id))
            .map(Transaction)
    }

    /// The client's outbox entries, newest first, whatever their status.
    fn notifications(
        &self,
        py: Python<'_>,
        client_id: &str,
    ) -> PyResult<Vec<crate::records::Notification>> {
        let id = self.client_id(py, client_id)?;
        self.run(py, |engine| engine.notifications(id))
            .map(|items| {
                items
                    .into_iter()
                    .map(crate::records::Notification)
                    .collect()
            })
    }

    /// Delivers up to `limit` due pending notifications through `notifier`, any object with
    /// a `send(notification)` method, called on this thread. Returning normally means
    /// delivered; raising `fundcore.PermanentDeliveryError` fails the entry at once; any other
    /// exception is a retryable failure (retried later with exponential backoff, `failed`
    /// after `max_attempts`). The exception text is kept in `Notification.last_error`.
    ///
    /// `send` must be a plain function that delivers before it returns. An awaitable return
    /// value (the coroutine of an `async def send`) is not awaited: it counts as a retryable
    /// failure whose `last_error` says so, the entry stays pending, and a coroutine is closed.
    ///
    /// A `KeyboardInterrupt` or `SystemExit` raised by `send` stops the run: the remaining
    /// due entries of this run count as retryable failures and the exception is re-raised.
    #[pyo3(signature = (notifier, limit = 100))]
    fn dispatch_notifications(
        &self,
        py: Python<'_>,
        notifier: &Bound<'_, PyAny>,
        limit: i128,
    ) -> PyResult<DispatchReport> {
        let send_ok = notifier
            .getattr("send")
            .map(|send| send.is_callable())
            .unwrap_or(false);
        if !send_ok {
            let type_name = notifier.get_type().name()?;
            return Err(PyTypeError::new_err(format!(
                "notifier must have a send(notification) method; {type_name} has none"
            )));
        }
        let limit = count_arg(limit);
        let adapter = PyNotifier {
            target: notifier.clone().unbind(),
            interrupted: Mutex::new(None),
        };
        let report = self.run(py, |engine| engine.dispatch_notifications(&adapter, limit));
        if let Some(interruption) = adapter
            .interrupted
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
        {
            return Err(interruption);
        }
        report.map(DispatchReport)
    }

    /// Puts up to `limit` failed notifications back in the queue, due now, with their attempt
    /// count reset. Returns how many were requeued.
    #[pyo3(signature = (limit = 100))]
    fn retry_failed_notifications(&self, py: Python<'_>, limit: i128) -> PyResult<usize> {
        let limit = count_arg(limit);
        self.run(py, |engine| engine.retry_failed_notifications(limit))
    }

    /// How the outbox stands: pending, failed and delivered entries, and when the oldest
    /// pending one was written and how long it has waited (an `OutboxState`). On PostgreSQL,
    /// the outbox of every process sharing the database.
    fn outbox_state(&self, py: Python<'_>) -> PyResult<OutboxState> {
        self.run(py, |engine| engine.outbox_state())
            .map(OutboxState)
    }

    /// Makes everything acknowledged so far durable (useful with `durability="periodic"`).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |engine| engine.flush())
    }

    /// Writes a consistent copy of the embedded store into the new directory `dest` while the
    /// engine serves calls (the GIL is released). Every change acknowledged before the call is
    /// in the copy, every change wholly in or out; the copy opens as a store of its own
    /// (`fundcore.Engine(dest)`) and passes `fundcore verify`. A subscribe or cancel waits at
    /// most for one client's copy; administrative changes wait for the backup. Raises
    /// `ValidationError` (field `dest`) when `dest` exists (nothing is overwritten),
    /// `StorageError` naming the path when it cannot be written, and `StorageError` on a
    /// PostgreSQL store, which is backed up with `pg_dump` (docs/stores.md).
    fn backup(&self, py: Python<'_>, dest: PathBuf) -> PyResult<()> {
        self.run(py, |engine| engine.backup(&dest))
    }
}

/// A Python notifier seen through the core's `Notifier` port. The core calls `send` on the
/// dispatching thread with the GIL released; the call attaches to the interpreter again.
struct PyNotifier {
    target: Py<PyAny>,
    /// A `KeyboardInterrupt`/`SystemExit` raised by `send`, re-raised after the run.
    interrupted: Mutex<Option<PyErr>>,
}

impl PyNotifier {
    /// `send` returned normally: delivered, unless it returned an awaitable. The coroutine of
    /// an `async def send` (or any awaitable) has not run, so counting it as delivered would
    /// lose the notification; it is refused as a retryable failure instead of being awaited
    /// (dispatch may run inside a running event loop, where blocking on it would deadlock),
    /// and a coroutine is closed so Python does not warn that it was never awaited.
    fn delivered_unless_awaitable(returned: &Bound<'_, PyAny>) -> Result<(), DeliveryError> {
        if returned.is_none() {
            return Ok(());
        }
        let inspected = || -> PyResult<bool> {
            let inspect = returned.py().import("inspect")?;
            if !inspect
                .call_method1("isawaitable", (returned,))?
                .is_truthy()?
            {
                return Ok(false);
            }
            let closable = inspect
                .call_method1("iscoroutine", (returned,))?
                .is_truthy()?
                || inspect
                    .call_method1("isgenerator", (returned,))?
                    .is_truthy()?;
            if closable {
                returned.call_method0("close")?;
            }
            Ok(true)
        };
        match inspected() {
            Ok(false) => Ok(()),
            Ok(true) => {
                let type_name = returned
                    .get_type()
                    .name()
                    .map(|name| name.to_string())
                    .unwrap_or_else(|_| "awaitable".to_owned());
                Err(DeliveryError::Retryable(format!(
                    "TypeError: send returned an awaitable ({type_name}), so nothing was \
                     delivered; send must be a plain function (not async def) that delivers \
                     before it returns"
                )))
            }
            Err(err) => Err(DeliveryError::Retryable(format!(
                "could not check what send returned: {}",
                Self::describe(returned.py(), &err)
            ))),
        }
    }

    fn describe(py: Python<'_>, err: &PyErr) -> String {
        let value = err.value(py);
        let type_name = value
            .get_type()
            .name()
            .map(|name| name.to_string())
            .unwrap_or_else(|_| "Exception".to_owned());
        match value.str().map(|text| text.to_string()) {
            Ok(text) if !text.is_empty() => format!("{type_name}: {text}"),
            _ => type_name,
        }
    }
}

impl Notifier for PyNotifier {
    fn send(&self, notification: &fundcore::Notification) -> Result<(), DeliveryError> {
        Python::attach(|py| {
            let mut interrupted = self
                .interrupted
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if interrupted.is_some() {
                return Err(DeliveryError::Retryable("dispatch interrupted".to_owned()));
            }
            let arg = crate::records::Notification(notification.clone());
            let err = match self.target.call_method1(py, "send", (arg,)) {
                Ok(returned) => return Self::delivered_unless_awaitable(returned.bind(py)),
                Err(err) => err,
            };
            let permanent = errors_module(py)
                .and_then(|module| module.getattr("PermanentDeliveryError"))
                .map(|class| err.value(py).is_instance(&class).unwrap_or(false))
                .unwrap_or(false);
            if permanent {
                let text = err
                    .value(py)
                    .str()
                    .map(|text| text.to_string())
                    .unwrap_or_default();
                let text = if text.is_empty() {
                    Self::describe(py, &err)
                } else {
                    text
                };
                return Err(DeliveryError::Permanent(text));
            }
            let reason = Self::describe(py, &err);
            if !err.is_instance_of::<PyException>(py) {
                // KeyboardInterrupt, SystemExit, ...: stop calling Python, re-raise later.
                *interrupted = Some(err);
            }
            Err(DeliveryError::Retryable(reason))
        })
    }
}
