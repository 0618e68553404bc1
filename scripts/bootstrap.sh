#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install trialbook with its test dependencies.
# Re-running is cheap: nothing is reinstalled while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
    for candidate in "${TRIALBOOK_PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "error: trialbook needs Python 3.11 or newer (set TRIALBOOK_PYTHON to its path)" >&2
    exit 1
}

stamp=.venv/.trialbook-installed
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ]; then
    echo "bootstrap: creating .venv and installing trialbook with its test extras" \
        "(numpy, pandas, dask, pytest, ...); this takes a few minutes, once: later runs are fast" >&2
elif [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: pyproject.toml changed: updating trialbook and its test extras in .venv" >&2
fi
if [ ! -x .venv/bin/python ]; then
    "$(pick_python)" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -m pip install --quiet -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -c "import trialbook, pytest, hypothesis" # fail loudly if the install failed
    echo "$want" > "$stamp"
fi
