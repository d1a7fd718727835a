#!/usr/bin/env bash
# Lints template.yaml offline: cfn-lint (all rules incl. informational, plus AWS's serverless
# rules from cfn-lint-serverless: tracing, log retention, DLQs, access logs), then
# `sam validate --lint` (SAM transform + its cfn-lint run), then checkov (every failure fixed or
# skipped in the resource's Metadata with a reason). Exits non-zero on any finding.
#   scripts/lint-template.sh [path/to/template.yaml]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
template=$(realpath "${1:-$repo/template.yaml}")
venv=$("$repo/scripts/tools.sh" --print-venv | tail -n 1)

# No credentials or network needed; keep SAM from phoning home or prompting.
export SAM_CLI_TELEMETRY=0
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"

status=0
echo "cfn-lint $template"
"$venv/bin/cfn-lint" --include-checks I --append-rules cfn_lint_serverless.rules -- "$template" || status=1

echo "sam validate --lint $template"
# Run beside the template so sam picks up that directory's samconfig.toml, not the caller's.
(cd "$(dirname "$template")" &&
  "$venv/bin/sam" validate --lint --region us-east-1 --template-file "$template") || status=1

echo "checkov $template"
checkov_venv=$("$repo/scripts/tools.sh" --set checkov --print-venv | tail -n 1)
"$checkov_venv/bin/checkov" -f "$template" --framework cloudformation --compact --quiet \
  --skip-download || status=1

if [[ $status != 0 ]]; then
  echo "lint-template.sh: findings above" >&2
fi
exit $status
