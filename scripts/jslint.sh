#!/usr/bin/env bash
# Lints the dashboard's ES modules (web/js) with ESLint (eslint.config.js) and checks the
# API paths of web/js/endpoints.js against the OpenAPI document.
# ESLint comes from the npm registry at the versions pinned in package-lock.json; `npm ci`
# runs only when node_modules is missing or package.json / the lockfile changed, so
# re-runs are quick. Node.js >= 18.18 is needed: Debian's is installed when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "jslint: Node.js (>= 18.18) and npm are needed to lint the dashboard" >&2
    exit 2
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
  fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

stamp=node_modules/.installed-$(cat package.json package-lock.json | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
node_modules/.bin/eslint --max-warnings=0 web/js scripts/check-endpoints.mjs eslint.config.js
node scripts/check-endpoints.mjs
