# fundcore: `make demo` runs the REST host, `make test` runs every test, `make bench` measures.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
CARGO  := cargo
export CARGO_PROFILE_DEV_DEBUG := line-tables-only

.PHONY: help demo test test-suites bench test-rust test-rust-suites test-python test-kotlin lint fmt venv python-dev python-stubs setup-kotlin quickstart check-snippets

# Every target a README or docs page names (scripts/check_snippets.py checks that).
help:
	@echo "make help             this list"
	@echo "make demo             build, install into .venv and start the REST host on 127.0.0.1:8000 (metrics: /metrics)"
	@echo "make test             every test: snippets and docs, Rust (unit, property, crash, PostgreSQL), Python, REST host, Kotlin, Java"
	@echo "make bench            benchmarks; writes benches/results.json and benches/RESULTS.md"
	@echo "make check-snippets   README and docs code blocks, make targets and quoted facts agree with the code"
	@echo "make test-rust        Rust tests on both stores (unit, scenarios, property, crash, PostgreSQL) and the examples"
	@echo "make test-pooler      the multi-process PostgreSQL tests through PgBouncer (transaction pooling, prepared_statements off)"
	@echo "make quickstart       run the Rust quickstart (core/examples/quickstart.rs)"
	@echo "make test-crate       the crate packaged (cargo publish --dry-run) and used as a dependency; every documented cargo and fundcore command; the README's install commands"
	@echo "make dist             the Python distribution in dist/: one abi3 wheel (CPython >= 3.10, glibc >= 2.17) and the sdist"
	@echo "make dist-check       dist/ checked: glibc symbols, auditwheel, abi3audit --strict, twine check --strict (part of make lint)"
	@echo "make python-dev       build the Python wheel (make dist's) and install it into .venv"
	@echo "make python-stubs     rebuild the wheel, then copy its docstrings (the Rust doc comments) into the Python stubs"
	@echo "make test-python      the Python suite against the installed wheel on CPython 3.10-3.13 (both stores), and the sdist built and imported"
	@echo "make demo-postgres    the REST host with two workers on a private local PostgreSQL (stopped with it)"
	@echo "make test-host        the REST host's tests (two workers on a private PostgreSQL among them)"
	@echo "make test-pages       the REST host's pages in Chromium (Playwright): flows by role and name, axe-core checks, screenshots"
	@echo "make pages-deps       what make test-pages needs: Debian's chromium and poppler-utils, Playwright (pip), axe-core (npm, into build/tools)"
	@echo "make test-field       PostgreSQL failover and REST hosts behind nginx under load, checked against their history"
	@echo "make setup-kotlin     install the Kotlin compiler (npm, into build/tools) and Maven (apt, when missing)"
	@echo "make mobile-generate  generate the Kotlin and Swift bindings and check them"
	@echo "make kotlin-jar       build com.fundcore:fundcore:0.1.0 with Maven (jar with native library and R8 rules, sources jar, POM) into build/jvm and ~/.m2"
	@echo "make kotlin-example   run the Kotlin quickstart (examples/kotlin/Quickstart.kt) on the JVM"
	@echo "make test-java        the jar's public names checked with javap, a Java program against it, then the same program shrunk by ProGuard under the jar's rules"
	@echo "make test-kotlin      test-java, kotlin-example, then the Kotlin tests on the JVM"
	@echo "make test-swift       Swift without a toolchain: the generated C header compiles, the library exports all it declares, the release zip's checksum"
	@echo "make lint-mobile      shellcheck and ruff over the mobile binding's scripts (part of make lint)"
	@echo "make test-baseline    the sqlite3 and psycopg (PostgreSQL) baselines' rule tests (benches/baseline)"
	@echo "make lint             cargo fmt --check and clippy, the crate's docs.rs build, MSRV and cargo deny; ruff and mypy --strict over the Python (REST host, fundcore package)"
	@echo "make fmt              format the Rust code"

# The code blocks of every README and docs page, the make targets they name and the facts docs/
# quotes, against the code (Python standard library only; run first, it takes a second).
check-snippets:
	python3 -m unittest discover -s scripts -p 'test_check_snippets.py' -q
	python3 scripts/check_snippets.py

# ---------------------------------------------------------------- PostgreSQL for the tests
# Suites that run on both stores need a server: without FUNDCORE_TEST_DATABASE_URL they start a
# private throwaway cluster on loopback for their run (scripts/with-postgres.sh) and stop it.
WITH_PG := $(if $(FUNDCORE_TEST_DATABASE_URL),,scripts/with-postgres.sh)

# ---------------------------------------------------------------- Rust core
# Unit, scenario, property and crash tests on both stores, examples and doc tests; benchmarks
# are `make bench`. One feature set everywhere (the PostgreSQL store on), so nothing recompiles.
CARGO_FEATURES := --features fundcore/postgres
# core/tests/disk_faults.rs injects I/O errors with libfiu's fiu-run (Debian's fiu-utils) and
# mounts a small tmpfs (root).
test-rust:
	scripts/apt-install.sh fiu-utils
	$(WITH_PG) $(MAKE) --no-print-directory test-rust-suites

