#!/usr/bin/env bash
# Run the whole test suite. Starts the services the tests need (see scripts/services.sh) and
# stops, at the end, those this run started (TRIALBOOK_KEEP_SERVICES=1 keeps them running).
# Under CI=true no test may be skipped for a missing service.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${CI:-}" = "true" ]; then
    export TRIALBOOK_TEST_REQUIRE_ALL=1
fi
mkdir -p test-artifacts .services
started=$(mktemp)
cleanup() {
    if [ "${TRIALBOOK_KEEP_SERVICES:-}" != "1" ] && [ -s "$started" ]; then
        bash scripts/services.sh down $(cat "$started") || true
    fi
    rm -f "$started"
}
trap cleanup EXIT
bash scripts/services.sh up "$started" >/dev/null || true
if [ -f .services/env ]; then
    # shellcheck disable=SC1091
    source .services/env
fi
status=0
.venv/bin/python -m pytest "$@" || status=$?
exit $status
