//! Python bindings for fundcore: the native part (`fundcore._fundcore`) of the `fundcore`
//! Python package. This crate only converts values and maps errors; every business rule lives
//! in the core crate.

mod convert;
mod engine;
mod errors;
mod recorder;
mod records;

use std::str::FromStr;

use pyo3::prelude::*;

/// Formats an amount for people, the Colombian way: `format_cop(Decimal("75000"))` is
/// `"COP $75.000"`. Accepts `Decimal`, `int` or `str`.
#[pyfunction]
fn format_cop(py: Python<'_>, amount: &Bound<'_, PyAny>) -> PyResult<String> {
    convert::amount_arg(amount, "amount")
        .map(fundcore::format_cop)
        .map_err(|failure| failure.into_pyerr(py, fundcore::Locale::default()))
}

/// The limits of the contract and the error codes, from the core (nothing restated here).
fn add_limits(m: &Bound<'_, PyModule>) -> PyResult<()> {
    use fundcore::limits;
    let py = m.py();
    m.add("MAX_PAGE", limits::MAX_PAGE)?;
    m.add("MAX_NAME_CHARS", limits::MAX_NAME_CHARS)?;
    m.add("MAX_EMAIL_CHARS", limits::MAX_EMAIL_CHARS)?;
    m.add("MAX_EMAIL_LOCAL_BYTES", limits::MAX_EMAIL_LOCAL_BYTES)?;
    m.add(
        "MAX_IDEMPOTENCY_KEY_CHARS",
        limits::MAX_IDEMPOTENCY_KEY_CHARS,
    )?;
    m.add("MIN_PHONE_DIGITS", limits::MIN_PHONE_DIGITS)?;
    m.add("MAX_PHONE_DIGITS", limits::MAX_PHONE_DIGITS)?;
    m.add("MINOR_DIGITS", limits::MINOR_DIGITS)?;
    m.add("MAX_AMOUNT", convert::ToPy::to_py(&limits::MAX_AMOUNT, py)?)?;
    m.add("SMS_MAX_CHARS", limits::SMS_MAX_CHARS)?;
    let channels = fundcore::Channel::ALL
        .iter()
        .map(|channel| channel.as_str());
    m.add("CHANNELS", pyo3::types::PyTuple::new(py, channels)?)?;
    let categories = fundcore::Category::ALL
        .iter()
        .map(|category| category.as_str());
    m.add("CATEGORIES", pyo3::types::PyTuple::new(py, categories)?)?;
    let codes = pyo3::types::PyDict::new(py);
    for code in fundcore::ErrorCode::ALL {
        codes.set_item(code.as_str(), code.http_status())?;
    }
    m.add("ERROR_CODES", codes)?;
    Ok(())
}

/// The defaults of the engine's settings, from the core's `Config`, in the units of
/// `Engine(...)`'s keyword arguments (milliseconds, bytes).
fn add_defaults(m: &Bound<'_, PyModule>) -> PyResult<()> {
    use fundcore::Config;
    let millis = |delay: std::time::Duration| u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    m.add(
        "DEFAULT_INITIAL_BALANCE",
        convert::ToPy::to_py(&Config::DEFAULT_INITIAL_BALANCE, m.py())?,
    )?;
    m.add("DEFAULT_MAX_ATTEMPTS", Config::DEFAULT_MAX_ATTEMPTS)?;
    m.add(
        "DEFAULT_RETRY_BASE_DELAY_MS",
        millis(Config::DEFAULT_RETRY_BASE_DELAY),
    )?;
    m.add(
        "DEFAULT_RETRY_MAX_DELAY_MS",
        millis(Config::DEFAULT_RETRY_MAX_DELAY),
    )?;
    m.add(
        "DEFAULT_FLUSH_INTERVAL_MS",
        Config::DEFAULT_FLUSH_INTERVAL_MS,
    )?;
    m.add(
        "DEFAULT_CACHE_CAPACITY_BYTES",
        Config::DEFAULT_CACHE_CAPACITY_BYTES,
    )?;
    m.add("DEFAULT_POOL_SIZE", Config::DEFAULT_POOL_SIZE)?;
    m.add(
        "DEFAULT_OPERATION_TIMEOUT_MS",
        millis(Config::DEFAULT_OPERATION_TIMEOUT),
    )?;
    m.add(
        "MIN_OPERATION_TIMEOUT_MS",
        millis(Config::MIN_OPERATION_TIMEOUT),
    )?;
    m.add(
        "MAX_OPERATION_TIMEOUT_MS",
        millis(Config::MAX_OPERATION_TIMEOUT),
    )?;
    Ok(())
}

