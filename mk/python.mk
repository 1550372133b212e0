# The Python binding (bindings-python/): wheel, stubs, tests. Included by the Makefile.
PY_WHEELS := target/fundcore-wheels

# .venv with the pinned build/test tools (idempotent: creates the venv only if missing).
venv:
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r bindings-python/requirements-dev.txt

# Build the `fundcore` wheel (release) and install it into .venv.
python-dev: venv
	rm -rf $(PY_WHEELS)
	$(VENV)/bin/maturin build --release --manifest-path bindings-python/Cargo.toml --interpreter $(PY) --out $(PY_WHEELS)
	$(PIP) install -q --disable-pip-version-check --force-reinstall --no-deps $(PY_WHEELS)/fundcore-*.whl

# The stubs' docstrings (what IDEs show) from the built module's, which pyo3 makes from the Rust
# doc comments; tests/test_stub_docs.py fails while they differ.
python-stubs: python-dev
	$(PY) bindings-python/scripts/sync_stub_docs.py

# On both stores: a private PostgreSQL for the run unless FUNDCORE_TEST_DATABASE_URL is set.
test-python: python-dev
	$(WITH_PG) $(PY) -m pytest bindings-python/tests -q
