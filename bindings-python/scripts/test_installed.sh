#!/usr/bin/env bash
# The Python suite against what users install (`make test-python`).
#
#   bindings-python/scripts/test_installed.sh DIST_DIR TESTS_DIR SDIST_PYTHON PYTHON_VERSION...
#
# For each PYTHON_VERSION (a pyenv version, e.g. 3.11.7): a fresh venv of that CPython gets the
# wheel of DIST_DIR and requirements-test.txt, and runs a copy of TESTS_DIR (bindings-python/tests)
# in a temporary directory, so `import fundcore` can only find the installed package
# (test_installed.py checks that it did); FUNDCORE_REPO tells the tests where the repository's
# files are. The suite includes stubtest against the installed module (test_types.py). Then pip
# builds the sdist (maturin's PEP 517 backend, dev profile to keep it quick) in a fresh venv of
# SDIST_PYTHON, and the package it installed is imported and used. A missing interpreter fails
# the run. FUNDCORE_TEST_DATABASE_URL must name a PostgreSQL server ($(WITH_PG) starts one).
set -euo pipefail

if [ $# -lt 4 ]; then
    echo "usage: $0 DIST_DIR TESTS_DIR SDIST_PYTHON PYTHON_VERSION..." >&2
    exit 2
fi
repo=$(cd "$(dirname "$0")/../.." && pwd)
dist=$(cd "$1" && pwd)
tests=$(cd "$2" && pwd)
sdist_python=$3
shift 3

if [ -z "${FUNDCORE_TEST_DATABASE_URL:-}" ]; then
    echo "test-python: FUNDCORE_TEST_DATABASE_URL is not set (run it through scripts/with-postgres.sh)" >&2
    exit 1
fi

shopt -s nullglob
wheels=("$dist"/fundcore-*-cp310-abi3-*.whl)
sdists=("$dist"/fundcore-*.tar.gz)
shopt -u nullglob
if [ ${#wheels[@]} -ne 1 ] || [ ${#sdists[@]} -ne 1 ]; then
    echo "test-python: $dist must hold one abi3 wheel and one sdist (make dist); found: ${wheels[*]-} ${sdists[*]-}" >&2
    exit 1
fi
wheel=${wheels[0]}
sdist=${sdists[0]}

pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
interpreter() {
    local python="$pyenv_root/versions/$1/bin/python"
    if [ ! -x "$python" ]; then
        echo "test-python: CPython $1 is missing ($python): install it (pyenv install $1) or change PY_TEST_VERSIONS" >&2
        exit 1
    fi
    echo "$python"
}
# Every interpreter up front: a missing one fails before anything runs.
for version in "$@" "$sdist_python"; do interpreter "$version" >/dev/null; done

work=$(mktemp -d /tmp/fundcore-test-python.XXXXXX)
trap 'rm -rf "$work"' EXIT
pip_install() { "$1/bin/python" -m pip install -q --disable-pip-version-check "${@:2}"; }
now() { date +%s; }

for version in "$@"; do
    start=$(now)
    venv="$work/venv-$version"
    "$(interpreter "$version")" -m venv "$venv"
    pip_install "$venv" -r "$repo/bindings-python/requirements-test.txt" "$wheel"
    # A copy of the tests in a directory of its own, without the package's sources. Most tests
    # find the repository's files through FUNDCORE_REPO (conftest.REPO); test_readme.py and
    # test_stub_docs.py from their own path, so the files they read are linked at those places.
    run="$work/run-$version"
    mkdir -p "$run/bindings-python/python/fundcore"
    cp -r "$tests" "$run/bindings-python/tests"
    rm -rf "$run/bindings-python/tests/__pycache__" "$run/bindings-python/tests/.pytest_cache"
    ln -s "$repo/README.md" "$run/README.md"
    ln -s "$repo/bindings-python/README.md" "$repo/bindings-python/scripts" "$run/bindings-python/"
    ln -s "$repo/bindings-python/python/fundcore/_fundcore.pyi" "$run/bindings-python/python/fundcore/"
    echo "test-python: CPython $version, $(basename "$wheel")"
    (cd "$run" && FUNDCORE_REPO="$repo" "$venv/bin/python" -m pytest bindings-python/tests -q -p no:cacheprovider)
    echo "test-python: CPython $version passed in $(($(now) - start)) s"
done

# The sdist builds (everything from its own files: the core crate comes inside) and imports.
start=$(now)
venv="$work/venv-sdist"
"$(interpreter "$sdist_python")" -m venv "$venv"
# pip fetches the build backend (pyproject's maturin>=1.16,<2) into an isolated environment: the
# constraint holds it to the maturin the wheel was built with.
grep -E '^maturin==' "$repo/bindings-python/requirements-dev.txt" >"$work/constraints.txt"
PIP_CONSTRAINT="$work/constraints.txt" MATURIN_PEP517_ARGS="--profile dev" pip_install "$venv" "$sdist"
(cd "$work" && "$venv/bin/python" - "$repo" <<'PY'
import sys
import sysconfig
from decimal import Decimal
from pathlib import Path

import fundcore

repo = Path(sys.argv[1])
package = Path(fundcore.__file__).resolve().parent
assert package.parent == Path(sysconfig.get_paths()["platlib"]).resolve(), package
assert not package.is_relative_to(repo), package
assert (package / "_fundcore.abi3.so").is_file() and (package / "_fundcore.pyi").is_file()
with fundcore.Engine() as eng:
    ana = eng.register_client("Ana", "ana@example.com", "+573001234567", channel="email")
    eng.subscribe(ana.id, 1, Decimal("80000"), idempotency_key="k-1")
    assert eng.client(ana.id).balance == Decimal("420000.00"), eng.client(ana.id).balance
print(f"test-python: the sdist built and runs fundcore {fundcore.__version__} on CPython {sys.version.split()[0]}")
PY
)
echo "test-python: sdist (CPython $sdist_python, dev profile) passed in $(($(now) - start)) s"
