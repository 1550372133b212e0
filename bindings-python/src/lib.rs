//! Python bindings for fundcore (work in progress: filled in once the core engine lands).

use pyo3::prelude::*;

#[pymodule(name = "_fundcore")]
fn fundcore_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
