#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv with nbdeploy and its test extras.
# Usage: source-free; prints the venv's python path on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${NBDEPLOY_VENV:-$root/.venv}
extras=${NBDEPLOY_EXTRAS:-test,docker,kubernetes,notebook}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
fi
stamp="$venv/.nbdeploy-installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install -q -e "$root[$extras]"
  touch "$stamp"
fi
echo "$venv/bin/python"
