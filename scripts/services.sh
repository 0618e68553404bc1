#!/usr/bin/env bash
# Start (or stop) the servers the backend tests need, on 127.0.0.1 and private ports:
#
#   scripts/services.sh up [RECORD]   start what is missing, wait until each answers, write
#                                     .services/env (sourced by scripts/test.sh); the names of the
#                                     services started by this call are appended to RECORD
#   scripts/services.sh down [NAME..] stop services started here (default: all of them)
#
# Redis and PostgreSQL come from Debian's packages (installed with apt-get when absent; needs
# root); MongoDB is the `mongoeco` wire-protocol server in a Python 3.13 venv. A service that
# cannot be had is reported and left out of .services/env: its tests then skip (or fail under CI).
# Idempotent: a service already answering on its port is reused.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=$ROOT/.services
REDIS_PORT=${TRIALBOOK_REDIS_PORT:-6391}
PG_PORT=${TRIALBOOK_PG_PORT:-5441}
MONGO_PORT=${TRIALBOOK_MONGO_PORT:-27031}
PY=$ROOT/${TRIALBOOK_VENV:-.venv}/bin/python

log() { echo "services: $*" >&2; }

port_open() { # port -> 0 if something listens on 127.0.0.1:port
    "$PY" - "$1" <<'EOF'
import socket, sys
s = socket.socket(); s.settimeout(0.5)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
}

wait_for() { # name command... : retry up to 30 s
    local name=$1; shift
    for _ in $(seq 1 60); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    log "$name did not answer within 30 s"
    return 1
}

apt_install() {
    if [ "$(id -u)" != 0 ]; then log "cannot install $* (not root)"; return 1; fi
    if [ ! -f "$DIR/.apt-updated" ]; then
        apt-get update -qq >/dev/null 2>&1 && touch "$DIR/.apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

record() { [ -n "${RECORD:-}" ] && echo "$1" >> "$RECORD"; return 0; }

# -- Redis -----------------------------------------------------------------------------------------
redis_up() {
    if redis_ping 2>/dev/null; then return 0; fi
    command -v redis-server >/dev/null || apt_install redis-server || return 1
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --dir "$DIR" \
        || return 1
    record redis
    wait_for redis redis_ping
}
redis_ping() {
    "$PY" -c "import redis,sys; redis.Redis(port=$REDIS_PORT, socket_timeout=1, socket_connect_timeout=1).ping()"
}

# -- PostgreSQL ------------------------------------------------------------------------------------
pg_bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
    done
    return 1
}
pg_up() {
    if pg_ping 2>/dev/null; then return 0; fi
    local bin
    bin=$(pg_bindir) || { apt_install postgresql && bin=$(pg_bindir); } || return 1
    local data=$DIR/pg
    if [ "$(id -u)" = 0 ]; then
        mkdir -p "$data" && chown postgres: "$data" && chmod 700 "$data"
        as_pg() { su postgres -s /bin/bash -c "$*"; }
    else
        mkdir -p "$data" && chmod 700 "$data"
        as_pg() { bash -c "$*"; }
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        as_pg "'$bin/initdb' -D '$data' -A trust -U postgres" >"$DIR/pg-initdb.log" 2>&1 || return 1
    fi
    as_pg "'$bin/pg_ctl' -D '$data' -o \"-p $PG_PORT -k '$data' -c listen_addresses=127.0.0.1 -c fsync=off\" -l '$data/log' start -w" \
        >/dev/null 2>&1 || { log "pg_ctl start failed (see $data/log)"; return 1; }
    record postgres
    wait_for postgres pg_ping
}
pg_ping() {
    "$PY" -c "import psycopg; psycopg.connect('postgresql://postgres@127.0.0.1:$PG_PORT/postgres', connect_timeout=2).close()"
}
pg_down() {
    local bin; bin=$(pg_bindir) || return 0
    [ -f "$DIR/pg/postmaster.pid" ] || return 0
    if [ "$(id -u)" = 0 ]; then
        su postgres -s /bin/bash -c "'$bin/pg_ctl' -D '$DIR/pg' stop -m fast -w" >/dev/null 2>&1
    else
        "$bin/pg_ctl" -D "$DIR/pg" stop -m fast -w >/dev/null 2>&1
    fi
}

