# shellcheck shell=bash
# Library sourced by aci.sh and edge.sh: one Docker engine reached over TCP+TLS, in its own network
# namespace with its own IP (recipe: ../shared/reference/engines.md section 3b).
#
# An engine NAME with index I (1..250) gets:
#   network namespace  nbdeploy-NAME, address 10.231.I.2/24 on its eth0; the host side is nbe-NAME 10.231.I.1
#   dockerd            tcp://10.231.I.2:2376 with --tlsverify (client certificates required), plus a unix
#                      socket $state/NAME/docker.sock for the harness itself (never used by tests as "the engine")
#   certificates       its own CA (EC P-256, 30 days, renewed 1 day before expiry), in $state/NAME/{ca,server,client}/;
#                      the client folder has ca.pem, cert.pem, key.pem (DOCKER_CERT_PATH layout)
#   data-root          $data/NAME (kept by `down`, so shipped images survive; removed by purge)
# Env: NBDEPLOY_ENGINE_STATE (default /var/run/nbdeploy-engines), NBDEPLOY_ENGINE_DATA (default
#      /var/lib/nbdeploy-engines), NBDEPLOY_ENGINE_NET (first two octets, default 10.231).
# Everything is idempotent; logs go to stderr, only results to stdout.

tls_state=${NBDEPLOY_ENGINE_STATE:-/var/run/nbdeploy-engines}
tls_data=${NBDEPLOY_ENGINE_DATA:-/var/lib/nbdeploy-engines}
tls_net=${NBDEPLOY_ENGINE_NET:-10.231}
tls_port=2376

tls_say() { echo "${TLS_SCRIPT:-tls-engine}: $*" >&2; }

# --- names --------------------------------------------------------------------------------------
tls_ns() { echo "nbdeploy-$1"; }
tls_veth() { echo "nbe-$1"; }               # <= 15 characters: NAME <= 11
tls_ip() { echo "$tls_net.$2.2"; }          # NAME INDEX
tls_gw() { echo "$tls_net.$2.1"; }
tls_dir() { echo "$tls_state/$1"; }
tls_client_dir() { echo "$tls_state/$1/client"; }
tls_url() { echo "tcp://$(tls_ip "$1" "$2"):$tls_port"; }

tls_check_name() {
  [[ $1 =~ ^[a-z][a-z0-9-]{0,10}$ ]] || { tls_say "bad engine name '$1' (a-z0-9-, at most 11)"; return 2; }
  [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] && [ "$2" -le 250 ] || { tls_say "bad engine index '$2' (1..250)"; return 2; }
}

