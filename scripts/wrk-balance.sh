#!/usr/bin/env bash
# GET /balance on the local server under wrk (a C load generator: less of the 2 cores goes to
# the client than with `userstate-bench load`), printed as a Markdown table.
#
#   scripts/wrk-balance.sh SERVER_BINARY [SECONDS]      (default 15 s per phase)
#
# Starts `SERVER serve --memory` on a free loopback port (RUST_LOG=warn, sign-up/OTP limits
# raised), signs an account up through /signup + the dev outbox OTP, logs in, then runs
# `wrk -t1 --latency` at 64 and 8 connections with that session. Needs wrk, curl and python3.
set -euo pipefail
server=${1:?usage: scripts/wrk-balance.sh SERVER_BINARY [SECONDS]}
seconds=${2:-15}
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "wrk-balance.sh: $tool not found" >&2; exit 1; }
done
out=$(mktemp)
RUST_LOG=warn RATE_LIMIT_SIGNUP_IP=1000000/60 RATE_LIMIT_OTP_IP=1000000/60 RATE_LIMIT_OTP_ID=1000000/60 \
  USERSTATE_BACKEND=local "$server" serve --memory --port 0 >"$out" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
base=""
for _ in $(seq 100); do
  base=$(sed -n 's/^listening on //p' "$out" | head -n1)
  [[ -n $base ]] && break
  sleep 0.1
done
[[ -n $base ]] || { echo "wrk-balance.sh: the server did not start" >&2; exit 1; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
reg=$(curl -sf -X POST "$base/signup" -H 'content-type: application/json' \
  -d '{"username":"wrk_user","password":"benchPassword123","email":"wrk@example.com","full_name":"Wrk User","phone_number":"628111222333","mode":"OTP"}' | json '["token"]')
otp=$(curl -sf "$base/_dev/outbox?to=628111222333" |
  python3 -c 'import json,re,sys; print(re.findall(r"\b\d{6}\b", json.dumps(json.load(sys.stdin)))[-1])')
curl -sf -X POST "$base/verify-sign-up" -H "authorization: Bearer $reg" \
  -H 'content-type: application/json' -d "{\"otp\":\"$otp\"}" >/dev/null
token=$(curl -sf -X POST "$base/auth" -H 'content-type: application/json' \
  -d '{"username":"wrk_user","password":"benchPassword123"}' | json '["token"]')
curl -sf "$base/balance" -H "authorization: Bearer $token" >/dev/null

echo "| route | connections | seconds | requests | non-2xx | req/s | p50 ms | p90 ms | p99 ms | max ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in 64 8; do
  report=$(wrk -t1 -c"$c" -d"${seconds}s" --latency -H "authorization: Bearer $token" "$base/balance")
  REPORT="$report" C="$c" S="$seconds" python3 - <<'PY'
import os, re
r = os.environ["REPORT"]
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
pct = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", r, re.M))
mx = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", r).group(1)
reqs = re.search(r"(\d+) requests in", r).group(1)
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", r)
rps = re.search(r"Requests/sec:\s+([\d.]+)", r).group(1)
print(f"| GET /balance | {os.environ['C']} | {os.environ['S']} | {reqs} | {bad.group(1) if bad else 0} | "
      f"{float(rps):.0f} | {ms(pct['50']):.2f} | {ms(pct['90']):.2f} | {ms(pct['99']):.2f} | {ms(mx):.2f} |")
PY
done
