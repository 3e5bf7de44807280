#!/usr/bin/env bash
# Simulated edge devices for the `edge` target's tests: N Docker engines edge1..edgeN, each in its own network
# namespace with its own IP, TLS with client certificates on port 2376 (library: _tls_engine.sh).
# Verbs (idempotent):
#   up [N]        start edge1..edgeN (N default $NBDEPLOY_EDGE_DEVICES or 3; devices above N are left as they
#                 are); prints one line per device on stdout:
#                   nbdeploy device add edgeI --url tcp://IP:2376 --tls-ca ... --tls-cert ... --tls-key ...
#   list          print those lines for the devices that answer now or are offline; starts nothing
#   seed [IMAGE]  load IMAGE (default: the test base image) from the local engine into every running device
#                 that lacks it (for "base image already there" benchmarks)
#   offline NAME  cut NAME's network (all packets on its link dropped: connections time out, as with a device
#                 that lost its network); the engine and its containers keep running
#   online NAME   restore it
#   restart NAME  stop NAME's daemon and start it again (a device rebooting its engine)
#   down          stop every device and remove the namespaces (certificates and data-roots are kept)
#   purge         down, then remove certificates and data-roots
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
TLS_SCRIPT=edge.sh
# shellcheck source=_tls_engine.sh
. "$here/_tls_engine.sh"
max=200

index_of() {   # edgeI -> 10+I
  [[ ${1:-} =~ ^edge([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] && [ "${BASH_REMATCH[1]}" -le $max ] \
    || { tls_say "no device '${1:-}' (names are edge1..edge$max)"; return 2; }
  echo $((10 + BASH_REMATCH[1]))
}

add_line() {
  local c; c=$(tls_client_dir "$1")
  echo "nbdeploy device add $1 --url $(tls_url "$1" "$2") --tls-ca $c/ca.pem --tls-cert $c/cert.pem --tls-key $c/key.pem"
}

devices() {   # names of devices with a namespace, in order
  local ns
  for ns in /var/run/netns/nbdeploy-edge*; do [ -e "$ns" ] && basename "$ns" | sed 's/^nbdeploy-//'; done | sort -V
}

up() {
  local n=${1:-${NBDEPLOY_EDGE_DEVICES:-3}} i pids=() rc=0
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le $max ] || { tls_say "up N: N must be 1..$max"; return 2; }
  for i in $(seq 1 "$n"); do tls_up "edge$i" $((10 + i)) & pids+=($!); done
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  [ $rc -eq 0 ] || return 1
  for i in $(seq 1 "$n"); do add_line "edge$i" $((10 + i)); done
}

case "${1:-up}" in
  up) up "${2:-}" ;;
  list)
    for d in $(devices); do
      i=$(index_of "$d")
      if tls_answers "$d" "$i" || tls_is_offline "$d"; then add_line "$d" "$i"; fi
    done ;;
  seed)
    for d in $(devices); do
      i=$(index_of "$d")
      tls_answers "$d" "$i" && tls_seed "$d" "$i" "${2:-${NBDEPLOY_TEST_BASE_IMAGE:-nbdeploy/python-base:3.11-bookworm}}"
    done ;;
  offline) i=$(index_of "${2:-}"); tls_offline "$2" ;;
  online) i=$(index_of "${2:-}"); tls_online "$2" ;;
  restart) i=$(index_of "${2:-}"); tls_stop_daemon "$2"; tls_up "$2" "$i"; add_line "$2" "$i" ;;
  down|purge) for d in $(devices); do tls_down "$d" "$([ "$1" = purge ] && echo purge)"; done
    if [ "$1" = purge ]; then for d in "$tls_state"/edge* "$tls_data"/edge*; do [ -e "$d" ] && rm -rf "$d"; done; fi ;;
  *) echo "usage: $0 up [N]|list|seed [IMAGE]|offline NAME|online NAME|restart NAME|down|purge" >&2; exit 2 ;;
esac