# -- MongoDB (mongoeco) ----------------------------------------------------------------------------
mongo_python() {
    local c
    for c in python3.13 "$HOME"/.pyenv/versions/3.13.*/bin/python; do
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then
            echo "$c"; return 0
        fi
    done
    return 1
}
mongo_venv() { # the Python 3.13 venv with mongoeco; prints its python
    local venv=$DIR/mongo-venv
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import mongoeco, bson" 2>/dev/null; then
        if [ ! -x "$venv/bin/python" ]; then
            local py; py=$(mongo_python) || { log "no Python 3.13 for mongoeco"; return 1; }
            "$py" -m venv "$venv" >&2 || return 1
        fi
        "$venv/bin/pip" install -q "mongoeco>=4.11,<5" pymongo >"$DIR/mongo-pip.log" 2>&1 \
            || { log "pip install mongoeco failed (see $DIR/mongo-pip.log)"; return 1; }
    fi
    echo "$venv/bin/python"
}
mongo_up() {
    if mongo_ping 2>/dev/null; then return 0; fi
    local py; py=$(mongo_venv) || return 1
    nohup "$py" "$ROOT/scripts/mongoeco_server.py" "$MONGO_PORT" >"$DIR/mongo.log" 2>&1 &
    echo $! >"$DIR/mongo.pid"
    record mongo
    wait_for mongo mongo_ping
}
mongo_ping() {
    "$PY" -c "import pymongo; pymongo.MongoClient('mongodb://127.0.0.1:$MONGO_PORT', serverSelectionTimeoutMS=1000, connectTimeoutMS=1000).admin.command('ping')"
}

stop_pidfile() {
    local f=$1
    [ -f "$f" ] || return 0
    local pid; pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
    rm -f "$f"
}

# -- tools (not servers): graphviz's `dot` renders `.visualize()` of a step graph ---------------------
tools_up() {
    command -v dot >/dev/null || apt_install graphviz || log "graphviz unavailable: its test will skip"
}

up() {
    mkdir -p "$DIR"
    RECORD=${1:-}
    tools_up
    local env=$DIR/env
    : >"$env.tmp"
    if redis_up; then
        echo "export TRIALBOOK_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0" >>"$env.tmp"
    else log "Redis unavailable: its tests will skip"; fi
    if pg_up; then
        echo "export TRIALBOOK_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres" >>"$env.tmp"
    else log "PostgreSQL unavailable: its tests will skip"; fi
    if mongo_up; then
        echo "export TRIALBOOK_TEST_MONGO_URL=mongodb://127.0.0.1:$MONGO_PORT/trialbook_test" >>"$env.tmp"
    else log "MongoDB (mongoeco) unavailable: its tests will skip"; fi
    # the crash test starts a private mongoeco server of its own
    if py=$(mongo_venv); then
        echo "export TRIALBOOK_TEST_MONGOECO_PYTHON=$py" >>"$env.tmp"
    fi
    mv "$env.tmp" "$env"
    cat "$env"
}

down() {
    local names=("$@")
    [ ${#names[@]} -eq 0 ] && names=(redis postgres mongo)
    for name in "${names[@]}"; do
        case $name in
            redis) stop_pidfile "$DIR/redis.pid" ;;
            postgres) pg_down ;;
            mongo) stop_pidfile "$DIR/mongo.pid" ;;
        esac
    done
}

case "${1:-}" in
    up) shift; up "$@" ;;
    down) shift; down "$@" ;;
    *) echo "usage: $0 up [RECORD] | down [redis|postgres|mongo ...]" >&2; exit 2 ;;
esac
