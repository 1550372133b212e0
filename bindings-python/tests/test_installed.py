"""The suite tests what users install: the `fundcore` package of the running interpreter's
site-packages (the abi3 wheel), never the sources in bindings-python/python, and its version is
the crate's."""

from __future__ import annotations

import importlib.metadata
import re
import sysconfig
from pathlib import Path

import fundcore
import fundcore._fundcore as native
from conftest import REPO


def site_packages() -> set[Path]:
    """Where this interpreter (a venv's, under `make test-python`) installs packages."""
    return {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}


def crate_version() -> str:
    """`[workspace.package] version` of the root Cargo.toml (the crate's version, which
    fundcore-python inherits); read by hand, as tomllib is 3.11+."""
    text = (REPO / "Cargo.toml").read_text(encoding="utf-8")
    section = text.split("[workspace.package]", 1)[1].split("\n[", 1)[0]
    match = re.search(r'^version\s*=\s*"([^"]+)"', section, re.M)
    assert match, "no version in [workspace.package] of Cargo.toml"
    return match.group(1)


def test_fundcore_is_imported_from_site_packages_not_from_the_sources():
    package = Path(fundcore.__file__).resolve().parent
    assert package.parent in site_packages(), f"fundcore imported from {package}"
    assert not package.is_relative_to(REPO / "bindings-python"), f"fundcore imported from the sources: {package}"
    native_file = Path(native.__file__).resolve()
    assert native_file.parent == package
    # The stable-ABI build: one extension for every CPython >= 3.10.
    assert native_file.name == "_fundcore.abi3.so"
    # The stubs and the PEP 561 marker ship in the wheel.
    assert (package / "_fundcore.pyi").is_file() and (package / "py.typed").is_file()


def test_the_version_is_the_crate_version():
    assert isinstance(fundcore.__version__, str)
    assert fundcore.__version__ == native.__version__ == crate_version()
    # ... and the version pip sees (the wheel's metadata, written by maturin from Cargo.toml).
    assert importlib.metadata.version("fundcore") == fundcore.__version__
    assert "__version__" in fundcore.__all__
