#!/usr/bin/env bash
# Runs a command with a private, throwaway PostgreSQL cluster on loopback, then stops it.
#
#   scripts/with-postgres.sh <command> [args...]
#
# The command sees FUNDCORE_TEST_DATABASE_URL (a superuser URL on 127.0.0.1 and a free port)
# and FUNDCORE_TEST_PG_DATA / FUNDCORE_TEST_PG_BIN (to restart the server in tests). Installs
# the Debian package `postgresql` when no server binaries are found. The cluster lives in a
# temporary directory and is removed at the end, whatever the command's outcome.
set -euo pipefail

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

pg_bin=$(find_bin)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    echo "with-postgres: installing the Debian package postgresql" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    pg_bin=$(find_bin)
fi

work=$(mktemp -d /tmp/fundcore-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# PostgreSQL refuses to run as root: run the server as the `postgres` user when we are root.
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" = 0 ]; then chown postgres "$work"; fi

stop() {
    as_owner "$pg_bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap stop EXIT

as_owner "$pg_bin/initdb" -D "$work/data" -A trust -U postgres >/dev/null
cat >>"$work/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$work'
max_connections = 300
fsync = on
CONF
# One role must give a password, so tests can check how a wrong one is reported.
{ echo "host all fundcore_password_probe 127.0.0.1/32 scram-sha-256"; cat "$work/data/pg_hba.conf"; } \
    >"$work/data/pg_hba.new" && mv "$work/data/pg_hba.new" "$work/data/pg_hba.conf"
if [ "$(id -u)" = 0 ]; then chown postgres "$work/data/pg_hba.conf"; fi
as_owner "$pg_bin/pg_ctl" -D "$work/data" -l "$work/log" -w start >/dev/null

export FUNDCORE_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
export FUNDCORE_TEST_PG_DATA="$work/data"
export FUNDCORE_TEST_PG_BIN="$pg_bin"
echo "with-postgres: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
"$@"
