#!/usr/bin/env bash
# The SAM CLI, from a venv of its own (.pilot/sam-venv) so that its pins never move the
# project's own packages; installed on first use. Arguments go to `sam`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.pilot/sam-venv
if [ ! -x "$VENV/bin/sam" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet aws-sam-cli
fi
SAM_CLI_TELEMETRY=0 exec "$VENV/bin/sam" "$@"
