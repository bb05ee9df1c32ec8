#!/usr/bin/env bash
# `sam validate --lint` on template.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/sam.sh validate --lint --region us-east-1 --template template.yaml
