#!/usr/bin/env bash
# Creates (or reuses) the Python venv holding the test and template tools:
# moto server (AWS emulator), cfn-lint, AWS SAM CLI, schemathesis.
#
#   scripts/tools.sh               install if needed; silent on success
#   scripts/tools.sh --print-venv  same, then print the venv path as the last stdout line
#   scripts/tools.sh --set checkov [--print-venv]   the same for checkov, in its own venv (its
#                                  pins conflict with the SAM CLI's)
#
# Location: ${USERSTATE_CACHE_DIR:-$HOME/.cache/userstate}/venv (venv-<set> for another set).
# Pins live in scripts/requirements-<set>.txt (set `tools` by default); pip runs only when that
# file (or the Python) changed since the last successful install. Python: $USERSTATE_PYTHON,
# else python3.11, else python3 (>= 3.9).
set -euo pipefail

print_venv=0
set_name=tools
while [[ $# -gt 0 ]]; do
  case "$1" in
    --print-venv) print_venv=1 ;;
    --set) set_name="${2:?--set takes a name}"; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "tools.sh: unknown argument: $1 (expected --print-venv or --set NAME)" >&2; exit 2 ;;
  esac
  shift
done

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
requirements="$script_dir/requirements-$set_name.txt"
cache_dir="${USERSTATE_CACHE_DIR:-$HOME/.cache/userstate}"
if [[ $set_name == tools ]]; then venv="$cache_dir/venv"; else venv="$cache_dir/venv-$set_name"; fi
stamp="$venv/.userstate-tools.stamp"
log="$cache_dir/$set_name-install.log"

die() { echo "tools.sh: $*" >&2; exit 1; }

[[ -f "$requirements" ]] || die "missing $requirements"

pick_python() {
  local candidate
  for candidate in "${USERSTATE_PYTHON:-}" python3.11 python3; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

python=$(pick_python) || die "need Python >= 3.9 (set USERSTATE_PYTHON or install python3)"

# The stamp covers the pins and the interpreter version: a change to either reinstalls.
want_hash=$("$python" - "$requirements" <<'PY'
import hashlib, sys
h = hashlib.sha256(open(sys.argv[1], "rb").read())
h.update(("python-%d.%d" % sys.version_info[:2]).encode())
print(h.hexdigest())
PY
)

venv_ok() {
  [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import sys' >/dev/null 2>&1 &&
    [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want_hash" ]]
}

install() {
  mkdir -p "$cache_dir"
  echo "tools.sh: installing test tools into $venv (first run takes about a minute)" >&2
  : >"$log"
  # Rebuild from scratch when the stamp is stale, so removed pins do not linger.
  rm -rf "$venv"
  if ! "$python" -m venv "$venv" >>"$log" 2>&1; then
    # Debian's python3 without python3-venv has no ensurepip; fall back to virtualenv from PyPI.
    rm -rf "$venv"
    local bootstrap="$cache_dir/virtualenv-bootstrap"
    "$python" -m pip install -q --disable-pip-version-check --target "$bootstrap" virtualenv >>"$log" 2>&1 ||
      { tail -n 30 "$log" >&2; die "could not create a venv (install python3-venv) — log: $log"; }
    PYTHONPATH="$bootstrap" "$python" -m virtualenv -q "$venv" >>"$log" 2>&1 ||
      { tail -n 30 "$log" >&2; die "virtualenv failed — log: $log"; }
  fi
  if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input \
       -r "$requirements" >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "pip install failed — full log: $log"
  fi
  echo "$want_hash" >"$stamp"
}

if ! venv_ok; then
  mkdir -p "$cache_dir"
  # Serialise concurrent callers (parallel test runners) on one lock; re-check after waiting.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache_dir/.$set_name.lock"
    flock 9
  fi
  venv_ok || install
fi

if [[ $print_venv == 1 ]]; then
  echo "$venv"
fi
