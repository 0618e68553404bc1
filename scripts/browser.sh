#!/usr/bin/env bash
# Make Debian's `chromium` available for the browser tests (tests/test_web_browser.py).
# Idempotent and quiet: does nothing when `chromium` is already on PATH. Needs root (or sudo)
# for apt-get; without it, prints why and exits 0 so the browser tests skip with that reason.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "scripts/browser.sh: chromium is missing and apt-get needs root; browser tests will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "scripts/browser.sh: chromium install failed" >&2; exit 1; }
