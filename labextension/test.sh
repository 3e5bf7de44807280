#!/usr/bin/env bash
# The lab extension's checks for scripts/test.sh: install its packages (cached outside the clone), build it when
# the output (nbdeploy/labextension, what the browser tests load) is missing or older than its sources, run jest.
# Usage: labextension/test.sh [PYTHON]  (the venv's python: its jupyterlab provides jlpm and the builder)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${1:-python3}
export PATH="$(dirname "$py"):$PATH"
export YARN_ENABLE_GLOBAL_CACHE=true
export YARN_GLOBAL_FOLDER="${NBDEPLOY_YARN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nbdeploy-yarn}"
cd "$here"
jlpm install >&2
out=../nbdeploy/labextension/package.json
if [ ! -f "$out" ] || [ -n "$(find src style package.json -newer "$out" -print -quit)" ]; then
  jlpm build >&2
fi
jlpm test
