#!/usr/bin/env bash
# The import acceptance test: a real PostgreSQL (Debian package) on loopback in a temp dir, the
# original schema and a generated fixture of 1,000+ users with bad rows, imported into the local
# store and (when the DynamoDB emulator runs, i.e. AWS_ENDPOINT_URL is set) into DynamoDB by the
# Rust test `tests/tests/import_pg.rs`; then the `userstate import` CLI itself (dry run, run,
# second run writes nothing) against the same database into a temp local store.
#   scripts/import-test.sh            (standalone; starts the emulator itself if it is not running)
# Installs PostgreSQL with apt-get when `initdb` is missing (needs root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${USERSTATE_CACHE_DIR:-$HOME/.cache/userstate}/target}"

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

if ! bin=$(pg_bin); then
  echo "==> installing PostgreSQL (apt-get)"
  if [ "$(id -u)" != 0 ]; then echo "initdb is missing and not root: install postgresql" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  bin=$(pg_bin)
fi

work=$(mktemp -d /tmp/userstate-import.XXXXXX)
# PostgreSQL refuses to run as root: run it as the package's `postgres` user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  as_pg "$bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  [ -n "${started_emulator:-}" ] && scripts/emulator.sh stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> PostgreSQL on 127.0.0.1:$port ($work)"
as_pg "$bin/initdb" -D "$work/data" -U postgres --auth=trust -E UTF8 >/dev/null
as_pg "$bin/pg_ctl" -D "$work/data" -l "$work/pg.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $work -c fsync=off -c full_page_writes=off" start >/dev/null
export USERSTATE_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
export USERSTATE_REQUIRE_PG=1

if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
  export USERSTATE_EMULATOR_DIR="${USERSTATE_EMULATOR_DIR:-$work/emulator}"
  scripts/emulator.sh start >/dev/null
  started_emulator=1
  eval "$(scripts/emulator.sh env)"
fi

start=$(date +%s)
echo "==> import test (local store + DynamoDB emulator)"
if ! RUST_BACKTRACE=0 cargo test --locked -p tests --test import_pg -- --nocapture >"$work/test.log" 2>&1; then
  grep -v '^ *[0-9]*: \|^ *at ' "$work/test.log" | tail -n 60
  exit 1
fi
grep -E '^(import|fixture|local|dynamodb|balance|items|users|test result)' "$work/test.log" | tail -n 20

echo "==> userstate import CLI (dry run, run, second run)"
cargo build --locked -q -p infra --bin userstate
cli="$CARGO_TARGET_DIR/debug/userstate"
fixture="postgres://postgres@127.0.0.1:$port/userstate_import_fixture"
export USERSTATE_BACKEND=local USERSTATE_DATA_DIR="$work/store"
unset AWS_ENDPOINT_URL
"$cli" import --pg "$fixture" --dry-run --report "$work/dry.json" >/dev/null
grep -q '"dry_run": true' "$work/dry.json"
"$cli" import --pg "$fixture" --report "$work/first.json" | tail -n 3
# Nothing was there after the dry run: the real run imports every good user.
grep -q '"users_imported": 1001,' "$work/first.json" || { echo "the dry run wrote, or users are missing" >&2; exit 1; }
"$cli" import --pg "$fixture" --report "$work/second.json" | head -n 2
grep -q '"items_written": 0,' "$work/second.json" || { echo "second run wrote items" >&2; exit 1; }
grep -q '"equal": true' "$work/second.json" || { echo "balances differ" >&2; exit 1; }
for bad in baddup badneg badfrac badphone; do
  grep -q "\"key\": \"$bad\"" "$work/second.json" || { echo "bad row $bad not reported" >&2; exit 1; }
done
echo "import test passed in $(( $(date +%s) - start ))s"