# --- certificates -------------------------------------------------------------------------------
_tls_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# tls_certs NAME INDEX: a CA, a server cert for the engine's IP, a client cert; reused while valid
tls_certs() {
  local name=$1 ip d ca srv cli
  ip=$(tls_ip "$1" "$2"); d=$(tls_dir "$name"); ca=$d/ca; srv=$d/server; cli=$d/client
  if [ -s "$cli/cert.pem" ] && [ -s "$srv/server-cert.pem" ] && [ "$(cat "$srv/ip" 2>/dev/null)" = "$ip" ] \
     && openssl x509 -checkend 86400 -noout -in "$srv/server-cert.pem" >/dev/null 2>&1 \
     && openssl x509 -checkend 86400 -noout -in "$cli/cert.pem" >/dev/null 2>&1; then
    return 0
  fi
  tls_say "$name: generating CA, server and client certificates"
  rm -rf "$ca" "$srv" "$cli"
  mkdir -p "$ca" "$srv" "$cli" && chmod 700 "$ca" "$srv" "$cli"
  _tls_key "$ca/ca-key.pem"
  openssl req -x509 -new -key "$ca/ca-key.pem" -out "$ca/ca.pem" -days 30 -subj "/CN=nbdeploy-test-ca-$name" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  _tls_key "$srv/server-key.pem"
  openssl req -new -key "$srv/server-key.pem" -out "$srv/server.csr" -subj "/CN=nbdeploy-$name" 2>/dev/null
  printf 'subjectAltName=IP:%s,DNS:nbdeploy-%s\nextendedKeyUsage=serverAuth\n' "$ip" "$name" > "$srv/server.ext"
  openssl x509 -req -in "$srv/server.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca-key.pem" -CAcreateserial \
    -out "$srv/server-cert.pem" -days 30 -extfile "$srv/server.ext" 2>/dev/null
  _tls_key "$cli/key.pem"
  openssl req -new -key "$cli/key.pem" -out "$cli/client.csr" -subj "/CN=nbdeploy-client-$name" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' > "$cli/client.ext"
  openssl x509 -req -in "$cli/client.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca-key.pem" -CAcreateserial \
    -out "$cli/cert.pem" -days 30 -extfile "$cli/client.ext" 2>/dev/null
  cp "$ca/ca.pem" "$srv/ca.pem"; cp "$ca/ca.pem" "$cli/ca.pem"
  rm -f "$srv/server.csr" "$cli/client.csr"
  chmod 600 "$ca"/*.pem "$srv"/*.pem "$cli"/*.pem
  echo "$ip" > "$srv/ip"
}

# --- network namespace --------------------------------------------------------------------------
tls_netns() {
  local name=$1 ns veth ip gw
  ns=$(tls_ns "$name"); veth=$(tls_veth "$name"); ip=$(tls_ip "$1" "$2"); gw=$(tls_gw "$1" "$2")
  if [ -e "/var/run/netns/$ns" ] && ip -o -4 addr show dev "$veth" 2>/dev/null | grep -q " $gw/24 " \
     && ip netns exec "$ns" ip -o -4 addr show dev eth0 2>/dev/null | grep -q " $ip/24 "; then
    return 0
  fi
  tls_say "$name: network namespace $ns, $ip (host side $veth $gw)"
  tls_stop_daemon "$name"
  ip netns del "$ns" 2>/dev/null || true
  ip link del "$veth" 2>/dev/null || true
  ip netns add "$ns"
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  ip addr add "$gw/24" dev "$veth"
  ip link set "$veth" up
  ip netns exec "$ns" sh -c "ip link set lo up && ip addr add $ip/24 dev eth0 && ip link set eth0 up && ip route add default via $gw"
}

# --- the daemon -----------------------------------------------------------------------------------
# tls_answers NAME INDEX: the engine answers /_ping over TLS with the client certificate
tls_answers() {
  local cli; cli=$(tls_client_dir "$1")
  [ -s "$cli/cert.pem" ] || return 1
  curl -sf --noproxy '*' --max-time 2 --cacert "$cli/ca.pem" --cert "$cli/cert.pem" --key "$cli/key.pem" \
    "https://$(tls_ip "$1" "$2"):$tls_port/_ping" >/dev/null 2>&1
}

# tls_pid NAME: the pid of NAME's dockerd, only if that process really is it (a stale pidfile after a reboot
# may name an unrelated process, which must never be signalled)
tls_pid() {
  local d pid; d=$(tls_dir "$1")
  pid=$(cat "$d/dockerd.pid" 2>/dev/null || true)
  [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--exec-root $d/exec " && echo "$pid"
  return 0
}
tls_running() { local p; p=$(tls_pid "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

tls_start_daemon() {
  local name=$1 d srv ns ip
  d=$(tls_dir "$name"); srv=$d/server; ns=$(tls_ns "$name"); ip=$(tls_ip "$1" "$2")
  tls_answers "$1" "$2" && { tls_say "$name: dockerd already answers on $(tls_url "$1" "$2")"; return 0; }
  tls_stop_daemon "$name"
  mkdir -p "$tls_data/$name" "$d/exec"
  tls_say "$name: starting dockerd on $(tls_url "$1" "$2") (log: $d/dockerd.log)"
  # nsenter --net, not `ip netns exec`: the latter remounts /sys and dockerd dies ("Devices cgroup isn't mounted").
  # setsid: the daemon outlives this script and the caller's process group.
  setsid nsenter --net="/var/run/netns/$ns" dockerd \
    --host "tcp://$ip:$tls_port" --host "unix://$d/docker.sock" \
    --tlsverify --tlscacert "$srv/ca.pem" --tlscert "$srv/server-cert.pem" --tlskey "$srv/server-key.pem" \
    --data-root "$tls_data/$name" --exec-root "$d/exec" --pidfile "$d/dockerd.pid" \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/nbdeploy-$name" --shutdown-timeout 5 \
    >>"$d/dockerd.log" 2>&1 </dev/null 9>&- &
  local i
  for i in $(seq 1 150); do
    tls_answers "$1" "$2" && { tls_say "$name: ready"; return 0; }
    [ "$i" -gt 10 ] && ! tls_running "$name" && break
    sleep 0.1
  done
  tls_say "$name: dockerd did not answer; last log lines:"; tail -n 20 "$d/dockerd.log" >&2
  return 1
}

tls_stop_daemon() {
  local name=$1 pid i
  pid=$(tls_pid "$name")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || { rm -f "$(tls_dir "$name")/dockerd.pid"; return 0; }
  tls_say "$name: stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  for i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { tls_say "$name: dockerd did not stop in 15 s; killing"; kill -KILL "$pid"; }
  rm -f "$(tls_dir "$name")/dockerd.pid"
}

# --- verbs ----------------------------------------------------------------------------------------
# tls_up NAME INDEX: certificates, namespace, daemon (each step skipped when already done)
tls_up() {
  tls_check_name "$1" "$2" || return
  mkdir -p "$(tls_dir "$1")"
  (
    flock 9
    tls_certs "$1" "$2" && tls_netns "$1" "$2" && tls_start_daemon "$1" "$2"
  ) 9>"$(tls_dir "$1")/.lock"
}

# tls_seed NAME INDEX IMAGE: load IMAGE from the local engine into NAME's engine (whole image, through the
# harness's unix socket) unless it is there already. For benchmarks that start from "base image present";
# nbdeploy itself ships images with nbdeploy.remote.ship_image (only missing layers, over TLS).
tls_seed() {
  local sock; sock=unix://$(tls_dir "$1")/docker.sock
  docker image inspect "$3" >/dev/null 2>&1 || { tls_say "$1: no local image $3 (tests/engines/docker.sh up)"; return 1; }
  if [ "$(docker -H "$sock" image inspect -f '{{.Id}}' "$3" 2>/dev/null)" = "$(docker image inspect -f '{{.Id}}' "$3")" ]; then
    tls_say "$1: $3 present"; return 0
  fi
  tls_say "$1: loading $3"
  docker save "$3" | docker -H "$sock" load -q >&2
}

# tls_down NAME [purge]: stop the daemon, remove the namespace; purge also removes certificates and data-root
tls_down() {
  local name=$1 ns veth
  ns=$(tls_ns "$name"); veth=$(tls_veth "$name")
  tls_stop_daemon "$name"
  if [ -e "/var/run/netns/$ns" ]; then tls_say "$name: removing network namespace $ns"; ip netns del "$ns"; fi
  ip link del "$veth" 2>/dev/null || true
  if [ "${2:-}" = purge ]; then
    tls_say "$name: removing certificates and data-root $tls_data/$name"
    rm -rf "${tls_state:?}/$name" "${tls_data:?}/$name"
  fi
}

# tls_offline NAME / tls_online NAME: drop (restore) all traffic on the device's eth0, in its namespace.
# Packets vanish, as with a device that lost its network: new connections time out, open ones stall. The
# raw/mangle tables act before Docker's NAT and filter rules, so published container ports are cut too
# (DNAT'd traffic to containers goes through FORWARD, never INPUT).
_tls_rules() {
  echo "raw PREROUTING -i eth0 -m comment --comment nbdeploy-offline -j DROP"
  echo "mangle POSTROUTING -o eth0 -m comment --comment nbdeploy-offline -j DROP"
}
tls_offline() {
  local ns table chain rest; ns=$(tls_ns "$1")
  [ -e "/var/run/netns/$ns" ] || { tls_say "$1: no such engine (namespace $ns missing)"; return 1; }
  while read -r table chain rest; do
    # shellcheck disable=SC2086
    nsenter --net="/var/run/netns/$ns" iptables -w -t "$table" -C "$chain" $rest 2>/dev/null \
      || nsenter --net="/var/run/netns/$ns" iptables -w -t "$table" -I "$chain" 1 $rest
  done < <(_tls_rules)
  tls_say "$1: offline (traffic on its network dropped)"
}
tls_online() {
  local ns table chain rest; ns=$(tls_ns "$1")
  [ -e "/var/run/netns/$ns" ] || { tls_say "$1: no such engine (namespace $ns missing)"; return 1; }
  while read -r table chain rest; do
    # shellcheck disable=SC2086
    while nsenter --net="/var/run/netns/$ns" iptables -w -t "$table" -C "$chain" $rest 2>/dev/null; do
      nsenter --net="/var/run/netns/$ns" iptables -w -t "$table" -D "$chain" $rest
    done
  done < <(_tls_rules)
  tls_say "$1: online"
}
tls_is_offline() {
  local table chain rest
  read -r table chain rest < <(_tls_rules)
  # shellcheck disable=SC2086
  nsenter --net="/var/run/netns/$(tls_ns "$1")" iptables -w -t "$table" -C "$chain" $rest 2>/dev/null
}
