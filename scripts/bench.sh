#!/usr/bin/env bash
# Runs the benchmark suite and writes docs/BENCHMARKS.md (machine, date, commit, command, results).
#
#   scripts/bench.sh                  everything (release builds for arm64 and x86_64 first)
#   scripts/bench.sh --seconds 5      shorter load phases (default 15 s each)
#   scripts/bench.sh --runs 20        cold starts per function (default 30)
#   scripts/bench.sh --out FILE       write somewhere else (default docs/BENCHMARKS.md)
#   scripts/bench.sh --only health    only these functions (repeatable; default every one)
#   scripts/bench.sh --mixed-seconds 60 --mixed-concurrency 32 --mixed-users 8
#                                     the mixed workload phase (these are the defaults)
#   scripts/bench.sh --mixed-only [--server BIN --driver BIN]
#                                     only the mixed workload; replaces (or appends) its section
#                                     in the existing output file; builds nothing when both
#                                     binaries are given
#
# Measures (1) cold init of every function binary (x86_64, this machine) against a local Lambda
# Runtime API emulator, (2) stripped arm64 and x86_64 bootstrap sizes, (3) warm throughput and
# latency of `userstate serve --memory` at fixed concurrency, (4) DynamoDB calls per request of the
# main routes, (5) the server's peak RSS under that load, (6) a mixed workload (logins, reads,
# checkouts paid through the Xendit simulator, replayed callbacks, debits with replayed
# Idempotency-Keys) on a durable store, every wallet reconciled against its ledger afterwards.
# Builds with cargo lambda (see scripts/build-lambdas.sh); the release profile's fat LTO makes a
# cold build take 30+ minutes on 2 cores, the measurements themselves about 3 minutes. Builds run
# under `nice`, measurements do not. Loopback only; every phase is bounded.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# One build cache for every script and `cargo run` (README, "Two commands").
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${USERSTATE_CACHE_DIR:-$HOME/.cache/userstate}/target}"
root=$(pwd)
command_line="scripts/bench.sh${*:+ $*}"

seconds=15
runs=30
out=docs/BENCHMARKS.md
only=()
mixed_seconds=60
mixed_concurrency=32
mixed_users=8
mixed_only=0
server=""
driver=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds=$2; shift ;;
    --runs) runs=$2; shift ;;
    --out) out=$2; shift ;;
    --only) only+=(--only "$2"); shift ;;
    --mixed-seconds) mixed_seconds=$2; shift ;;
    --mixed-concurrency) mixed_concurrency=$2; shift ;;
    --mixed-users) mixed_users=$2; shift ;;
    --mixed-only) mixed_only=1 ;;
    --server) server=$2; shift ;;
    --driver) driver=$2; shift ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n==> %s\n' "$*" >&2; }
started=$(date +%s)