/// A new client id (a UUIDv7), for `Engine.register_client(..., client_id=...)`.
#[pyfunction]
fn new_client_id() -> String {
    fundcore::ClientId::generate().to_string()
}

/// The engine's `CLIENT_NOT_FOUND` error for `client_id`, in `locale`, without a store: what a
/// host answers when a caller names a client it may not see (the same answer as for a client
/// that does not exist). Returns the exception; raise it to use it.
#[pyfunction]
#[pyo3(signature = (client_id, locale = "es"))]
fn client_not_found(py: Python<'_>, client_id: &str, locale: &str) -> PyResult<Py<PyAny>> {
    let locale = fundcore::Locale::from_str(locale)
        .map_err(|err| errors::core_error(py, &err, fundcore::Locale::default()))?;
    // As the engine's lookups: a text it reads as a client id is named as that id (canonical
    // text), one it cannot read as given.
    let err = match fundcore::ClientId::from_str(client_id) {
        Ok(id) => fundcore::Error::ClientNotFound { id: id.to_string() },
        Err(unreadable) => unreadable.into_lookup_error(),
    };
    Ok(errors::core_error(py, &err, locale)
        .into_value(py)
        .into_any())
}

/// The core's events (operation, ids, outcome; never contact data) reach the Python loggers
/// `fundcore.*`; levels are cached per logger, so disabled ones cost no GIL. Only the core's:
/// the store's libraries log from their own threads, and a thread waiting for the GIL while the
/// interpreter, holding it, drops the engine and waits for that thread hangs the process; and
/// tokio-postgres logs each statement's parameters (contact data among them) at DEBUG.
fn forward_core_logs(py: Python<'_>) {
    if let Ok(logger) = pyo3_log::Logger::new(py, pyo3_log::Caching::LoggersAndLevels) {
        // Err: the process has a logger already (another extension's), which keeps its place.
        let _ = logger
            .filter(log::LevelFilter::Off)
            .filter_target("fundcore".to_owned(), log::LevelFilter::Debug)
            .install();
    }
}

#[pymodule(name = "_fundcore")]
fn fundcore_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    forward_core_logs(m.py());
    // Set as plain attributes (not `add`), so they stay out of `__all__`.
    m.setattr("__version__", env!("CARGO_PKG_VERSION"))?;
    add_limits(m)?;
    add_defaults(m)?;
    m.add_class::<records::HistoryPage>()?;
    m.add_class::<records::ClientPage>()?;
    m.add_class::<records::AuditEventPage>()?;
    m.add_class::<records::AuditEvent>()?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<records::Fund>()?;
    m.add_class::<records::Client>()?;
    m.add_class::<records::Subscription>()?;
    m.add_class::<records::Transaction>()?;
    m.add_class::<records::Notification>()?;
    m.add_class::<records::DispatchReport>()?;
    m.add_class::<records::OutboxState>()?;
    m.add_class::<records::NotificationPage>()?;
    m.add_class::<records::Statement>()?;
    m.add_class::<records::StatementLine>()?;
    m.add_class::<records::LedgerReport>()?;
    m.add_function(wrap_pyfunction!(format_cop, m)?)?;
    m.add_function(wrap_pyfunction!(client_not_found, m)?)?;
    m.add_function(wrap_pyfunction!(new_client_id, m)?)?;
    m.add_function(wrap_pyfunction!(recorder::enable_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(recorder::metrics, m)?)?;
    m.setattr(
        "_record_from_json",
        wrap_pyfunction!(records::_record_from_json, m)?,
    )?;
    Ok(())
}