test-rust-suites:
	$(CARGO) test --workspace $(CARGO_FEATURES) --lib --bins --tests --examples
	$(CARGO) test --workspace $(CARGO_FEATURES) --doc
	$(CARGO) run -q $(CARGO_FEATURES) --example quickstart
	$(CARGO) run -q $(CARGO_FEATURES) --example administration
	FUNDCORE_DATABASE_URL=$$FUNDCORE_TEST_DATABASE_URL $(CARGO) run -q $(CARGO_FEATURES) --example postgres

quickstart:
	$(CARGO) run --example quickstart

# The crate as users get it: `cargo publish --dry-run`, then a new project that depends on the
# packaged crate as core/README.md shows; then every command the READMEs and docs/ show for the
# examples and the `fundcore` command (a release build), run as written on a private PostgreSQL;
# the README's Python install commands (the wheel of make dist in a new venv).
.PHONY: test-crate
test-crate:
	scripts/test-crate.sh
	$(WITH_PG) scripts/test-fundcore-command.sh
	scripts/test-readme-install.sh

# Behind Debian's PgBouncer in transaction pooling mode (scripts/with-pgbouncer.sh, in front of
# the test server, stopped at the end): the PostgreSQL tests that use several processes (racing
# processes, dispatchers in three processes, SIGKILL mid-load) with every engine through the
# pooler and prepared_statements(false), and tests/pooler.rs (every operation, one key from
# several engines, and the STORAGE_ERROR naming prepared_statements when it is left on).
POOLER_TESTS := four_processes_on_the_same_clients three_dispatchers_in_three_processes a_process_killed_mid_load
.PHONY: test-pooler test-pooler-suites
test-pooler:
	$(WITH_PG) scripts/with-pgbouncer.sh $(MAKE) --no-print-directory test-pooler-suites

test-pooler-suites:
	$(CARGO) test --workspace $(CARGO_FEATURES) --test pooler -- --include-ignored
	$(CARGO) test --workspace $(CARGO_FEATURES) --test postgres -- $(POOLER_TESTS)

# The Python distribution checked (make dist-check, mk/python.mk); one version for every artifact
# (scripts/check_versions.py). Rust: rustfmt and clippy; the crate's own lint (scripts/lint-crate.sh: no warning with default
# features, the docs.rs build, the MSRV toolchain, cargo deny with deny.toml). Python (ruff.toml, mypy.ini): ruff over the REST host and the
# `fundcore` package's Python, ruff format on the host, mypy --strict over both (the binding read
# from its source stubs, so no wheel is built).
lint: host-lint-deps dist-check lint-mobile
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace $(CARGO_FEATURES) --all-targets -- -D warnings
	$(VENV)/bin/ruff check examples/fastapi_host bindings-python/python
	$(VENV)/bin/ruff format --check examples/fastapi_host
	$(VENV)/bin/mypy -p fundcore -p fundcore_host
	scripts/lint-crate.sh
	python3 -m unittest discover -s scripts -p 'test_check_versions.py' -q
	python3 scripts/check_versions.py

fmt:
	$(CARGO) fmt --all

# ---------------------------------------------------------------- the bindings' own parts
# One file per area in mk/: python.mk (wheel, stubs, Python tests), mobile.mk (Kotlin, Java, Swift).
include mk/python.mk mk/mobile.mk

# ---------------------------------------------------------------- Demo (REST host)
HOST_DIR := examples/fastapi_host
DEMO_HOST := 127.0.0.1
DEMO_PORT := 8000
.PHONY: host-deps host-demo-deps host-test-deps host-lint-deps test-host test-schemathesis demo-postgres pages-deps test-pages

# The REST host's runtime dependencies (pinned) into .venv.
host-deps: venv
	$(PIP) install -q --disable-pip-version-check -r $(HOST_DIR)/requirements.txt

# ... plus what the demo runs beside it (aiosmtpd, for the local mail server).
host-demo-deps: venv
	$(PIP) install -q --disable-pip-version-check -r $(HOST_DIR)/requirements-demo.txt

# ... plus its test dependencies (pytest, hypothesis, httpx2, schemathesis).
host-test-deps: venv
	$(PIP) install -q --disable-pip-version-check -r $(HOST_DIR)/requirements-test.txt

# ... plus the Python lint tools of `make lint` (ruff, mypy; requirements-lint.txt).
host-lint-deps: venv
	$(PIP) install -q --disable-pip-version-check -r requirements-lint.txt

# Build the wheel into .venv, then serve the REST API on 127.0.0.1:8000 with the store in
# ./data/fundcore, a local SMTP server and SMS gateway keeping what they receive in ./data/mail
# and ./data/sms (fundcore_host/demo.py prints the token, example calls, where to look and where
# the Prometheus metrics are: http://127.0.0.1:8000/metrics).
demo: python-dev host-demo-deps
	@PYTHONPATH=$(HOST_DIR) $(PY) -m fundcore_host.demo --data data --host $(DEMO_HOST) --port $(DEMO_PORT)

