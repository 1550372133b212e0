//! Core errors as Python exceptions. The classes are defined in `fundcore/_errors.py`; this
//! module only picks the class for a core error code and fills in `code`, `message`, `field`.

use fundcore::{Error, Locale};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

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

/// Name of the exception class (in `fundcore`) for a core error code (docs/errors.md).
pub fn class_for_code(code: &str) -> &'static str {
    match code {
        "VALIDATION_ERROR" | "BELOW_MINIMUM" => "ValidationError",
        "INSUFFICIENT_BALANCE" => "InsufficientBalanceError",
        "ALREADY_SUBSCRIBED" | "NOT_SUBSCRIBED" | "FUND_INACTIVE" | "IDEMPOTENCY_KEY_REUSED" => {
            "ConflictError"
        }
        "CLIENT_NOT_FOUND" | "FUND_NOT_FOUND" | "TRANSACTION_NOT_FOUND" => "NotFoundError",
        "STORAGE_ERROR" => "StorageError",
        _ => "FundcoreError",
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
        let class = errors_module(py)?.getattr(class_for_code(err.code()))?;
        let instance = class.call1((err.code(), err.message(locale), err.field()))?;
        Ok(PyErr::from_value(instance))
    };
    build().unwrap_or_else(|failure| failure)
}
