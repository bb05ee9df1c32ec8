#!/usr/bin/env bash
# The dry run of the main-branch pipeline (.github/workflows/ci-cd.yml): each step in order,
# dev -> staging -> prod, with the `sam deploy --no-execute-changeset` command of each stage
# and its samconfig.toml parameters, all deploying the one packaged artifact.
#   scripts/pipeline-dry-run.sh                      # print only
#   scripts/pipeline-dry-run.sh --artifact packaged.yaml   # its digest instead of the tree's
# With AWS credentials, `python -m pilot_dev.pipeline deploy --config-env dev --dry-run`
# creates that stage's change set without executing it.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pilot_dev.pipeline plan "$@"
