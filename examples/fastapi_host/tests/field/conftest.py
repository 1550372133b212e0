"""The field tests (failover, several hosts behind nginx) start their own servers and take a
minute or two: `make test-field` runs them (FUNDCORE_FIELD_TESTS=1). Elsewhere (`make
test-host` collects this folder too) only the history checker's own tests run."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

collect_ignore = [] if os.environ.get("FUNDCORE_FIELD_TESTS") == "1" else ["test_failover.py", "test_balancer.py"]

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="session")
def fundcore_bin() -> str:
    """The `fundcore` command (`fundcore verify`); `make test-field` builds it."""
    path = os.environ.get("FUNDCORE_BIN") or str(REPO / "target" / "debug" / "fundcore")
    assert os.access(path, os.X_OK), f"{path} is missing: cargo build --features fundcore/postgres --bin fundcore"
    return path


@pytest.fixture
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
