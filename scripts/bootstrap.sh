#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install trialbook with its test dependencies.
# Re-running is cheap: nothing is reinstalled while pyproject.toml is unchanged.
#
#   TRIALBOOK_PYTHON=/path/to/python      the interpreter of a new venv (default: the newest
#                                         python3.1x on PATH that is >= 3.11)
#   TRIALBOOK_PYTHON_VERSION=3.13         that exact version instead: python3.13 on PATH, else
#                                         pyenv's ~/.pyenv/versions/3.13.*
#   TRIALBOOK_VENV=.venv-py313            the venv's folder (default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TRIALBOOK_VENV:-.venv}

pick_python() {
    local want=${TRIALBOOK_PYTHON_VERSION:-}
    if [ -n "$want" ]; then
        for candidate in "${TRIALBOOK_PYTHON:-}" "python$want" "$HOME"/.pyenv/versions/"$want".*/bin/python; do
            [ -n "$candidate" ] || continue
            if command -v "$candidate" >/dev/null 2>&1 &&
                [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ]; then
                echo "$candidate"
                return
            fi
        done
        echo "error: no Python $want found (python$want on PATH or ~/.pyenv/versions/$want.*);" \
            "install it or set TRIALBOOK_PYTHON to its path" >&2
        exit 1
    fi
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

stamp=$VENV/.trialbook-installed
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ]; then
    echo "bootstrap: creating $VENV and installing trialbook with its test extras" \
        "(numpy, pandas, dask, pytest, ...); this takes a few minutes, once: later runs are fast" >&2
elif [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: pyproject.toml changed: updating trialbook and its test extras in $VENV" >&2
fi
if [ ! -x "$VENV/bin/python" ]; then
    python=$(pick_python)
    "$python" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
    "$VENV/bin/python" -m pip install --quiet -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
    # issue 21: PyTorch for the pytorch model flavour's test, on Python 3.11 only, and only the
    # pinned CPU wheel (a bare `torch` would download GBs of CUDA libraries); elsewhere that test
    # is marked optional and skips
    if "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        "$VENV/bin/python" -m pip install --quiet "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
        # issue 17: the torch-based integrations' tests, the tested versions, after torch and with
        # torch pinned in the same command (so none of them replaces the CPU wheel)
        "$VENV/bin/python" -m pip install --quiet "torch==2.13.0" "lightning==2.6.6" "keras==3.15.1" \
            "transformers==5.24.0" "accelerate==1.16.0" 2>&1 | grep -v "^WARNING: Location" || true
    fi
    "$VENV/bin/python" -c "import trialbook, pytest, hypothesis" # fail loudly if the install failed
    echo "$want" > "$stamp"
fi
