#!/usr/bin/env bash
# Creates (once) and prints the path of the Python virtualenv that provides libtorch
# for tch and the juniper packages for interop tests, the demo and benchmarks.
#
# The virtualenv lives outside the clone, keyed by a hash of the requirement files, so
# reruns and fresh clones on the same machine reuse it. A completed install leaves a
# marker file; an interrupted one is removed and redone.
#
# Environment:
#   JUNIPER_VENV_ROOT  parent folder of the virtualenvs (default ~/.cache/juniper-cascor-rs)
#   PYTHON             interpreter that creates the virtualenv (default python3)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$repo_root/python/requirements.txt"
requirements_juniper="$repo_root/python/requirements-juniper.txt"
python="${PYTHON:-python3}"
venv_root="${JUNIPER_VENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/juniper-cascor-rs}"

key="$(cat "$requirements" "$requirements_juniper" | sha256sum | cut -c1-16)"
venv="$venv_root/venv-$key"
marker="$venv/.install-complete"

if [[ -f "$marker" ]]; then
    echo "$venv"
    exit 0
fi

mkdir -p "$venv_root"
exec 9>"$venv_root/.lock-$key"
if ! flock -w 3600 9; then
    echo "error: timed out waiting for another install of $venv" >&2
    exit 1
fi
if [[ -f "$marker" ]]; then
    echo "$venv"
    exit 0
fi

echo "Creating the Python virtualenv $venv (torch==2.13.0 is about 3.5 GB; this takes a few minutes)" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet -r "$requirements" >&2
"$venv/bin/python" -m pip install --quiet --no-deps --ignore-requires-python -r "$requirements_juniper" >&2
"$venv/bin/python" -c 'import torch, juniper_cascor_worker, candidate_unit' >&2
touch "$marker"
echo "$venv"
