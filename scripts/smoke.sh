#!/usr/bin/env bash
# Smoke test of a deployed stack (or of `userstate stack` / `userstate serve` locally):
#   scripts/smoke.sh <ApiUrl> [<browser origin>]
# Read-only: it creates nothing. Checks that the API answers, that errors are the JSON envelope,
# that sessions are enforced, and that a browser preflight for the money routes' Idempotency-Key
# is allowed (API Gateway answers it from the template's CorsConfiguration).
set -euo pipefail

base="${1:?usage: scripts/smoke.sh <ApiUrl> [origin]}"
base="${base%/}"
origin="${2:-http://localhost:3000}"
failures=0

check() { # name, expected, actual
  if [[ "$3" == *"$2"* ]]; then
    printf 'ok    %s\n' "$1"
  else
    printf 'FAIL  %s: expected %s, got %s\n' "$1" "$2" "$3"
    failures=$((failures + 1))
  fi
}

status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

check "GET /health answers 200" 200 "$(status "$base/health")"
check "GET /health says ok" '"status"' "$(curl -s "$base/health")"
check "GET /openapi.json is the API description" '"openapi"' "$(curl -s "$base/openapi.json")"
check "GET /balance without a session is 401" 401 "$(status "$base/balance")"
check "the 401 is the JSON error envelope" '"errorCode":401' "$(curl -s "$base/balance")"
check "POST /signup with no body is a 4xx envelope" '"errorCode":4' \
  "$(curl -s -X POST -H 'content-type: application/json' -d '{}' "$base/signup")"
preflight=$(curl -s -D - -o /dev/null -X OPTIONS "$base/balance/decrease" \
  -H "Origin: $origin" -H 'Access-Control-Request-Method: POST' \
  -H 'Access-Control-Request-Headers: authorization,content-type,idempotency-key' | tr 'A-Z' 'a-z')
check "preflight allows idempotency-key from $origin" "idempotency-key" "$preflight"
check "preflight allows the origin" "access-control-allow-origin: $origin" "$preflight"

if ((failures > 0)); then
  echo "smoke test: $failures check(s) failed against $base" >&2
  exit 1
fi
echo "smoke test passed against $base"
