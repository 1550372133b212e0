//! Conversions between Python values and the core's types. No business rule lives here:
//! amounts are parsed and validated by the core's money functions, ids by its `FromStr`.

use std::time::Duration;

use fundcore::{
    Category, Channel, ClientId, Decimal, NotificationId, NotificationStatus, Timestamp,
    TransactionId, TransactionKind,
};
use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyDateTime, PyDelta, PyDict, PyFloat, PyInt, PyList, PyString, PyType, PyTzInfo,
};

use crate::errors::Failure;

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `decimal.Decimal`.
pub fn decimal_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DECIMAL.import(py, "decimal", "Decimal")
}

/// Reads a money argument: `decimal.Decimal`, `int` or `str`. A `float` (inexact binary
/// fraction) or `bool` is a `TypeError`; text that is not a plain decimal number is the core's
/// `VALIDATION_ERROR` on `what`. The value is only parsed here; the engine validates it.
pub fn amount_arg(value: &Bound<'_, PyAny>, what: &'static str) -> Result<Decimal, Failure> {
    let text: String = if value.is_instance_of::<PyBool>() {
        return Err(type_error(what, value));
    } else if value.is_instance_of::<PyFloat>() {
        return Err(Failure::Py(PyTypeError::new_err(format!(
            "{what} must be a decimal.Decimal, int or str, not float: binary floats cannot hold \
             money exactly (use Decimal(\"80000.50\"), 80000 or \"80000.50\")"
        ))));
    } else if value.is_instance_of::<PyInt>() {
        value.str()?.to_cow()?.into_owned()
    } else if let Ok(text) = value.cast::<PyString>() {
        text.to_cow()?.into_owned()
    } else if value.is_instance(decimal_type(value.py())?)? {
        // a Decimal is a number, not text a person typed: "75.000" there is 75, unambiguously
        without_trailing_zeros(decimal_text(value)?)
    } else {
        return Err(type_error(what, value));
    };
    fundcore::parse_amount(&text).map_err(|err| Failure::Core(err.on_field(what)))
}

fn type_error(what: &str, value: &Bound<'_, PyAny>) -> Failure {
    let type_name = value
        .get_type()
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "?".to_owned());
    Failure::Py(PyTypeError::new_err(format!(
        "{what} must be a decimal.Decimal, int or str, not {type_name}"
    )))
}

/// `80000.000` as `80000`, `75.50` as `75.5`: the same number, written as no thousands dot can be.
fn without_trailing_zeros(text: String) -> String {
    match text.split_once('.') {
        Some((units, cents)) if units.bytes().all(|b| b.is_ascii_digit() || b == b'-') => {
            let cents = cents.trim_end_matches('0');
            if cents.is_empty() {
                units.to_owned()
            } else {
                format!("{units}.{cents}")
            }
        }
        _ => text,
    }
}

/// Plain positional text of a `Decimal` (no exponent), so `Decimal("8E+4")` reads as `80000`.
/// NaN, infinities and absurd exponents keep their `str()` form, which the core rejects.
fn decimal_text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    let exponent = value.call_method0("as_tuple")?.getattr("exponent")?;
    let plain = matches!(exponent.extract::<i64>(), Ok(e) if (-64..=64).contains(&e));
    let text = if plain {
        value.call_method1("__format__", ("f",))?
    } else {
        value.str()?.into_any()
    };
    text.extract()
}

/// A count argument (`limit`): negative numbers become 0 and huge ones `usize::MAX`, so the
/// core's range check reports them (`VALIDATION_ERROR`) instead of an `OverflowError`.
pub fn count_arg(value: i128) -> usize {
    if value < 0 {
        0
    } else {
        usize::try_from(value).unwrap_or(usize::MAX)
    }
}

