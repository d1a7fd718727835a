#!/usr/bin/env bash
# Runs every test of the project — the README's test command and what CI runs:
#   formatting and lints, template checks (cfn-lint, sam validate --lint, checkov), then the whole
#   workspace test suite with the DynamoDB emulator (moto) running for the conformance suite
#   and the AWS-adapter tests, plus the import test against a real PostgreSQL
#   (scripts/import-test.sh). Installs what it needs (Python tools into a cached venv, PostgreSQL).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

cache="${USERSTATE_CACHE_DIR:-$HOME/.cache/userstate}"
mkdir -p "$cache"
# Reuse a build cache outside the clone (CI clones fresh each time); the build still works
# without one, it is only slower.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# No test may reach outside loopback: the AWS SDK must not try the instance metadata service.
export AWS_EC2_METADATA_DISABLED=true

step "python tools (moto, cfn-lint, sam, schemathesis)"
scripts/tools.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "template lint (cfn-lint, sam validate --lint, checkov)"
scripts/lint-template.sh

step "DynamoDB emulator"
export USERSTATE_EMULATOR_DIR="${USERSTATE_EMULATOR_DIR:-$(mktemp -d)}"
trap 'scripts/emulator.sh stop >/dev/null 2>&1 || true' EXIT
scripts/emulator.sh start
eval "$(scripts/emulator.sh env)"
export USERSTATE_REQUIRE_EMULATOR=1

step "import from the original PostgreSQL (scripts/import-test.sh)"
scripts/import-test.sh

step "build the local server and the function binaries used by black-box tests"
cargo build --locked --bins

step "API fuzzing (schemathesis against the local server, fixed seed)"
scripts/fuzz.sh

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
