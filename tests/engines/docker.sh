#!/usr/bin/env bash
# The local Docker engine for the `local` target's tests, and the test base image.
# Verbs (idempotent):
#   up    install Debian's docker.io when dockerd is missing, start dockerd when none answers on
#         /var/run/docker.sock, wait for it, build the test base image once (skipped when present)
#   down  stop the dockerd this script started (pidfile); leaves a dockerd started by others alone
# Env: NBDEPLOY_TEST_BASE_IMAGE (tag, default nbdeploy/python-base:3.11-bookworm),
#      NBDEPLOY_DOCKERD_LOG (default /var/log/nbdeploy-dockerd.log), NBDEPLOY_PYTHON (default .venv/bin/python).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sock=/var/run/docker.sock
state=${NBDEPLOY_ENGINE_STATE:-/var/run/nbdeploy-engines}
pidfile=$state/dockerd.pid
log=${NBDEPLOY_DOCKERD_LOG:-/var/log/nbdeploy-dockerd.log}
tag=${NBDEPLOY_TEST_BASE_IMAGE:-nbdeploy/python-base:3.11-bookworm}
say() { echo "docker.sh: $*" >&2; }
answers() { docker -H "unix://$sock" info >/dev/null 2>&1; }

install_engine() {
  command -v dockerd >/dev/null 2>&1 && return 0
  say "installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q docker.io >&2 || { apt-get update -q >&2 && apt-get install -y -q docker.io >&2; }
}

start_engine() {
  answers && { say "dockerd already answers on $sock"; return 0; }
  mkdir -p "$state" "$(dirname "$log")"
  say "starting dockerd (log: $log)"
  # setsid: the daemon outlives this script and is not killed with the caller's process group
  setsid dockerd --host "unix://$sock" --exec-opt native.cgroupdriver=cgroupfs --pidfile "$pidfile.dockerd" \
    >>"$log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 1 150); do
    answers && { say "dockerd ready"; return 0; }
    kill -0 "$(cat "$pidfile")" 2>/dev/null || break
    sleep 0.2
  done
  say "dockerd did not answer; last log lines:"; tail -n 20 "$log" >&2; return 1
}

base_image() {
  if docker image inspect "$tag" >/dev/null 2>&1; then say "base image $tag present"; return 0; fi
  py=${NBDEPLOY_PYTHON:-$root/.venv/bin/python}
  [ -x "$py" ] || py=$("$root/scripts/dev-env.sh" | tail -n 1)
  command -v debootstrap >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2
  ca_args=()
  [ -f /etc/ssl/certs/ca-certificates.crt ] && ca_args=(--extra-ca /etc/ssl/certs/ca-certificates.crt)
  say "building base image $tag (debootstrap, cached in ~/.cache/nbdeploy/base)"
  "$py" -m nbdeploy base-image build --tag "$tag" "${ca_args[@]}" >&2
}

stop_engine() {
  [ -f "$pidfile" ] || { say "no dockerd started by this script"; return 0; }
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { say "dockerd did not stop in 20 s; killing"; kill -KILL "$pid"; }
  fi
  rm -f "$pidfile" "$pidfile.dockerd"
}

case "${1:-up}" in
  up) install_engine; start_engine; base_image ;;
  down) stop_engine ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
