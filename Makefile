# fundcore: `make demo` runs the REST host, `make test` runs every test, `make bench` measures.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
CARGO  := cargo
export CARGO_PROFILE_DEV_DEBUG := line-tables-only

.PHONY: help demo test bench test-rust test-python test-kotlin lint fmt venv python-dev setup-kotlin quickstart

help:
	@echo "make demo   build, install into .venv and start the REST host on 127.0.0.1:8000"
	@echo "make test   every test: Rust (unit, property, crash), Python, REST host, Kotlin"
	@echo "make bench  benchmarks; writes benches/results.json and benches/RESULTS.md"

# ---------------------------------------------------------------- Rust core
test-rust:
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

quickstart:
	$(CARGO) run --example quickstart

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# ---------------------------------------------------------------- Python (filled in by the Python binding)
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

test-python: python-dev
	$(PY) -m pytest bindings-python/tests -q

# ---------------------------------------------------------------- Kotlin (filled in by the mobile binding)

# ---------------------------------------------------------------- aggregate targets
test: test-rust test-python
	@echo "make test: all suites passed"
