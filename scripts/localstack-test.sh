#!/usr/bin/env bash
# Runs the integration tests against LocalStack's open-source runtime started
# directly on this host (no Docker): the same tests that run against moto by default.
# Needs Python 3.13 (LocalStack refuses 3.11/3.12); first run installs ~500 MB (~95 s).
set -euo pipefail
cd "$(dirname "$0")/.."
# A candidate counts only if it really runs as 3.13 (a pyenv shim may exist and refuse).
PY313="${PY313:-}"
if [ -z "$PY313" ]; then
  for candidate in python3.13 /root/.pyenv/versions/3.13.*/bin/python3.13; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
      PY313="$candidate"; break
    fi
  done
fi
if [ -z "$PY313" ]; then
  echo "localstack-test: Python 3.13 is needed (set PY313=/path/to/python3.13)" >&2
  exit 2
fi
LS_HOME=.pilot/localstack
if [ ! -x "$LS_HOME/venv/bin/python" ]; then
  "$PY313" -m venv "$LS_HOME/venv"
  "$LS_HOME/venv/bin/pip" install --quiet 'localstack-core[runtime]==2026.3.0' 'cbor2<6' \
    'pyopenssl<26' 'cryptography<47' service_identity
fi
mkdir -p "$LS_HOME/fs" "$LS_HOME/tmp"
PORT="${LOCALSTACK_PORT:-4566}"
OVERRIDE_IN_DOCKER=0 GATEWAY_LISTEN="127.0.0.1:$PORT" DNS_ADDRESS=0 \
  FILESYSTEM_ROOT="$PWD/$LS_HOME/fs" TMPDIR="$PWD/$LS_HOME/tmp" SKIP_SSL_CERT_DOWNLOAD=1 \
  DISABLE_EVENTS=1 EAGER_SERVICE_LOADING=1 SERVICES=sqs,events,logs,iam,sts,secretsmanager,ssm,ses,cloudwatch \
  "$LS_HOME/venv/bin/python" -m localstack.runtime.main > "$LS_HOME/localstack.log" 2>&1 &
LS_PID=$!
trap 'kill $LS_PID 2>/dev/null || true; wait $LS_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 90); do
  curl -sf "http://127.0.0.1:$PORT/_localstack/health" >/dev/null && break
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/_localstack/health" >/dev/null || {
  echo "localstack-test: LocalStack did not start; see $LS_HOME/localstack.log" >&2; exit 1; }
scripts/setup.sh
AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" .venv/bin/pytest -q tests/integration "$@"