# Section 6: the mixed workload. Sets $mixed (the Markdown section) and $mixed_status.
mixed_status=0
run_mixed() {
  step "mixed workload (${mixed_seconds} s, ${mixed_concurrency} connections, ${mixed_users} users)"
  local report
  report=$("$driver" mixed --server "$server" --duration "$mixed_seconds" \
    --concurrency "$mixed_concurrency" --users "$mixed_users") || mixed_status=$?
  echo "$report" >&2
  local verdict="every check passed"
  [[ $mixed_status -eq 0 ]] || verdict="FAILED (exit $mixed_status): see the counts and the reconciled column"
  mixed="## 6. Mixed workload and wallet reconciliation

Produced by \`$command_line\` at $(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git rev-parse --short HEAD)
(\`userstate-bench mixed\`, \`bench/src/mixed.rs\`; smoke version: \`tests/tests/load_smoke.rs\`).
\`userstate serve --data-dir\` (durable embedded store, \`RUST_LOG=warn\`, rate limits raised) with
${mixed_users} accounts signed up through \`/signup\` + OTP, then ${mixed_concurrency} closed-loop
connections for ${mixed_seconds} s on loopback. Each connection walks a 20-step schedule from its own
offset, rotating through the accounts: 1 login (\`POST /auth\`, the connection then uses the new
session), 7 \`GET /balance\`, 4 top-ups (\`POST /payment-checkout\`, then
\`POST /_dev/xendit/invoices/{id}/pay\`, which delivers the signed callback to \`/payment-callback\`),
2 replays of an already-paid invoice's callback, 4 debits (\`POST /balance/decrease\` under a new
Idempotency-Key) and 2 replays of a used key with the same body. Latencies are over every answer
(any status); a pay's latency includes the callback's delivery and processing. Insufficient
Balance (400) is an expected answer; a refused debit records no key, so its replay may debit.

Checks: no 5xx and no transport error; every 4xx of an API route is an envelope
(\`status: false\`, \`errorCode\` = HTTP status); every delivered callback answered 200; a replayed key
of a successful debit answers that same \`transaction_id\`; after the load, for every account,
\`GET /balance\` = the stored wallet balance = the ledger sum (\`shared::wallet::ledger_sum\` on the
data dir, read after the server stopped) = credits − debits as the client saw them (each paid
invoice once, each debit \`transaction_id\` once). Result: **${verdict}**.

${server_note}

${report}"
}

# The local server and the driver: `[profile.server]` (the release profile at opt-level 3; the
# functions' release profile optimises for size), built natively.
server_note="Server and driver: \`cargo build --profile server\` (x86_64; release settings at opt-level 3)."
build_server() {
  nice -n 5 cargo build --profile server --locked -p infra -p bench
  server="$target_dir/server/userstate"
  driver="$target_dir/server/userstate-bench"
  [[ -x "$server" && -x "$driver" ]] || { echo "bench.sh: missing $server or $driver" >&2; exit 1; }
}

functions=()
for manifest in functions/*/Cargo.toml; do
  name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n1)
  if [[ ${#only[@]} -gt 0 ]] && [[ " ${only[*]} " != *" $name "* ]]; then continue; fi
  functions+=("$name")
done
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

if [[ $mixed_only -eq 1 ]]; then
  if [[ -z $server || -z $driver ]]; then
    step "build: local server and bench driver (x86_64, server profile)"
    build_server
  else
    server_note="Server: \`$server\`; driver: \`$driver\` (given with --server/--driver)."
  fi
  [[ -x "$server" && -x "$driver" ]] || { echo "bench.sh: missing $server or $driver" >&2; exit 1; }
  run_mixed
  [[ -f "$out" ]] || printf '# Benchmarks\n' >"$out"
  # Replace an existing section 6 (up to the next "## " heading) or append it.
  MIXED="$mixed" python3 - "$out" <<'PY'
import os, re, sys
path = sys.argv[1]
text = open(path).read()
section = os.environ["MIXED"].rstrip("\n") + "\n"
m = re.search(r"^## 6\. Mixed workload.*?(?=^## |\Z)", text, flags=re.S | re.M)
if m:
    rest = text[m.end():]
    text = text[: m.start()] + section + ("\n" + rest if rest else "")
else:
    text = text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
PY
  step "wrote section 6 of $out"
  exit "$mixed_status"
fi

step "build: every function for arm64 and x86_64 (cargo lambda, release)"
build_started=$(date +%s)
sizes=$(mktemp)
trap 'rm -f "$sizes"' EXIT
nice -n 5 scripts/build-lambdas.sh --x86 ${only[@]+"${only[@]}"} | tee "$sizes"

step "build: local server and bench driver (x86_64, server profile)"
build_server
build_secs=$(( $(date +%s) - build_started ))

measure_started=$(date +%s)
step "cold init (${runs} starts per function)"
cold_args=()
for f in "${functions[@]}"; do cold_args+=(--function "$f=$target_dir/lambda-x86_64/$f/bootstrap"); done
cold=$("$driver" cold-init --runs "$runs" "${cold_args[@]}")
echo "$cold" >&2

step "DynamoDB calls per request"
calls=$("$driver" calls)
echo "$calls" >&2

step "warm load on the local server (${seconds} s per phase)"
load=$("$driver" load --server "$server" --seconds "$seconds" --concurrency 64,8)
echo "$load" >&2
if command -v wrk >/dev/null 2>&1; then
  step "GET /balance under wrk (${seconds} s per phase)"
  wrk_table=$(scripts/wrk-balance.sh "$server" "$seconds")
  echo "$wrk_table" >&2
else
  wrk_table="wrk is not installed here (\`apt-get install wrk\`); this part was skipped."
fi
run_mixed
measure_secs=$(( $(date +%s) - measure_started ))

# Sizes: "arm64 <fn> <bytes> bytes <MiB> MiB ..." lines printed by build-lambdas.sh.
size_of() { awk -v a="$1" -v f="$2" '$1==a && $2==f {print $3}' "$sizes"; }
mib() { awk -v b="$1" 'BEGIN{printf "%.2f", b/1048576}'; }
sdk_users=$(grep -l 'App::for_function\b' functions/*/src/main.rs 2>/dev/null | xargs -r -n1 dirname | xargs -r -n1 dirname | xargs -r -n1 basename | tr '\n' ' ')
size_rows=""
for f in "${functions[@]}"; do
  a=$(size_of arm64 "$f"); x=$(size_of x86_64 "$f")
  if [[ " $sdk_users " == *" $f "* ]]; then limit=8; kind="AWS SDK"; else limit=3; kind="no SDK"; fi
  verdict=$(awk -v b="$a" -v l="$limit" 'BEGIN{print (b <= l*1048576) ? "met" : "MISSED"}')
  size_rows+="| $f | $kind | $(mib "$a") | $(mib "$x") | ≤ $limit MiB: $verdict |"$'\n'
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- . ':!docs/BENCHMARKS.md' || commit="$commit (with uncommitted changes)"
total_secs=$(( $(date +%s) - started ))

mkdir -p "$(dirname "$out")"
cat >"$out" <<EOF
# Benchmarks

Produced by \`$command_line\` (source: \`scripts/bench.sh\`, \`bench/\`). Numbers from one run on a
shared development machine; other work was running on the same cores, so treat them as an upper
bound rather than a best case.

| | |
|---|---|
| date (UTC) | $(date -u '+%Y-%m-%d %H:%M') |
| commit | $commit |
| machine | $(nproc) cores, $cpu, $mem RAM, Linux $(uname -r) |
| toolchain | $(rustc -V), cargo-lambda + zig (scripts/requirements-lambda.txt) |
| profile | functions: release (fat LTO, codegen-units = 1, opt-level "s", password hashing crates at 3, stripped); server and driver: \`server\` (the same at opt-level 3) |
| duration | ${build_secs} s building, ${measure_secs} s measuring, ${total_secs} s in all |

## 1. Cold init

Time from \`exec\` of the x86_64 \`bootstrap\` to its first \`GET /2018-06-01/runtime/invocation/next\`
on a local Lambda Runtime API emulator (\`bench/src/cold.rs\`): configuration read, SDK config and
clients built, router assembled. The process gets the Lambda environment (\`AWS_LAMBDA_RUNTIME_API\`,
function name, memory, version, log group, \`_HANDLER\`) and the aws-mode configuration with dummy
credentials (clients are built during init but make no request before an invocation, so no
network is used). One warm-up start is discarded, then ${runs} starts per function. arm64 binaries
cannot run on this x86_64 machine; only their sizes are reported.

$cold

## 2. Binary size

Stripped \`bootstrap\` files from \`scripts/build-lambdas.sh --x86\` (cargo lambda, zig linker).
Target: ≤ 8 MiB for functions that use the AWS SDK, ≤ 3 MiB for those that do not.

| function | uses | arm64 MiB | x86_64 MiB | target (arm64) |
|---|---|---:|---:|---|
$size_rows
## 3. Warm throughput and latency of the local server

\`userstate serve --memory\` (\`server\` profile, x86_64, embedded store, \`RUST_LOG=warn\` so request logs
are not part of the measurement, login rate limits raised) loaded by \`userstate-bench load\`: a
closed loop per connection on loopback (the next request leaves when the previous answer's last
byte arrived), ${seconds} s per phase, one single-threaded client process sharing the 2 cores with
the server. Latency is per successful request; errors are non-2xx answers or transport failures.
The authenticated read is \`GET /balance\` once the wallet routes are on the server, else
\`GET /verify\` (JWT check plus session read). \`POST /auth\` is a successful login: one argon2id
verification (m = 19 MiB, t = 2), a session write, a rate-limit update and an audit entry.

$load

The same read under wrk (\`scripts/wrk-balance.sh\`: \`wrk -t1 --latency\`, one C client thread, same
server build and phase length), which leaves more of the two cores to the server:

$wrk_table

## 4. DynamoDB calls per request

Each route driven once in-process through the real router on an embedded store wrapped in
\`CountingTable\` (\`shared/src/store/counting.rs\`): one port call is one DynamoDB request (a query
counts per page, a transaction once however many items it writes). Budgets asserted by
\`bench/tests/table_calls.rs\`: authenticated reads ≤ 2 calls; a money write is its lookup (session or
invoice), one batch read and one transaction.

$calls

## 5. Peak RSS

See the last column and the memory line under section 3: \`VmHWM\` of the server process from
\`/proc/<pid>/status\`, read after each phase.

$mixed
EOF
step "wrote $out in ${total_secs} s"
exit "$mixed_status"
