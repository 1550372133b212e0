"""What the field tests share besides the checker: the gate (they run under `make test-field`,
FUNDCORE_FIELD_TESTS=1; `make test-host` collects this folder too and skips them) and the
the `fundcore` command and a directory for the clusters. No conftest.py here: the host's tests
import theirs as ``conftest``, and a second one would shadow it."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]


def skip_unless_field_run() -> None:
    """Skip the calling module outside `make test-field` (it starts servers and takes a minute)."""
    if os.environ.get("FUNDCORE_FIELD_TESTS") != "1":
        pytest.skip("a field test: run by make test-field (FUNDCORE_FIELD_TESTS=1)", allow_module_level=True)


def fundcore_bin() -> str:
    """The `fundcore` command (`fundcore verify`); `make test-field` builds it."""
    path = os.environ.get("FUNDCORE_BIN") or str(REPO / "target" / "debug" / "fundcore")
    assert os.access(path, os.X_OK), f"{path} is missing: cargo build --features fundcore/postgres --bin fundcore"
    return path


@contextlib.contextmanager
def pg_workdir() -> Iterator[Path]:
    """A directory for private PostgreSQL clusters that the ``postgres`` user can reach
    (pytest's own tmp_path is private to root); removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="fundcore-field-"))
    if os.getuid() == 0:
        shutil.chown(path, "postgres")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
