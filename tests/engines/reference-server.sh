#!/usr/bin/env bash
# The reference Azure ML scoring server (azmlinfsrv), installed from PyPI into its own virtual
# environment outside the clone, for the differential conformance tests and the server benchmark.
# Verbs: up (install once; prints the venv's python on its last line), down (remove it).
set -euo pipefail
cache=${NBDEPLOY_CACHE_DIR:-$HOME/.cache/nbdeploy}
venv=$cache/azmlinfsrv-venv
case "${1:-up}" in
  up)
    if [ ! -x "$venv/bin/azmlinfsrv" ]; then
      mkdir -p "$cache"
      python3 -m venv "$venv"
      "$venv/bin/python" -m pip install -q --upgrade pip
      "$venv/bin/python" -m pip install -q "azureml-inference-server-http==1.5.1" "inference-schema==1.8" \
        scikit-learn joblib numpy pandas Pillow >&2
    fi
    # azureml-core: v1 scripts import azureml.core.model.Model (tests/conformance/test_diff_model_path.py)
    if ! "$venv/bin/python" -c "import azureml.core.model" 2>/dev/null; then
      "$venv/bin/python" -m pip install -q "azureml-core==1.61.0.post4" >&2
    fi
    echo "$venv/bin/python"
    ;;
  down) rm -rf "$venv" ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
