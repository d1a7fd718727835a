#!/usr/bin/env bash
# Builds every Lambda function under functions/ as a deployable `bootstrap` with cargo lambda
# (zig as the cross linker), for arm64 (Graviton, what template.yaml deploys) and optionally x86_64.
#
#   scripts/build-lambdas.sh                 release arm64 build of every function
#   scripts/build-lambdas.sh --x86           also x86_64
#   scripts/build-lambdas.sh --only health   just these functions (repeatable)
#   scripts/build-lambdas.sh --print-venv    install the tools only, print the venv path
#
# Installs cargo-lambda and ziglang (pinned in scripts/requirements-lambda.txt) from PyPI into
# ${USERSTATE_CACHE_DIR:-$HOME/.cache/userstate}/lambda-venv and adds the rustup target
# aarch64-unknown-linux-gnu when it is missing. Output: $CARGO_TARGET_DIR (default the shared
# ${USERSTATE_CACHE_DIR:-~/.cache/userstate}/target)
# /lambda/<function>/bootstrap for arm64, and /lambda-x86_64/<function>/bootstrap for x86_64.
# The release profile (Cargo.toml) strips symbols and uses fat LTO, so a full build is slow:
# about 15-25 minutes per architecture on 2 cores from a cold cache.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# One build cache for every script and `cargo run` (README, "Two commands").
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${USERSTATE_CACHE_DIR:-$HOME/.cache/userstate}/target}"
root=$(pwd)

x86=0
print_venv=0
only=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --x86) x86=1 ;;
    --only) shift; [[ $# -gt 0 ]] || { echo "build-lambdas.sh: --only needs a name" >&2; exit 2; }; only+=("$1") ;;
    --print-venv) print_venv=1 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-lambdas.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

die() { echo "build-lambdas.sh: $*" >&2; exit 1; }
step() { printf '\n==> %s\n' "$*" >&2; }

cache_dir="${USERSTATE_CACHE_DIR:-$HOME/.cache/userstate}"
venv="$cache_dir/lambda-venv"
requirements="$root/scripts/requirements-lambda.txt"
stamp="$venv/.userstate-lambda.stamp"
log="$cache_dir/lambda-install.log"
python="${USERSTATE_PYTHON:-$(command -v python3.11 || command -v python3 || true)}"
[[ -n "$python" ]] || die "need python3 (set USERSTATE_PYTHON)"

want_hash=$(cat "$requirements" | sha256sum | cut -d' ' -f1)
venv_ok() {
  [[ -x "$venv/bin/cargo-lambda" && -f "$stamp" && "$(cat "$stamp")" == "$want_hash" ]]
}
install_tools() {
  mkdir -p "$cache_dir"
  step "installing cargo-lambda and ziglang into $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv" >"$log" 2>&1 || { tail -n 20 "$log" >&2; die "venv failed — log: $log"; }
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$requirements" \
    >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "pip install failed — log: $log"; }
  echo "$want_hash" >"$stamp"
}
if ! venv_ok; then
  mkdir -p "$cache_dir"
  if command -v flock >/dev/null 2>&1; then exec 9>"$cache_dir/.lambda-tools.lock"; flock 9; fi
  venv_ok || install_tools
fi
if [[ $print_venv == 1 ]]; then echo "$venv"; exit 0; fi

# cargo-lambda finds zig as `python3 -m ziglang` (the venv's python) or `zig` on PATH.
export PATH="$venv/bin:$PATH"

if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  step "rustup target add aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu
fi
if [[ $x86 == 1 ]] && ! rustup target list --installed | grep -qx x86_64-unknown-linux-gnu; then
  rustup target add x86_64-unknown-linux-gnu
fi

# Every crate under functions/ is one Lambda function; its package name is the function name.
functions=()
for manifest in functions/*/Cargo.toml; do
  name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n1)
  [[ -n "$name" ]] || die "no package name in $manifest"
  if [[ ${#only[@]} -gt 0 ]]; then
    keep=0
    for o in "${only[@]}"; do [[ "$o" == "$name" ]] && keep=1; done
    [[ $keep == 1 ]] || continue
  fi
  functions+=("$name")
done
[[ ${#functions[@]} -gt 0 ]] || die "no function matched (functions/*: $(ls functions | tr '\n' ' '))"
for o in "${only[@]}"; do
  printf '%s\n' "${functions[@]}" | grep -qx "$o" || die "no function named $o under functions/"
done

target_dir=$(cargo metadata --format-version 1 --no-deps | "$python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
pkg_args=()
for f in "${functions[@]}"; do pkg_args+=(-p "$f"); done

build() { # $1 = cargo lambda arch flag, $2 = lambda output dir name
  step "cargo lambda build --release $1 ${pkg_args[*]}"
  cargo lambda build --release "$1" --locked --lambda-dir "$target_dir/$2" "${pkg_args[@]}"
}

report() { # $1 = arch label, $2 = lambda output dir name
  local f bin size
  for f in "${functions[@]}"; do
    bin="$target_dir/$2/$f/bootstrap"
    [[ -f "$bin" ]] || die "missing $bin"
    size=$(stat -c %s "$bin")
    # The release profile strips; `file` confirms it (and the architecture) when it is installed.
    kind=""
    if command -v file >/dev/null 2>&1; then
      kind=$(file -b "$bin" | grep -o 'ARM aarch64\|x86-64' | head -n1)
      file -b "$bin" | grep -q ', stripped' && kind="$kind, stripped" || kind="$kind, NOT stripped"
    fi
    printf '%-8s %-22s %10d bytes  %6.2f MiB  %s  %s\n' "$1" "$f" "$size" \
      "$(echo "$size" | awk '{printf "%.2f", $1/1048576}')" "$kind" "$bin"
  done
}

build --arm64 lambda
[[ $x86 == 1 ]] && build --x86-64 lambda-x86_64

step "bootstrap sizes"
report arm64 lambda
[[ $x86 == 1 ]] && report x86_64 lambda-x86_64
exit 0
