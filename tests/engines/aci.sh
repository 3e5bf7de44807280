#!/usr/bin/env bash
# The remote Docker engine for the container-instance (`aci`) target's tests: one dockerd in its own network
# namespace with its own IP, TLS with client certificates on port 2376 (library: _tls_engine.sh).
# Verbs (idempotent):
#   up     certificates, namespace and daemon (seconds when already set up); prints on stdout
#            export DOCKER_HOST=tcp://IP:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=DIR
#          so `eval "$(tests/engines/aci.sh up)"` points the docker CLI/SDK at it
#   seed [IMAGE]  load IMAGE (default: the test base image) from the local engine unless present
#   env    print that line when the engine answers (exit 1 otherwise); starts nothing
#   restart  stop the daemon and start it again (containers with a restart policy come back)
#   down   stop the daemon and remove the namespace (certificates and data-root are kept)
#   purge  down, then remove certificates and data-root (shipped images)
# The engine has none of the local engine's images: ship them (nbdeploy.remote.ship_image).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
TLS_SCRIPT=aci.sh
# shellcheck source=_tls_engine.sh
. "$here/_tls_engine.sh"
name=aci
index=1

env_line() {
  echo "export DOCKER_HOST=$(tls_url $name $index) DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$(tls_client_dir $name)"
}

case "${1:-up}" in
  up) tls_up $name $index; env_line ;;
  seed) tls_answers $name $index || { tls_say "the aci engine does not answer: tests/engines/aci.sh up"; exit 1; }
    tls_seed $name $index "${2:-${NBDEPLOY_TEST_BASE_IMAGE:-nbdeploy/python-base:3.11-bookworm}}" ;;
  env) tls_answers $name $index || { tls_say "the aci engine does not answer: tests/engines/aci.sh up"; exit 1; }; env_line ;;
  restart) tls_stop_daemon $name; tls_up $name $index; env_line ;;
  down) tls_down $name ;;
  purge) tls_down $name purge ;;
  *) echo "usage: $0 up|env|seed [IMAGE]|restart|down|purge" >&2; exit 2 ;;
esac
