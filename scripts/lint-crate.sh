#!/usr/bin/env bash
# The crate's own lint (make lint): no warning with default features, the docs as docs.rs builds
# them, the minimum supported Rust version, and cargo deny (advisories, licences, bans, sources).
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$PWD/build/tools"

# Default features (the embedded store alone, as the mobile builds use it): not one warning.
cargo clippy -q -p fundcore --lib --examples -- -D warnings

# docs.rs: every feature, `--cfg docsrs` (feature-gated items marked), warnings are errors.
# A nightly toolchain, as docs.rs uses; its own target directory, not to disturb the stable one.
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
RUSTDOCFLAGS="--cfg docsrs -D warnings" CARGO_TARGET_DIR=target/docsrs \
  cargo +nightly doc -q -p fundcore --all-features --no-deps
page=target/docsrs/doc/fundcore/struct.Engine.html
grep -q 'Available on <strong>crate feature <code>postgres</code></strong> only' "$page" \
  || { echo "lint-crate: $page does not mark Engine::connect as needing the postgres feature" >&2; exit 1; }

# The MSRV is the workspace's rust-version, built with exactly that toolchain.
msrv="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)"
toolchain="$msrv.0"
[[ "$msrv" == *.*.* ]] && toolchain="$msrv"
rustup toolchain list | grep -q "^$toolchain-" || rustup toolchain install "$toolchain" --profile minimal
cargo "+$toolchain" check -q -p fundcore --all-features --lib --bins --examples

# cargo deny: the RustSec database comes from github.com; where that cannot be reached and no
# copy was fetched before, the advisories are reported as not checked, loudly, and the rest runs.
[ -x "$tools/bin/cargo-deny" ] || cargo install -q cargo-deny --version 0.20.2 --locked --root "$tools"
deny="$tools/bin/cargo-deny"
if "$deny" fetch db >/dev/null 2>&1 || ls -d "${CARGO_HOME:-$HOME/.cargo}"/advisory-dbs/advisory-db-* >/dev/null 2>&1; then
  "$deny" --offline check
else
  echo "lint-crate: ADVISORIES NOT CHECKED: the RustSec advisory database (github.com) cannot be reached from this machine" >&2
  "$deny" --offline check licenses bans sources
fi
echo "lint-crate: clean"
