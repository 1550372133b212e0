//! Core errors as Python exceptions. The classes are defined in `fundcore/_errors.py`; this
//! module only picks the class for a core error code and fills in `code`, `message`, `field`,
//! and the message (and problem) in every locale.

use fundcore::{Error, ErrorCode, Locale};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// What an argument conversion or engine call can fail with, before it is rendered in the
/// engine's locale.
pub enum Failure {
    /// A core error (rendered with the engine's locale).
    Core(Error),
    /// Already a Python exception (`TypeError`, ...).
    Py(PyErr),
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Failure::Core(err)
    }
}

impl From<PyErr> for Failure {
    fn from(err: PyErr) -> Self {
        Failure::Py(err)
    }
}

impl Failure {
    /// The Python exception, messages in `locale`.
    pub fn into_pyerr(self, py: Python<'_>, locale: Locale) -> PyErr {
        match self {
            Failure::Core(err) => core_error(py, &err, locale),
            Failure::Py(err) => err,
        }
    }
}

/// Name of the exception class (in `fundcore._errors`) of a core error code. Exhaustive on
/// purpose: a new core code does not compile until it is given its class here.
pub fn class_for_code(code: ErrorCode) -> &'static str {
    use ErrorCode::*;
    match code {
        ValidationError | BelowMinimum => "ValidationError",
        InsufficientBalance => "InsufficientBalanceError",
        AlreadySubscribed | NotSubscribed | FundInactive | IdempotencyKeyReused
        | FundAlreadyExists => "ConflictError",
        ClientNotFound | FundNotFound | TransactionNotFound => "NotFoundError",
        StorageError => "StorageError",
        OutcomeUnknown => "OutcomeUnknownError",
    }
}

/// `fundcore._errors`, where the exception classes live.
pub fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS_MODULE
        .get_or_try_init(py, || Ok(py.import("fundcore._errors")?.unbind()))
        .map(|module| module.bind(py))
}

/// The Python exception for a core error, with its message in `locale`.
pub fn core_error(py: Python<'_>, err: &Error, locale: Locale) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let code = err.code();
        let class = errors_module(py)?.getattr(class_for_code(code))?;
        // Every locale's message and problem, for callers that answer each reader in theirs.
        let messages = PyDict::new(py);
        let problems = PyDict::new(py);
        for each in Locale::ALL {
            messages.set_item(each.as_str(), err.message(*each))?;
            if let Some(problem) = err.problem(*each) {
                problems.set_item(each.as_str(), problem)?;
            }
        }
        let kwargs = PyDict::new(py);
        kwargs.set_item("messages", messages)?;
        if err.field().is_some() {
            kwargs.set_item("problems", problems)?;
        }
        let instance = class.call(
            (
                code.as_str(),
                err.message(locale),
                err.field(),
                err.problem(locale),
                code.http_status(),
            ),
            Some(&kwargs),
        )?;
        Ok(PyErr::from_value(instance))
    };
    build().unwrap_or_else(|failure| failure)
}
