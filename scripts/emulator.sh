#!/usr/bin/env bash
# Local AWS emulator (moto server) for the DynamoDB adapter conformance tests and other AWS-mode tests.
#
#   scripts/emulator.sh start    start moto on a free 127.0.0.1 port (no-op if already running)
#   scripts/emulator.sh env      print `export ...` lines for eval:  eval "$(scripts/emulator.sh env)"
#   scripts/emulator.sh status   exit 0 and print the endpoint if running, exit 1 otherwise
#   scripts/emulator.sh stop     stop it (no-op if not running)
#
# State (pid, port, log) lives in ${USERSTATE_EMULATOR_DIR:-/tmp/userstate-emulator}.
# The venv comes from scripts/tools.sh. Reset all emulated state with
#   curl -X POST "$AWS_ENDPOINT_URL/moto-api/reset"
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state_dir="${USERSTATE_EMULATOR_DIR:-/tmp/userstate-emulator}"
pid_file="$state_dir/pid"
port_file="$state_dir/port"
log_file="$state_dir/moto.log"
ready_timeout=30

die() { echo "emulator.sh: $*" >&2; exit 1; }

# Only trust the pid file if that pid is still our moto_server (pids get reused).
running_pid() {
  [[ -f "$pid_file" && -f "$port_file" ]] || return 1
  local pid
  pid=$(cat "$pid_file")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q moto_server || return 1
  fi
  echo "$pid"
}

# GET /moto-api/ answers once the server is up.
answers() {
  "$venv_python" - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen("http://127.0.0.1:%s/moto-api/" % sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

free_port() {
  "$venv_python" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

load_venv() {
  local venv
  venv=$("$script_dir/tools.sh" --print-venv | tail -n 1)
  venv_python="$venv/bin/python"
  moto_server="$venv/bin/moto_server"
  [[ -x "$moto_server" ]] || die "moto_server not found in $venv (run scripts/tools.sh)"
}

stop_pid() {
  local pid=$1 i
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

cmd_start() {
  if pid=$(running_pid); then
    return 0
  fi
  load_venv
  mkdir -p "$state_dir"
  rm -f "$pid_file" "$port_file"
  local attempt port pid deadline
  # The port is free when picked but could be taken before moto binds it: retry a few times.
  for attempt in 1 2 3; do
    port=$(free_port)
    # setsid: the server outlives the shell that started it (test scripts start it, then exit).
    # scripts/moto_server.py: the stock server with request handling serialised (see its docstring).
    setsid "$venv_python" "$script_dir/moto_server.py" -H 127.0.0.1 -p "$port" >"$log_file" 2>&1 </dev/null &
    pid=$!
    deadline=$((SECONDS + ready_timeout))
    while ((SECONDS < deadline)); do
      if ! kill -0 "$pid" 2>/dev/null; then
        break
      fi
      if answers "$port"; then
        echo "$pid" >"$pid_file"
        echo "$port" >"$port_file"
        return 0
      fi
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      stop_pid "$pid"
      echo "emulator.sh: moto_server did not answer GET /moto-api/ on port $port within ${ready_timeout}s; log:" >&2
      tail -n 40 "$log_file" >&2 || true
      exit 1
    fi
    echo "emulator.sh: moto_server exited during start-up (attempt $attempt, port $port)" >&2
  done
  echo "emulator.sh: moto_server failed to start; log:" >&2
  tail -n 40 "$log_file" >&2 || true
  exit 1
}

cmd_stop() {
  local pid
  if pid=$(running_pid); then
    stop_pid "$pid"
  fi
  rm -f "$pid_file" "$port_file"
}

cmd_env() {
  running_pid >/dev/null || die "not running (start it with: scripts/emulator.sh start)"
  local url="http://127.0.0.1:$(cat "$port_file")"
  echo "export AWS_ENDPOINT_URL=$url"
  echo "export AWS_ACCESS_KEY_ID=test"
  echo "export AWS_SECRET_ACCESS_KEY=test"
  echo "export AWS_REGION=us-east-1"
  echo "export AWS_DEFAULT_REGION=us-east-1" # boto3 / aws CLI read this one, not AWS_REGION
  echo "export USERSTATE_DYNAMO_ENDPOINT=$url"
  # Credentials come from the lines above: the SDK must never reach for the instance metadata
  # service (169.254.169.254) on a developer's machine or in CI.
  echo "export AWS_EC2_METADATA_DISABLED=true"
}

cmd_status() {
  running_pid >/dev/null || { echo "not running"; exit 1; }
  echo "running: http://127.0.0.1:$(cat "$port_file") (pid $(cat "$pid_file"), log $log_file)"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
