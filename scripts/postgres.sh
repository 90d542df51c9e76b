#!/usr/bin/env bash
# Local PostgreSQL for the asyncmigrate end-to-end tests.
#
#   scripts/postgres.sh          ensure installed, initialised and running; prints the sync URL last
#   scripts/postgres.sh stop     stop the server (the cluster stays on disk for the next start)
#   scripts/postgres.sh status   exit 0 when running
#   scripts/postgres.sh url      print the sync URL
#
# The server listens on 127.0.0.1 only. Settings:
#   ASYNCMIGRATE_PG_DIR   cluster, socket and log directory   (default /tmp/asyncmigrate-pg)
#   ASYNCMIGRATE_PG_PORT  TCP port                            (default 54329)
# Idempotent: running it again while the server is up only re-checks the role and database.
set -euo pipefail

PG_DIR="${ASYNCMIGRATE_PG_DIR:-/tmp/asyncmigrate-pg}"
PG_PORT="${ASYNCMIGRATE_PG_PORT:-54329}"
PG_DATA="$PG_DIR/data"
PG_SOCK="$PG_DIR/socket"
PG_LOG="$PG_DIR/postgres.log"
DB_NAME="asyncmigrate"
DB_USER="asyncmigrate"
DB_PASS="asyncmigrate"
URL="postgresql+psycopg2://${DB_USER}:${DB_PASS}@127.0.0.1:${PG_PORT}/${DB_NAME}"

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    local d
    if [ -x /usr/local/bin/pg_ctl ] && [ -x /usr/local/bin/initdb ] && [ -x /usr/local/bin/postgres ]; then
        dirname "$(readlink -f /usr/local/bin/pg_ctl)"
        return 0
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then
            echo "$d"
            return 0
        fi
    done
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    return 1
}

ensure_installed() {
    if BIN="$(find_bindir)"; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        log "PostgreSQL is not installed and this is not root: install the 'postgresql' package"
        exit 1
    fi
    log "installing PostgreSQL with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    BIN="$(find_bindir)" || { log "no pg_ctl after installing postgresql"; exit 1; }
}

# Run a command as the cluster owner: postgres refuses to run as root.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

ensure_owner() {
    if [ "$(id -u)" -ne 0 ]; then
        mkdir -p "$PG_DIR"
        return 0
    fi
    if ! id postgres >/dev/null 2>&1; then
        log "creating the postgres OS user"
        useradd --system --home-dir "$PG_DIR" --shell /bin/bash postgres
    fi
    mkdir -p "$PG_DIR"
    chown postgres: "$PG_DIR"
    chmod 700 "$PG_DIR"
}

is_running() {
    [ -n "${BIN:-}" ] || BIN="$(find_bindir)" || return 1
    [ -f "$PG_DATA/PG_VERSION" ] || return 1
    as_owner "$BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

psql_admin() {
    as_owner "$BIN/psql" -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
}

start() {
    ensure_installed
    ensure_owner
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        log "initialising a cluster in $PG_DATA"
        local pwfile
        pwfile="$(mktemp)"
        echo "postgres" >"$pwfile"
        chmod 644 "$pwfile"
        as_owner "$BIN/initdb" -D "$PG_DATA" -U postgres --pwfile="$pwfile" \
            --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
            || { rm -f "$pwfile"; log "initdb failed, see $PG_DIR/initdb.log"; cat "$PG_DIR/initdb.log" >&2; exit 1; }
        rm -f "$pwfile"
    fi
    as_owner mkdir -p "$PG_SOCK"
    if is_running; then
        log "already running (port $PG_PORT)"
    else
        log "starting on 127.0.0.1:$PG_PORT"
        as_owner "$BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_SOCK -c max_connections=200 -c autovacuum=off -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >&2 || { log "pg_ctl start failed; log follows"; tail -n 40 "$PG_LOG" >&2; exit 1; }
    fi
    local i
    for i in $(seq 1 60); do
        if as_owner "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then break; fi
        sleep 0.5
    done
    as_owner "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || { log "server did not become ready"; exit 1; }

    if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname='$DB_USER'")" != "1" ]; then
        psql_admin -c "CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASS'"
    fi
    # DROP DATABASE ... WITH (FORCE) terminates every backend on the database, an autovacuum
    # worker included, whose role only pg_signal_backend may signal: without it the drop fails
    # whenever autovacuum happens to be visiting a just-used test database.
    psql_admin -c "GRANT pg_signal_backend TO $DB_USER" >/dev/null
    if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'")" != "1" ]; then
        psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
    fi
    echo "$URL"
}

stop() {
    if BIN="$(find_bindir)" && is_running; then
        as_owner "$BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >&2
        log "stopped"
    else
        log "not running"
    fi
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) if is_running; then log "running on 127.0.0.1:$PG_PORT"; else log "not running"; exit 1; fi ;;
    url) echo "$URL" ;;
    *) echo "usage: $0 [start|stop|status|url]" >&2; exit 2 ;;
esac
