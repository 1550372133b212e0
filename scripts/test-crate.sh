#!/usr/bin/env bash
# The `fundcore` crate as a user gets it: `cargo publish --dry-run` packages and builds it, then a
# new project depends on the packaged crate with the line core/README.md shows and runs the
# quickstart with the PostgreSQL store's feature on.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
version="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "fundcore"))')"

# A clean clone has nothing to allow; a working tree being edited has.
cargo publish --dry-run -p fundcore --allow-dirty

project="$(mktemp -d)"
trap 'rm -rf "$project"' EXIT
mkdir -p "$project/src"
# Exactly the dependency core/README.md shows, served from the packaged crate instead of crates.io.
dependency="$(python3 - "$root/core/README.md" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
block = re.search(r"```toml\n(\[dependencies\]\n.*?)```", text, re.S)
if not block:
    sys.exit("core/README.md shows no [dependencies] block")
print(block.group(1).strip())
PY
)"
cat > "$project/Cargo.toml" <<TOML
[package]
name = "uses-fundcore"
version = "0.0.0"
edition = "2024"
publish = false

$dependency

[patch.crates-io]
fundcore = { path = "$root/target/package/fundcore-$version" }
TOML
cp core/examples/quickstart.rs "$project/src/main.rs"
# The workspace's lock and target directory: the same dependency versions, already built.
cp Cargo.lock "$project/Cargo.lock"
(cd "$project" && CARGO_TARGET_DIR="$root/target" cargo run -q)
echo "test-crate: fundcore $version packages, builds, and runs as a dependency"
