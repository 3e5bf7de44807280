#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs (virtual environment, engines),
# starts the engines, runs every test. Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=$(scripts/dev-env.sh | tail -n 1)
# The real-frontend notebook test drives Debian's headless Chromium (no browser downloads).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >&2; }
fi
# Lint, format and types first (seconds; fail before the engines start). Settings: pyproject.toml.
"$py" -m ruff check nbdeploy
"$py" -m ruff format --check nbdeploy
"$py" -m mypy
# The reference scoring server (azmlinfsrv) lives in its own venv: its pins clash with ours.
export NBDEPLOY_REFERENCE_PYTHON=$(tests/engines/reference-server.sh up | tail -n 1)
# docker first (the others use its base image); then the rest in parallel: the Kubernetes cluster (minutes
# when cold) and the TLS engines of the remote targets (seconds), each logging to /tmp/logs/engine-NAME.log
engines=${NBDEPLOY_TEST_ENGINES:-docker kubernetes aci edge}
case " $engines " in *" docker "*) tests/engines/docker.sh up ;; esac
mkdir -p /tmp/logs
pids=()
for engine in $engines; do
  [ "$engine" = docker ] && continue
  "tests/engines/$engine.sh" up >"/tmp/logs/engine-$engine.log" 2>&1 & pids+=("$!:$engine")
done
for entry in "${pids[@]}"; do
  wait "${entry%%:*}" || { echo "tests/engines/${entry#*:}.sh up failed:" >&2; tail -n 30 "/tmp/logs/engine-${entry#*:}.log" >&2; exit 1; }
done
labextension/test.sh "$py"  # jest for the lab extension (builds it first when its output is missing)
set +e
"$py" -m pytest "$@"
rc=$?
set -e
[ "$rc" -eq 5 ] && { echo "pytest collected no tests" >&2; exit 1; }
exit "$rc"
