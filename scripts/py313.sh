#!/usr/bin/env bash
# Prints the path of a Python 3.13 interpreter (the Lambda runtime's version), or fails.
# PY313=/path/to/python3.13 overrides the search. A candidate counts only if it really
# runs as 3.13 (a pyenv shim may exist and refuse).
set -euo pipefail
for candidate in ${PY313:-} python3.13 /root/.pyenv/versions/3.13.*/bin/python3.13 \
    "$HOME"/.pyenv/versions/3.13.*/bin/python3.13; do
  if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
    command -v "$candidate"; exit 0
  fi
done
echo "Python 3.13 is needed (the Lambda runtime's version): install it, or set PY313=/path/to/python3.13" >&2
exit 2
