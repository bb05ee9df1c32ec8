#!/usr/bin/env bash
# checkov (the IaC scanner behind `make iac-scan`), from a venv of its own
# (.pilot/checkov-venv): it pins boto3, packaging and networkx to versions older than the
# project's, so it cannot share .venv. Installed on first use; arguments go to `checkov`.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=3.3.30
VENV=.pilot/checkov-venv
if ! "$VENV/bin/checkov" --version 2>/dev/null | grep -qx "$VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "checkov==$VERSION"
fi
exec "$VENV/bin/checkov" "$@"
