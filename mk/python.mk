# The Python binding (bindings-python/): the distribution, stubs, tests. Included by the Makefile.
.PHONY: dist dist-wheel dist-sdist dist-check dist-tools

# dist/ (not in git): one abi3 wheel for every CPython >= 3.10 on glibc >= 2.17, and the sdist.
PY_DIST := dist
# The pinned tools of `make dist` / `make dist-check` (zig, auditwheel, abi3audit, twine), in a venv
# of their own so .venv keeps its pins.
DIST_VENV := target/dist-tools
# maturin runs zig as `python3 -m ziglang`: that venv first on PATH makes it the pinned one.
WITH_ZIG := PATH="$(CURDIR)/$(DIST_VENV)/bin:$$PATH"
# `make test-python`: the whole suite on each of these CPythons (pyenv versions), against the wheel
# installed into a fresh venv; the sdist is built and imported on the oldest one.
PY_TEST_VERSIONS := 3.10.13 3.11.7 3.12.1 3.13.0
PY_SDIST_VERSION := 3.10.13

# .venv with the pinned build/test tools (idempotent: creates the venv only if missing).
venv:
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r bindings-python/requirements-dev.txt

dist-tools:
	@test -x $(DIST_VENV)/bin/python || python3 -m venv $(DIST_VENV)
	$(DIST_VENV)/bin/pip install -q --disable-pip-version-check -r bindings-python/requirements-dist.txt

# Built into a directory of its own, then renamed into dist/ (stale versions removed first): a
# `make python-dev` of someone else never leaves a run without a wheel or with a half-written one.
PUBLISH_INTO_DIST = mkdir -p $(PY_DIST) && made=$$(basename "$$out"/$(1)) && \
	find $(PY_DIST) -maxdepth 1 -name '$(1)' ! -name "$$made" -delete && mv "$$out/$$made" $(PY_DIST)/

# The one release build: pyo3's abi3-py310 (stable ABI) and zig linking against glibc 2.17, so the
# wheel is cp310-abi3-manylinux_2_17_x86_64 (tagged manylinux2014 too, for older pips).
dist-wheel: venv dist-tools
	mkdir -p target && out=$$(mktemp -d target/dist-wheel.XXXXXX) && trap 'rm -rf "$$out"' EXIT && \
	$(WITH_ZIG) $(VENV)/bin/maturin build --release --zig --compatibility manylinux_2_17 \
		--manifest-path bindings-python/Cargo.toml --out "$$out" && \
	$(call PUBLISH_INTO_DIST,fundcore-*.whl)

# The sdist carries the core crate and a workspace of the two crates (maturin rewrites it).
dist-sdist: venv
	mkdir -p target && out=$$(mktemp -d target/dist-sdist.XXXXXX) && trap 'rm -rf "$$out"' EXIT && \
	$(VENV)/bin/maturin sdist --manifest-path bindings-python/Cargo.toml --out "$$out" && \
	$(call PUBLISH_INTO_DIST,fundcore-*.tar.gz)

dist: dist-wheel dist-sdist

# What dist/ holds is what it claims (bindings-python/scripts/check_dist.py): no glibc symbol
# newer than 2.17 (objdump -T) and auditwheel show agrees, abi3audit --strict, twine check
# --strict, the sdist holds the crates it builds. A few seconds after `make dist`.
dist-check: dist
	$(DIST_VENV)/bin/python bindings-python/scripts/check_dist.py $(PY_DIST)

# The dist wheel installed into .venv (the same build users get; the host, demos and benchmarks
# use it). A no-op rebuild takes seconds.
python-dev: dist-wheel
	$(PIP) install -q --disable-pip-version-check --force-reinstall --no-deps $(PY_DIST)/fundcore-*-abi3-*.whl

# The stubs' docstrings (what IDEs show) from the built module's, which pyo3 makes from the Rust
# doc comments; tests/test_stub_docs.py fails while they differ.
python-stubs: python-dev
	$(PY) bindings-python/scripts/sync_stub_docs.py

# Against what users install (bindings-python/scripts/test_installed.sh): the whole suite, on both
# stores, on every CPython of PY_TEST_VERSIONS from a fresh venv with the wheel, run from a copy of
# the tests outside the source tree (stubtest included); then the sdist built (dev profile) and
# imported in another fresh venv. A private PostgreSQL unless FUNDCORE_TEST_DATABASE_URL is set.
# On 2 shared cores: about 1 to 1.5 min per CPython (venv, install, suite) and 1.5 min for the sdist.
# PY_TEST_VERSIONS=3.12.1 for one CPython.
test-python: dist
	$(WITH_PG) bindings-python/scripts/test_installed.sh $(PY_DIST) bindings-python/tests $(PY_SDIST_VERSION) $(PY_TEST_VERSIONS)
