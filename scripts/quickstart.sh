#!/usr/bin/env bash
# The quickstart on a fresh machine: install nbdeploy (+ scikit-learn) into .venv-quickstart and run examples/quickstart.py
# (train a small model, register it, deploy it on the subprocess target, score it, clean up). No Docker needed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=$(NBDEPLOY_VENV=${NBDEPLOY_VENV:-$root/.venv-quickstart} NBDEPLOY_EXTRAS=examples "$root/scripts/dev-env.sh" | tail -n 1)
exec "$py" "$root/examples/quickstart.py" "$@"
