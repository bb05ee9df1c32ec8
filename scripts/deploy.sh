#!/usr/bin/env bash
# Deploys the stack, then (when it runs with EnableEdge=true) the dashboard's files to the
# edge bucket with a CloudFront invalidation. docs/deploy.md walks through a first deploy.
#   scripts/deploy.sh               # samconfig.toml's [default] environment
#   scripts/deploy.sh dev           # its [dev] environment
#   SAM_DEPLOY_ARGS="--parameter-overrides EnableEdge=true ..." scripts/deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
env_name="${1:-default}"
# stack name and region as `sam deploy` will use them (samconfig.toml, then the AWS config)
read -r stack region < <(.venv/bin/python - "$env_name" <<'PY'
import sys, tomllib
cfg = tomllib.load(open("samconfig.toml", "rb"))
env = cfg.get(sys.argv[1], {})
def param(name):
    for section in ("deploy", "global"):
        value = env.get(section, {}).get("parameters", {}).get(name)
        if value:
            return value
    return cfg.get("default", {}).get("global", {}).get("parameters", {}).get(name, "")
print(param("stack_name") or "amazon-pilot", param("region") or "-")
PY
)
region_args=()
if [ "$region" != "-" ]; then region_args=(--region "$region"); fi
# The RDS CA bundle ships in the SharedLayer (verify-full to RDS); fetched from AWS on the
# deploying machine, the first time only (docs/deploy-template.md, "TLS").
[ -f shared/amazon_pilot/platform/certs/rds-global-bundle.pem ] || scripts/fetch-rds-ca.sh
scripts/build.sh
# shellcheck disable=SC2086 # SAM_DEPLOY_ARGS is a list of words on purpose
scripts/sam.sh deploy --config-env "$env_name" ${SAM_DEPLOY_ARGS:-}
edge=$(aws cloudformation describe-stacks --stack-name "$stack" "${region_args[@]}" \
  --query "Stacks[0].Outputs[?OutputKey=='WebBucketName'].OutputValue" --output text)
if [ -z "$edge" ] || [ "$edge" = "None" ]; then
  echo "deploy: $stack has no edge (EnableEdge=false): the web function serves the dashboard"
  exit 0
fi
.venv/bin/python -m pilot_dev.publish_web --stack "$stack" "${region_args[@]}"
