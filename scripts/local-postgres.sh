#!/usr/bin/env bash
# A private PostgreSQL cluster for trying Gatehouse's PostgreSQL store on one machine (not for production):
#
#   scripts/local-postgres.sh start [DIR] [PORT]   # initdb into DIR (default data/pg) if needed, start on 127.0.0.1:PORT
#                                                  # (default 5433); prints the store URL. User gatehouse, database gatehouse.
#   scripts/local-postgres.sh stop  [DIR]          # stop it at once (as a crash looks to Gatehouse)
#
# Debian's postgresql package provides the programs (scripts/install-deps.sh installs it). PostgreSQL refuses to
# run as root, so as root the cluster belongs to the postgres user. The password is generated once into
# DIR/password.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMMAND="${1:?start or stop}"
DIR="$(mkdir -p "${2:-$ROOT/data/pg}" && cd "${2:-$ROOT/data/pg}" && pwd)"
PORT="${3:-5433}"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$BIN/initdb" ] || { echo "PostgreSQL is not installed; run scripts/install-deps.sh" >&2; exit 1; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$COMMAND" in
start)
    if [ ! -f "$DIR/cluster/PG_VERSION" ]; then
        [ -f "$DIR/password" ] || (umask 077; openssl rand -hex 16 >"$DIR/password")
        [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$DIR"
        as_owner "$BIN/initdb" -D "$DIR/cluster" -U gatehouse --pwfile="$DIR/password" --auth-local=trust \
            --auth-host=scram-sha-256 -E UTF8 --no-instructions >/dev/null
    fi
    if ! as_owner "$BIN/pg_ctl" -D "$DIR/cluster" status >/dev/null 2>&1; then
        as_owner "$BIN/pg_ctl" -D "$DIR/cluster" -l "$DIR/log" -w -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1" start >/dev/null
    fi
    as_owner "$BIN/psql" -h "$DIR" -p "$PORT" -U gatehouse -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'gatehouse'" \
        | grep -q 1 || as_owner "$BIN/psql" -h "$DIR" -p "$PORT" -U gatehouse -d postgres -qc "CREATE DATABASE gatehouse"
    echo "postgres://gatehouse:$(cat "$DIR/password")@127.0.0.1:$PORT/gatehouse?sslmode=disable"
    ;;
stop)
    as_owner "$BIN/pg_ctl" -D "$DIR/cluster" -m immediate -w stop >/dev/null
    ;;
*)
    echo "usage: scripts/local-postgres.sh start|stop [DIR] [PORT]" >&2
    exit 1
    ;;
esac
