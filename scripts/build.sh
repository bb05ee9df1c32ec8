#!/usr/bin/env bash
# `make build [ARCH=arm64|x86_64]`: `sam build` without Docker, for the template's runtime
# (python3.13) and the chosen architecture, then every function's own code compiled to .pyc
# by Python 3.13 (the layers compile theirs in their Makefiles).
#   ARCH=arm64 (default)  -> .aws-sam/build          what `sam deploy` ships
#   ARCH=x86_64           -> .aws-sam/build-x86_64   a variant this host can execute
#                            (`pilot run --from-build`, cold-start timing)
# BUILD_DIR overrides the output folder.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH="${ARCH:-arm64}"
case "$ARCH" in
  arm64) default_dir=.aws-sam/build ;;
  x86_64) default_dir=.aws-sam/build-x86_64 ;;
  *) echo "build: ARCH must be arm64 or x86_64, not '$ARCH'" >&2; exit 2 ;;
esac
BUILD_DIR="${BUILD_DIR:-$default_dir}"
PY313="$(scripts/py313.sh)"
UV="$PWD/.venv/bin/uv"
[ -x "$UV" ] || UV="$(command -v uv)" || { echo "build: uv is needed (make setup)" >&2; exit 2; }
rm -rf "$BUILD_DIR"; mkdir -p "$(dirname "$BUILD_DIR")"
started=$(date +%s)
# The layers' Makefiles read PILOT_*; SAM passes its environment on to make. --no-cached:
# SAM's cache key is the source folder, not PILOT_ARCH; uv's own download cache keeps the
# rebuild to seconds.
PILOT_ARCH="$ARCH" PILOT_UV="$UV" PILOT_PY313="$PY313" scripts/sam.sh build --no-cached \
  --template template.yaml --build-dir "$BUILD_DIR" --parameter-overrides "Architecture=$ARCH" >"$BUILD_DIR.log" 2>&1 || {
  cat "$BUILD_DIR.log" >&2; echo "build: sam build failed (log: $BUILD_DIR.log)" >&2; exit 1; }
# Function folders (the ones without a layer's python/ root): drop caches a developer's
# runs left in functions/*/ and compile for the runtime. unchecked-hash: zip keeps only
# 2-second mtimes, which would make timestamp-checked .pyc stale on Lambda.
for dir in "$BUILD_DIR"/*/; do
  [ -d "$dir/python" ] && continue
  find "$dir" -name __pycache__ -prune -exec rm -rf {} +
  "$PY313" -m compileall -q --invalidation-mode unchecked-hash "$dir" >/dev/null
done
# What was built, for scripts/check-artifacts.py (not shipped: sam deploy takes the
# template's CodeUri/ContentUri folders only).
cat >"$BUILD_DIR/pilot-build.json" <<JSON
{"architecture": "$ARCH", "runtime": "python3.13",
 "lock_sha256": "$(sha256sum layers/deps/requirements.lock | cut -d' ' -f1)"}
JSON
echo "build: $ARCH artifacts in $BUILD_DIR ($(( $(date +%s) - started )) s, Python $("$PY313" -c 'import platform; print(platform.python_version())'))"
