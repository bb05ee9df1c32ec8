#!/usr/bin/env bash
# The SAM CLI, from a venv of its own (.pilot/sam-venv) so that its pins never move the
# project's own packages; installed on first use, and again when SAM_CLI_VERSION changes
# (pinned, like the dependencies: a new SAM release must not change a build unasked).
# Arguments go to `sam`.
set -euo pipefail
cd "$(dirname "$0")/.."
SAM_CLI_VERSION=1.170.0
VENV=.pilot/sam-venv
if [ ! -f "$VENV/.sam-$SAM_CLI_VERSION" ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "aws-sam-cli==$SAM_CLI_VERSION"
  rm -f "$VENV"/.sam-*
  touch "$VENV/.sam-$SAM_CLI_VERSION"
fi
SAM_CLI_TELEMETRY=0 exec "$VENV/bin/sam" "$@"
