#!/usr/bin/env bash
# Runs a command with the build and test environment: the project's Python virtualenv
# (created on first use by venv.sh) first on PATH, and tch pointed at its libtorch.
#
#   scripts/with-env.sh cargo test --workspace
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$repo_root/scripts/venv.sh")"

export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"
# tch's build script finds libtorch through the virtualenv's python3.
export LIBTORCH_USE_PYTORCH=1
# Interop tests, benchmarks and the demo start the Python peers with this interpreter.
export JUNIPER_PYTHON="$venv/bin/python"
# Cargo.toml does not name a target folder, so every entry point shares this one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo_root/target}"

exec "$@"
