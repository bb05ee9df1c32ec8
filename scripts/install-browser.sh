#!/usr/bin/env bash
# Installs the headless browser of the dashboard's end-to-end tests (tests/e2e):
# Debian's chromium package, only when it is missing. Playwright drives it from
# Python; its own browser download (`playwright install`) is never used.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: no chromium and no apt-get; install Chromium and set CHROMIUM=/path/to/chromium" >&2
  exit 0  # the browser tests skip themselves with the reason
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
echo "install-browser: chromium installed at $(command -v chromium)"
