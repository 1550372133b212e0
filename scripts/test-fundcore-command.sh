#!/usr/bin/env bash
# The commands README.md, core/README.md and docs/ show for building and running the `fundcore`
# command and the Rust examples, run as they are written (check_snippets requires every such
# command shown to be here). Needs a PostgreSQL server (scripts/with-postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FUNDCORE_TEST_DATABASE_URL:?run under scripts/with-postgres.sh}"
server="${FUNDCORE_TEST_DATABASE_URL%/*}"
suffix="cmd_$$"
work="$(mktemp -d)"
cleanup() {
  for db in "source_$suffix" "target_$suffix"; do
    psql -qAt "$FUNDCORE_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
for db in "source_$suffix" "target_$suffix"; do
  psql -qAt "$FUNDCORE_TEST_DATABASE_URL" -c "CREATE DATABASE $db" >/dev/null
done

# The Rust examples (README.md, core/README.md, docs/stores.md), the PostgreSQL one filling the
# source database.
cargo run --example quickstart >/dev/null
FUNDCORE_DATABASE_URL="$server/source_$suffix" \
cargo run -p fundcore --features postgres --example postgres >/dev/null

cargo build --release -p fundcore --features postgres --bin fundcore
export PATH="$PWD/target/release:$PATH"

cd "$work"
export FUNDCORE_DATABASE_URL="$server/target_$suffix"
# An embedded store to start from: the example's database copied into data/fundcore.
fundcore copy --from "$server/source_$suffix" --to data/fundcore
fundcore copy --from data/fundcore --to "$FUNDCORE_DATABASE_URL"

fundcore verify data/fundcore
fundcore verify "$FUNDCORE_DATABASE_URL"
fundcore outbox "$FUNDCORE_DATABASE_URL"
fundcore outbox retry-failed "$FUNDCORE_DATABASE_URL"

# A backup of the embedded store (docs/stores.md, Backups), checked; a second one to the same
# destination is refused with exit status 1 and leaves the first as it was.
mkdir -p backups
fundcore backup data/fundcore "backups/fundcore-$(date +%F)"
fundcore verify "backups/fundcore-$(date +%F)"
backup="$(ls -d backups/fundcore-*)"
status=0
fundcore backup data/fundcore "$backup" 2>/dev/null || status=$?
[ "$status" -eq 1 ] || { echo "backup to an existing destination: exit $status" >&2; exit 1; }
fundcore verify "$backup" >/dev/null

# A store that does not exist is refused with exit status 3, and nothing is created.
status=0
fundcore verify "$work/nothing-here" 2>/dev/null || status=$?
[ "$status" -eq 3 ] && [ ! -e "$work/nothing-here" ] || { echo "verify of no store: exit $status" >&2; exit 1; }
echo "test-fundcore-command: every documented command ran"
