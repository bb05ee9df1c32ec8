#!/usr/bin/env bash
# Puts Amazon's RDS CA bundle where platform/dbtls.py looks for it (it ships in the
# SharedLayer). Run before `sam build` on a machine that can reach AWS; the bundle is
# public: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html
set -euo pipefail
cd "$(dirname "$0")/.."
url="https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
dest="shared/amazon_pilot/platform/certs/rds-global-bundle.pem"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
curl --fail --silent --show-error --proto '=https' --tlsv1.2 -o "$tmp" "$url"
count="$(grep -c 'BEGIN CERTIFICATE' "$tmp" || true)"
if [ "${count:-0}" -lt 10 ]; then
  echo "fetch-rds-ca: $url gave $count certificates; expected the full bundle" >&2
  exit 1
fi
# every block must parse as an X.509 certificate
openssl crl2pkcs7 -nocrl -certfile "$tmp" | openssl pkcs7 -print_certs -noout >/dev/null
mv "$tmp" "$dest"
trap - EXIT
echo "fetch-rds-ca: $count certificates in $dest"
