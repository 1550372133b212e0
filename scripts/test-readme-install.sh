#!/usr/bin/env bash
# The README's "Install" commands for Python, run as written (check_snippets requires them
# here): the wheel of `make dist` into a new virtual environment, imported from outside the
# source tree. The Rust dependency line is scripts/test-crate.sh's; the JVM artifact's
# coordinates are resolved by `make kotlin-jar`.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf build/try-fundcore
trap 'rm -rf build/try-fundcore' EXIT

make dist
python3 -m venv build/try-fundcore
build/try-fundcore/bin/pip install -q dist/fundcore-0.1.0-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
build/try-fundcore/bin/python -c "import fundcore; print(fundcore.__version__)"

# What the last line printed is the version, from the venv's own copy of the package.
(cd / && "$OLDPWD/build/try-fundcore/bin/python" -c '
import fundcore, sys
assert "/build/try-fundcore/" in fundcore.__file__, fundcore.__file__
assert fundcore.__version__ == "0.1.0", fundcore.__version__
')
echo "test-readme-install: the Python install commands ran"
