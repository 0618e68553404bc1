#!/usr/bin/env bash
# Run the whole test suite. Starts the services the tests need (scripts/services.sh: PostgreSQL,
# Redis, MongoDB; scripts/slurm.sh: a single-node Slurm cluster; scripts/browser.sh: Chromium)
# and stops, at the end, those this run started (TRIALBOOK_KEEP_SERVICES=1 keeps them running). pytest's exit code is the script's.
# TRIALBOOK_VENV names the venv whose Python runs the tests (default .venv; .venv-py313 for
# `make test-py313`).
# Under CI=true no test may be skipped for a missing service.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${CI:-}" = "true" ]; then
    export TRIALBOOK_TEST_REQUIRE_ALL=1
fi
mkdir -p test-artifacts .services
started=$(mktemp)
slurm_started=0
cleanup() {
    if [ "${TRIALBOOK_KEEP_SERVICES:-}" != "1" ]; then
        if [ -s "$started" ]; then
            # shellcheck disable=SC2046 # one service name per line
            bash scripts/services.sh down $(cat "$started") || true
        fi
        if [ "$slurm_started" = 1 ]; then
            bash scripts/slurm.sh down || true
        fi
    fi
    rm -f "$started"
}
trap cleanup EXIT
bash scripts/services.sh up "$started" >/dev/null || true
if [ -f .services/env ]; then
    # shellcheck disable=SC1091
    source .services/env
fi
# Slurm (the launcher's tests, issue 6): reuse a running cluster, else start one and stop it after.
if [ -f scripts/slurm.sh ]; then
    pidfile=.services/slurm/slurmctld.pid
    if ! { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }; then
        slurm_started=1
    fi
    conf=$(bash scripts/slurm.sh up | sed -n 's/^export TRIALBOOK_TEST_SLURM_CONF=//p') || true
    if [ -n "$conf" ]; then
        export TRIALBOOK_TEST_SLURM_CONF=$conf
    fi
fi
# Chromium for the web UI's browser tests (installed with apt-get when missing).
bash scripts/browser.sh || true
status=0
"${TRIALBOOK_VENV:-.venv}/bin/python" -m pytest "$@" || status=$?
exit $status
