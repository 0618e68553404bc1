#!/usr/bin/env bash
# Run the whole test suite. Starts the services the tests need (see scripts/services.sh).
# Under CI=true no test may be skipped for a missing service.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${CI:-}" = "true" ]; then
    export TRIALBOOK_TEST_REQUIRE_ALL=1
fi
mkdir -p test-artifacts
status=0
.venv/bin/python -m pytest "$@" || status=$?
exit $status
