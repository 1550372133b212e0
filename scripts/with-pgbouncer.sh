#!/usr/bin/env bash
# Runs a command with PgBouncer in transaction pooling mode in front of the test PostgreSQL
# server, then stops it.
#
#   scripts/with-pgbouncer.sh <command> [args...]
#
# Needs FUNDCORE_TEST_DATABASE_URL (a superuser URL on 127.0.0.1, as scripts/with-postgres.sh
# exports); without it, runs itself inside scripts/with-postgres.sh. The command sees
# FUNDCORE_TEST_POOLER_URL: the same URL through PgBouncer on 127.0.0.1 and a free port. Every
# database of the server is reachable through it by name (`* =`), one pool per database.
# Installs the Debian package `pgbouncer` when missing. PgBouncer runs as the `postgres` user
# (it refuses root) from a temporary directory, removed at the end whatever the outcome.
#
# After every transaction the pooler runs DISCARD ALL on the server connection
# (server_reset_query_always), so a statement prepared in one transaction is never found in the
# next, as in a busy pool where the next transaction lands on another server connection: a
# client relying on named prepared statements fails every time, not only under load.
# FUNDCORE_PGBOUNCER_DISCARD=0 leaves that out (PgBouncer's defaults, as for the benchmarks).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${FUNDCORE_TEST_DATABASE_URL:-}" ]; then
    exec "$here/with-postgres.sh" "$here/with-pgbouncer.sh" "$@"
fi

if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
    "$here/apt-install.sh" pgbouncer
fi
pgbouncer=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)

# postgresql://user@127.0.0.1:port/db
server=${FUNDCORE_TEST_DATABASE_URL#*@}
server=${server%%/*}
pg_host=${server%:*}
pg_port=${server##*:}
user=${FUNDCORE_TEST_DATABASE_URL#*://}
user=${user%%@*}
user=${user%%:*}

work=$(mktemp -d /tmp/fundcore-pgbouncer.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
    if [ -f "$work/pgbouncer.pid" ]; then
        pid=$(cat "$work/pgbouncer.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap stop EXIT

# With auth_type = trust PgBouncer still looks the user up in auth_file.
echo "\"$user\" \"\"" >"$work/userlist.txt"
cat >"$work/pgbouncer.ini" <<INI
[databases]
* = host=$pg_host port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 20
$(if [ "${FUNDCORE_PGBOUNCER_DISCARD:-1}" != 0 ]; then
    printf 'server_reset_query = DISCARD ALL\nserver_reset_query_always = 1\n'
fi)
ignore_startup_parameters = extra_float_digits,options
pidfile = $work/pgbouncer.pid
logfile = $work/pgbouncer.log
INI
if [ "$(id -u)" = 0 ]; then chown -R postgres "$work"; fi
as_owner "$pgbouncer" -d -q "$work/pgbouncer.ini"

# Waits (at most 10 s) until it accepts connections.
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
done
if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "with-pgbouncer: PgBouncer did not start:" >&2
    cat "$work/pgbouncer.log" >&2 || true
    exit 1
fi

export FUNDCORE_TEST_POOLER_URL="postgresql://$user@127.0.0.1:$port/postgres"
echo "with-pgbouncer: PgBouncer $("$pgbouncer" --version | head -n 1 | awk '{print $2}') (transaction pooling) on 127.0.0.1:$port in front of $server" >&2
"$@"
