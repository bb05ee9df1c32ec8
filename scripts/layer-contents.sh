#!/usr/bin/env bash
# Builds the SharedLayer exactly as `sam build` does (no Docker needed: it holds only our
# own Python package) and checks what Lambda would get: the amazon_pilot package and
# nothing of the local tooling (devtools/pilot_dev, moto, pgserver, httptools).
#   scripts/layer-contents.sh          # check, print a summary
#   scripts/layer-contents.sh --list   # also print every file of the layer
set -euo pipefail
cd "$(dirname "$0")/.."
out=.pilot/layer-build
rm -rf "$out"
mkdir -p "$out"
scripts/sam.sh build SharedLayer --template template.yaml \
  --build-dir "$out/build" --cache-dir "$out/cache" >"$out.log" 2>&1 || {
  cat "$out.log" >&2; echo "layer-contents: sam build SharedLayer failed" >&2; exit 1; }
root="$out/build/SharedLayer/python"
find "$root" -type f | sed "s#^$root/##" | sort >"$out/files.txt"
if [ "${1:-}" = "--list" ]; then cat "$out/files.txt"; fi
status=0
tops=$(cut -d/ -f1 "$out/files.txt" | sort -u | tr '\n' ' ')
if [ "$tops" != "amazon_pilot " ]; then
  echo "layer-contents: the layer holds more than amazon_pilot/: $tops" >&2; status=1
fi
if grep -E '(^|/)(pilot_dev|runtime|standins|tests)(/|$)' "$out/files.txt"; then
  echo "layer-contents: local tooling in the layer (above)" >&2; status=1
fi
if grep -rlE '^\s*(from|import)\s+(pilot_dev|moto|pgserver|httptools|localstack_client)\b' \
    "$root" --include='*.py'; then
  echo "layer-contents: shipped modules import local-only packages (above)" >&2; status=1
fi
# The migrations the layer ships are the ones template.yaml's SchemaMigrations names.
if ! .venv/bin/python - "$root/amazon_pilot/migrations" <<'PY'
import sys
from pathlib import Path
from amazon_pilot.platform.migrate import migrations_hash
from pilot_dev.migrations_hash import template_hash
shipped, declared = migrations_hash(Path(sys.argv[1])), template_hash()
if shipped != declared:
    sys.exit(f"layer-contents: the layer's migrations hash {shipped[:12]} != template {declared[:12]}")
print(f"layer-contents: migrations in the layer match MigrationsHash {declared[:12]}")
PY
then status=1; fi
echo "layer-contents: $(wc -l <"$out/files.txt") files, $(grep -c '\.py$' "$out/files.txt") Python modules, top level: $tops"
exit $status
