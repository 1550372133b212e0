//! Python bindings for fundcore: the native part (`fundcore._fundcore`) of the `fundcore`
//! Python package. This crate only converts values and maps errors; every business rule lives
//! in the core crate.

mod convert;
mod engine;
mod errors;
mod records;

use pyo3::prelude::*;

/// Formats an amount for people, the Colombian way: `format_cop(Decimal("75000"))` is
/// `"COP $75.000"`. Accepts `Decimal`, `int` or `str`.
#[pyfunction]
fn format_cop(py: Python<'_>, amount: &Bound<'_, PyAny>) -> PyResult<String> {
    convert::amount_arg(amount, "amount")
        .map(fundcore::money::format_cop)
        .map_err(|failure| failure.into_pyerr(py, fundcore::Locale::default()))
}

#[pymodule(name = "_fundcore")]
fn fundcore_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Set as plain attributes (not `add`), so they stay out of `__all__`.
    m.setattr("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_PAGE", fundcore::MAX_PAGE)?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<records::Fund>()?;
    m.add_class::<records::Client>()?;
    m.add_class::<records::Subscription>()?;
    m.add_class::<records::Transaction>()?;
    m.add_class::<records::Notification>()?;
    m.add_class::<records::DispatchReport>()?;
    m.add_function(wrap_pyfunction!(format_cop, m)?)?;
    m.setattr(
        "_record_from_json",
        wrap_pyfunction!(records::_record_from_json, m)?,
    )?;
    Ok(())
}
