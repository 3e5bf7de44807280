#!/usr/bin/env bash
# The quickstart on a fresh machine: install nbdeploy into .venv and run examples/quickstart.py
# (train a small model, register it, deploy it on the subprocess target, score it, clean up). No Docker needed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=$(NBDEPLOY_EXTRAS=test "$root/scripts/dev-env.sh" | tail -n 1)
exec "$py" "$root/examples/quickstart.py" "$@"
