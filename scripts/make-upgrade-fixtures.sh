#!/usr/bin/env bash
# Writes the upgrade fixtures of the current version of the `fundcore` crate:
#
#   scripts/make-upgrade-fixtures.sh [--replace]
#
# core/tests/fixtures/v<version>/ gets an embedded store (embedded.tar.gz, the sled directory),
# a PostgreSQL database as plain SQL (postgres.sql, pg_dump of the private server's own major
# version), and what an engine read back from each (embedded.txt, postgres.txt), all filled with
# the same story by the ignored test `write_the_fixtures` of core/tests/upgrade.rs, on a private
# throwaway PostgreSQL (scripts/with-postgres.sh). Then core/tests/upgrade.rs runs on every
# version's fixtures.
#
# Run it when a release changes the embedded format or the PostgreSQL schema, before the release:
# the new directory sits beside the older ones, which are never rewritten (a store a release wrote
# must open in every later one). An existing directory is replaced only with --replace, while its
# version is not released yet.
set -euo pipefail
cd "$(dirname "$0")/.."

version="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "fundcore"))')"
dir="core/tests/fixtures/v$version"

if [ -e "$dir" ]; then
    if [ "${1:-}" != "--replace" ]; then
        echo "make-upgrade-fixtures: $dir exists; fixtures of a released version are never rewritten" >&2
        echo "(pass --replace only while $version is unreleased)" >&2
        exit 1
    fi
    rm -rf "$dir"
fi

scripts/with-postgres.sh cargo test -q -p fundcore --features postgres --test upgrade -- \
    --ignored --exact write_the_fixtures
scripts/with-postgres.sh cargo test -q -p fundcore --features postgres --test upgrade
echo "make-upgrade-fixtures: wrote $dir:"
ls -l "$dir"