/// Reads a point in time: a timezone-aware `datetime.datetime`, exact to the microsecond. A
/// naive one names no instant (its zone is a guess), so it is a `ValueError`; anything else a
/// `TypeError`.
pub fn timestamp_arg(value: &Bound<'_, PyAny>, what: &str) -> Result<Timestamp, Failure> {
    let py = value.py();
    if !value.is_instance_of::<PyDateTime>() {
        let type_name = value.get_type().name()?;
        return Err(Failure::Py(PyTypeError::new_err(format!(
            "{what} must be a timezone-aware datetime.datetime, not {type_name}"
        ))));
    }
    if value.call_method0("utcoffset")?.is_none() {
        return Err(Failure::Py(pyo3::exceptions::PyValueError::new_err(
            format!(
                "{what} must be a timezone-aware datetime (e.g. datetime(2026, 1, 1, \
             tzinfo=timezone.utc)): a naive datetime names no instant"
            ),
        )));
    }
    // Integer arithmetic on timedeltas: exact, no float on the way.
    let utc = PyTzInfo::utc(py)?.to_owned();
    let epoch = PyDateTime::new(py, 1970, 1, 1, 0, 0, 0, 0, Some(&utc))?;
    let micro = PyDelta::new(py, 0, 0, 1, false)?;
    let micros: i64 = value.sub(epoch)?.floor_div(micro)?.extract()?;
    Ok(Timestamp::from_unix_micros(micros))
}

/// Python value of a core field.
pub trait ToPy {
    /// Converts to the Python value exposed as an attribute.
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>>;
}

impl ToPy for u32 {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.into_bound_py_any(py)
    }
}

impl ToPy for u64 {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.into_bound_py_any(py)
    }
}

/// A duration as a `datetime.timedelta` (microsecond precision, as the core's times).
impl ToPy for Duration {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        const MICROS_PER_DAY: u128 = 86_400 * 1_000_000;
        let micros = self.as_micros();
        let days = i32::try_from(micros / MICROS_PER_DAY)
            .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("duration out of range"))?;
        let rest = micros % MICROS_PER_DAY;
        // Both below a day's worth, so they fit.
        let seconds = (rest / 1_000_000) as i32;
        let microseconds = (rest % 1_000_000) as i32;
        PyDelta::new(py, days, seconds, microseconds, false).map(Bound::into_any)
    }
}

impl ToPy for bool {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.into_bound_py_any(py)
    }
}

impl ToPy for String {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.as_str().into_bound_py_any(py)
    }
}

impl ToPy for Decimal {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_type(py)?.call1((self.to_string(),))
    }
}

impl ToPy for Timestamp {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.to_utc();
        let utc = PyTzInfo::utc(py)?.to_owned();
        let year = i32::try_from(t.year)
            .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("timestamp out of range"))?;
        PyDateTime::new(
            py,
            year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
            t.microsecond,
            Some(&utc),
        )
        .map(Bound::into_any)
    }
}

macro_rules! display_to_py {
    ($($ty:ty),*) => {$(
        impl ToPy for $ty {
            fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                self.to_string().into_bound_py_any(py)
            }
        }
    )*};
}

display_to_py!(
    fundcore::AuditEventId,
    fundcore::AuditAction,
    ClientId,
    TransactionId,
    NotificationId,
    Category,
    Channel,
    TransactionKind,
    NotificationStatus
);

impl ToPy for serde_json::Map<String, serde_json::Value> {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &serde_json::Value::Object(self.clone()))
    }
}

impl<T: ToPy> ToPy for Option<T> {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Some(value) => value.to_py(py),
            None => Ok(py.None().into_bound(py)),
        }
    }
}

/// A JSON value as plain Python data (dict, list, str, int, bool, None).
pub fn json_to_py<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    match value {
        Value::Null => Ok(py.None().into_bound(py)),
        Value::Bool(b) => b.into_bound_py_any(py),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_bound_py_any(py)
            } else if let Some(u) = n.as_u64() {
                u.into_bound_py_any(py)
            } else {
                // The core's records carry money as strings; a float here would be a bug.
                Err(PyTypeError::new_err(format!(
                    "unexpected non-integer number {n} in a record"
                )))
            }
        }
        Value::String(s) => s.as_str().into_bound_py_any(py),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            Ok(list.into_any())
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, json_to_py(py, item)?)?;
            }
            Ok(dict.into_any())
        }
    }
}