# The same with two worker processes on a private, throwaway PostgreSQL server on loopback
# (scripts/with-postgres.sh; stopped and removed when the demo stops). The store is the
# database of FUNDCORE_TEST_DATABASE_URL; mail and SMS land in ./data/postgres.
demo-postgres: python-dev host-demo-deps
	@scripts/with-postgres.sh sh -c 'FUNDCORE_DATABASE_URL="$$FUNDCORE_TEST_DATABASE_URL" PYTHONPATH=$(HOST_DIR) \
		exec $(PY) -m fundcore_host.demo --data data/postgres --workers 2 --host $(DEMO_HOST) --port $(DEMO_PORT)'

# The REST host's tests (real engine, processes and servers on loopback), schemathesis against
# the running host included (FUNDCORE_SCHEMATHESIS_EXAMPLES=1000 for a longer run); a private
# PostgreSQL for the run unless FUNDCORE_TEST_DATABASE_URL is set (two workers on one database).
# The browser tests (tests/pages) are make test-pages.
test-host: python-dev host-test-deps
	scripts/apt-install.sh poppler-utils
	$(WITH_PG) $(PY) -m pytest $(HOST_DIR)/tests -q --ignore=$(HOST_DIR)/tests/pages

# What the browser tests need: Debian's chromium, poppler-utils (pdftotext, for the documents the
# pages serve) and fonts when missing; Playwright (requirements-pages.txt), which drives that
# chromium (Playwright's own browser download is not used); axe-core (npm, into build/tools).
AXE_CORE_VERSION := 4.14.1
pages-deps: venv
	scripts/apt-install.sh chromium poppler-utils fonts-dejavu-core fonts-liberation2
	$(PIP) install -q --disable-pip-version-check -r $(HOST_DIR)/requirements-pages.txt
	@grep -qs '"version": "$(AXE_CORE_VERSION)"' build/tools/node_modules/axe-core/package.json \
		|| npm install --silent --no-audit --no-fund --save-exact --prefix build/tools axe-core@$(AXE_CORE_VERSION)

# The host's pages in a real browser (tests/pages): each test module starts its own host as
# make demo does (embedded store; mail and SMS kept as files in a temporary folder), Chromium
# walks the pages by roles and accessible names, axe-core checks WCAG 2.0/2.1 A and AA, and
# full-page screenshots land in build/screenshots/.
test-pages: python-dev pages-deps
	PYTHONPATH=$(HOST_DIR) $(PY) -m pytest $(HOST_DIR)/tests/pages -q

# schemathesis alone, against the running host.
test-schemathesis: python-dev host-test-deps
	$(PY) -m pytest $(HOST_DIR)/tests/test_schemathesis.py -q

# The field tests (examples/fastapi_host/tests/field): a primary and a hot standby on loopback,
# the primary SIGKILLed and the standby promoted under load from engine processes on a multi-host
# URL (synchronous, then asynchronous replication); two REST host instances behind nginx
# (examples/deploy/nginx.conf) restarted with SIGTERM and killed under load; the history checker
# and `fundcore verify` after each. Installs Debian's nginx when missing (its service not started).
.PHONY: test-field
test-field: python-dev host-test-deps
	scripts/apt-install.sh nginx
	$(CARGO) build --workspace $(CARGO_FEATURES) --bin fundcore
	$(WITH_PG) env FUNDCORE_FIELD_TESTS=1 FUNDCORE_BIN=$(CURDIR)/target/debug/fundcore $(PY) -m pytest $(HOST_DIR)/tests/field -q -rP

# ---------------------------------------------------------------- Benchmarks
# Everything in benches/: core (criterion + figure loops + footprint), Python fundcore vs the
# sqlite3 baseline, the PostgreSQL store from Rust and Python vs the psycopg baseline (on a
# private PostgreSQL server started for the run), REST host under wrk. Writes
# benches/results.json and benches/RESULTS.md. BENCH_ARGS=--quick for a shorter, rougher run;
# BENCH_ARGS=--skip=rest,footprint to leave parts out, BENCH_ARGS=--only=postgres for one part.
BENCH_ARGS ?=
bench: python-dev host-deps
	$(PIP) install -q --disable-pip-version-check -r benches/requirements.txt
	$(CARGO) bench -p fundcore-benches --no-run -q
	scripts/with-postgres.sh $(PY) benches/run_all.py $(BENCH_ARGS)

# The sqlite3 and psycopg baselines follow the same rules, so the comparisons in `make bench`
# are honest; the psycopg one is tested on a real PostgreSQL server.
.PHONY: test-baseline
test-baseline: venv
	$(PIP) install -q --disable-pip-version-check -r benches/requirements.txt
	$(WITH_PG) $(PY) -m pytest benches/baseline -q

# ---------------------------------------------------------------- aggregate targets
# One PostgreSQL cluster for the whole run, stopped at the end whatever happens.
test:
	$(WITH_PG) $(MAKE) --no-print-directory test-suites
	@echo "make test: all suites passed"

test-suites: check-snippets test-rust test-crate test-pooler test-python test-host test-pages test-field test-kotlin test-swift test-baseline
