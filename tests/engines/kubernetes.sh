#!/usr/bin/env bash
# A real single-node Kubernetes v1.20.2 cluster for the `aks` target's tests: etcd, kube-apiserver,
# controller-manager, scheduler, kubelet and kube-proxy, built from Debian bookworm's own `kubernetes`
# source package; the kubelet runs pods on the host Docker engine (dockershim), so locally built images
# run without a registry. Recipe and its three fixes: ../shared/reference/engines.md section 1.
# Verbs (idempotent):
#   build       build the binaries once, cached outside the clone (~5 min on 2 cores, skipped when cached)
#   up          tests/engines/docker.sh up, build, start the cluster, wait for node Ready + default SA
#   kubeconfig  print the admin kubeconfig's path (the cluster must be up)
#   down        stop everything `up` started; remove pod containers, mounts, KUBE-* iptables chains, state
#   status      exit 0 when the API server answers
# Env: NBDEPLOY_K8S_CACHE (default /var/cache/nbdeploy/k8s), NBDEPLOY_ENGINE_STATE (default
#      /var/run/nbdeploy-engines; the cluster lives in $NBDEPLOY_ENGINE_STATE/k8s).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version=v1.20.2
cache=${NBDEPLOY_K8S_CACHE:-/var/cache/nbdeploy/k8s}/$version
bin=$cache/bin
run=${NBDEPLOY_ENGINE_STATE:-/var/run/nbdeploy-engines}/k8s
node=nbx-node
components="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"
daemons="kube-proxy kubelet scheduler controller-manager apiserver etcd"   # stop order
say() { echo "kubernetes.sh: $*" >&2; }
t0=$(date +%s.%N)
el() { say "$(printf '%6.1fs' "$(echo "$(date +%s.%N) - $t0" | bc)") $*"; }

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  local lock=(-o DPkg::Lock::Timeout=600)   # other engineers' installs may hold the dpkg lock
  apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || { apt-get "${lock[@]}" update -qq >&2 && apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2; }
}

built() {
  for c in $components pause; do [ -x "$bin/$c" ] || return 1; done
  "$bin/kube-apiserver" --version 2>/dev/null | grep -q "$version"
}

build() {
  apt_install etcd-server conntrack socat iptables bc curl
  built && { say "binaries $version cached in $bin"; return 0; }
  apt_install golang-go dpkg-dev rsync jq gcc libc6-dev \
    golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev
  local w=$cache/work
  mkdir -p "$w/apt/lists/partial" "$w/apt/cache/archives/partial" "$bin"
  el "building Kubernetes $version from Debian's source package into $cache (~5 min)"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" \
    > "$w/apt/sources.list"
  local a=(-o "Dir::Etc::sourcelist=$w/apt/sources.list" -o Dir::Etc::sourceparts=- \
           -o "Dir::State::Lists=$w/apt/lists" -o "Dir::Cache=$w/apt/cache")
  apt-get "${a[@]}" update -qq >&2              # a private deb-src index; the system apt config is untouched
  cd "$w" && rm -rf src kubernetes_*
  apt-get "${a[@]}" source --download-only -qq kubernetes >&2 2>/dev/null
  dpkg-source -x kubernetes_*.dsc src >/dev/null 2>&1
  el "source $(ls kubernetes_*.dsc) unpacked"
  cd "$w/src"
  # fix: vendored reflect2 1.0.1 predates Go 1.18's map iterators; use Debian's reflect2 + json-iterator
  for p in github.com/modern-go/reflect2 github.com/json-iterator/go; do
    rm -rf "vendor/$p" && cp -r "/usr/share/gocode/src/$p" "vendor/$p"
    find "vendor/$p" \( -name '*_test.go' -o -name go.mod -o -name go.sum \) -delete
  done
  # fix: no CAP_SYS_RESOURCE here, a negative oom_score_adj is refused and the pod sandbox never starts
  sed -i 's/defaultSandboxOOMAdj int = -998/defaultSandboxOOMAdj int = 0/' pkg/kubelet/dockershim/docker_sandbox.go
  sed -i 's/guaranteedOOMScoreAdj int = -997/guaranteedOOMScoreAdj int = 0/' pkg/kubelet/qos/policy.go
  gcc -Os -static -o "$w/pause" build/pause/linux/pause.c && strip "$w/pause"
  export GOCACHE=$w/gocache
  # fix: the generated openapi sources are not in the tarball
  make generated_files >"$w/generated_files.log" 2>&1 || { tail -n 30 "$w/generated_files.log" >&2; return 1; }
  el "make generated_files"
  # fix: 1.20 builds in GOPATH mode only
  mkdir -p "$w/gopath/src/k8s.io" && ln -sfn "$w/src" "$w/gopath/src/k8s.io/kubernetes"
  export GOPATH=$w/gopath GO111MODULE=off CGO_ENABLED=0 GOFLAGS=
  cd "$GOPATH/src/k8s.io/kubernetes"
  local ld="-s -w"
  for v in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
    ld="$ld -X $v.gitVersion=$version -X $v.gitMajor=1 -X $v.gitMinor=20 -X $v.gitTreeState=clean"
  done
  for c in $components; do
    nice go build -o "$w/out/$c" -ldflags "$ld" "k8s.io/kubernetes/cmd/$c"
    el "built $c"
  done
  cp "$w/out/"* "$w/pause" "$bin/"
  # keep the binaries only: the source tree and Go cache are ~2 GB
  cd / && rm -rf "$w"
  built || { say "build finished but $bin/kube-apiserver does not report $version"; return 1; }
  el "binaries cached in $bin"
}

admin_token() { grep -o 'token: "[^"]*' "$run/admin.kubeconfig" | cut -d'"' -f2; }
api_ready() {
  [ -f "$run/admin.kubeconfig" ] || return 1
  curl -sf --max-time 2 --cacert "$run/pki/ca.crt" -H "Authorization: Bearer $(admin_token)" \
    https://127.0.0.1:6443/readyz >/dev/null 2>&1
}
alive() { [ -f "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

pki() {
  [ -f "$run/pki/tokens.csv" ] && [ -f "$run/kubelet.kubeconfig" ] && return 0
  rm -rf "$run/pki"
  local adv=$1 admin kubelet
  mkdir -p "$run/pki" && cd "$run/pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj "/CN=nbdeploy-k8s-ca" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
  printf "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,IP:%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n" \
    "$adv" > apiserver.ext
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 30 \
    -extfile apiserver.ext 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  admin=$(openssl rand -hex 16); kubelet=$(openssl rand -hex 16)
  printf '%s,admin,1,"system:masters"\n%s,system:node:%s,2,"system:nodes"\n' "$admin" "$kubelet" "$node" > tokens.csv
  for u in "admin $admin" "kubelet $kubelet"; do
    set -- $u
    cat > "$run/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: nbdeploy-test, cluster: {server: "https://127.0.0.1:6443", certificate-authority: "$run/pki/ca.crt"}}]
users: [{name: $1, user: {token: "$2"}}]
contexts: [{name: nbdeploy-test, context: {cluster: nbdeploy-test, user: $1}}]
current-context: nbdeploy-test
KC
  done
  chmod 600 "$run"/*.kubeconfig "$run"/pki/*.key "$run/pki/tokens.csv"
}

pause_image() {
  docker image inspect k8s.gcr.io/pause:3.2 >/dev/null 2>&1 && return 0
  local p; p=$(mktemp -d)
  cp "$bin/pause" "$p/"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$p/Dockerfile"
  docker build -q -t k8s.gcr.io/pause:3.2 "$p" >/dev/null 2>&1; rm -rf "$p"
  el "pause image built locally"
}

start() {   # start NAME CMD...: a daemon in its own session, outliving this script
  local name=$1; shift
  alive "$name" && return 0
  setsid "$@" >"$run/logs/$name.log" 2>&1 </dev/null &
  echo $! > "$run/$name.pid"
}

wait_for() {   # wait_for SECONDS WHAT CMD...
  local until=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@"; do
    [ "$(date +%s)" -lt "$until" ] || { say "timed out waiting for $what; logs in $run/logs"; return 1; }
    sleep 0.3
  done
}

node_ready() {
  KUBECONFIG=$run/admin.kubeconfig "$bin/kubectl" get node "$node" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True
}
default_sa() { KUBECONFIG=$run/admin.kubeconfig "$bin/kubectl" get sa default >/dev/null 2>&1; }

up() {
  "$root/tests/engines/docker.sh" up
  build
  if api_ready && node_ready && alive kubelet && alive kube-proxy; then
    say "cluster already up"; echo "$run/admin.kubeconfig"; return 0
  fi
  local adv
  adv=$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1)   # reachable from pods
  [ -n "$adv" ] || { say "no docker0 address: is dockerd running?"; return 1; }
  mkdir -p "$run/logs"
  pki "$adv"; el "pki ready"
  pause_image
  cd "$run"
  start etcd etcd --name nbdeploy --data-dir "$run/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
    --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster nbdeploy=http://127.0.0.1:2380
  start apiserver "$bin/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 --secure-port=6443 --insecure-port=0 \
    --advertise-address="$adv" --service-cluster-ip-range=10.96.0.0/24 --service-node-port-range=30000-32767 \
    --tls-cert-file=pki/apiserver.crt --tls-private-key-file=pki/apiserver.key --client-ca-file=pki/ca.crt \
    --token-auth-file=pki/tokens.csv --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-account-key-file=pki/sa.pub --service-account-signing-key-file=pki/sa.key \
    --service-account-issuer=https://kubernetes.default.svc --allow-privileged=true \
    --kubelet-preferred-address-types=InternalIP,Hostname --v=1
  wait_for 60 "the API server" api_ready; el "apiserver ready"
  start controller-manager "$bin/kube-controller-manager" --kubeconfig=admin.kubeconfig \
    --service-account-private-key-file=pki/sa.key --root-ca-file=pki/ca.crt \
    --cluster-signing-cert-file=pki/ca.crt --cluster-signing-key-file=pki/ca.key \
    --use-service-account-credentials=true --leader-elect=false --horizontal-pod-autoscaler-sync-period=5s --v=1
  start scheduler "$bin/kube-scheduler" --kubeconfig=admin.kubeconfig --leader-elect=false --v=1
  start kubelet "$bin/kubelet" --kubeconfig=kubelet.kubeconfig --hostname-override=$node --container-runtime=docker \
    --pod-infra-container-image=k8s.gcr.io/pause:3.2 --cgroup-driver=cgroupfs --fail-swap-on=false \
    --root-dir="$run/kubelet" --cert-dir="$run/kubelet/pki" --anonymous-auth=true --authorization-mode=AlwaysAllow \
    --cluster-dns=10.96.0.10 --cluster-domain=cluster.local --resolv-conf=/etc/resolv.conf \
    --eviction-hard='memory.available<100Mi,nodefs.available<1%,imagefs.available<1%' --image-gc-high-threshold=100 \
    --oom-score-adj=0 --v=1
  start kube-proxy "$bin/kube-proxy" --kubeconfig=admin.kubeconfig --hostname-override=$node --proxy-mode=iptables \
    --cluster-cidr=172.17.0.0/16 --conntrack-max-per-core=0 --oom-score-adj=0 --v=1
  wait_for 120 "node $node Ready" node_ready; el "node Ready"
  wait_for 60 "the default ServiceAccount" default_sa; el "default ServiceAccount present"
  echo "$run/admin.kubeconfig"
}

down() {
  for c in $daemons; do [ -f "$run/$c.pid" ] && kill "$(cat "$run/$c.pid")" 2>/dev/null || true; done
  for _ in $(seq 1 20); do
    local any=0
    for c in $daemons; do alive "$c" && any=1; done
    [ $any = 0 ] && break; sleep 0.2
  done
  for c in $daemons; do alive "$c" && kill -9 "$(cat "$run/$c.pid")" 2>/dev/null; rm -f "$run/$c.pid"; done
  if docker info >/dev/null 2>&1; then   # pod containers (dockershim names them k8s_*)
    docker ps -aq --filter label=io.kubernetes.pod.namespace | xargs -r docker rm -f >/dev/null
  fi
  # secret/token tmpfs mounts and the kubelet's bind mount of its root dir; /proc/mounts has resolved paths
  local real; real=$(readlink -f "$run" || echo "$run")
  for _ in 1 2 3; do
    awk -v d="$real" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount 2>/dev/null || true
  done
  [ -x "$bin/kube-proxy" ] && "$bin/kube-proxy" --cleanup >/dev/null 2>&1 || true
  for ipt in iptables ip6tables; do   # the chains kubelet itself made; kube-proxy --cleanup leaves them
    command -v $ipt >/dev/null || continue
    $ipt -D INPUT -j KUBE-FIREWALL 2>/dev/null || true; $ipt -D OUTPUT -j KUBE-FIREWALL 2>/dev/null || true
    for tc in filter:KUBE-FIREWALL filter:KUBE-KUBELET-CANARY filter:KUBE-PROXY-CANARY nat:KUBE-MARK-DROP \
              nat:KUBE-MARK-MASQ nat:KUBE-KUBELET-CANARY nat:KUBE-PROXY-CANARY nat:KUBE-POSTROUTING \
              mangle:KUBE-KUBELET-CANARY mangle:KUBE-PROXY-CANARY; do
      $ipt -t "${tc%%:*}" -F "${tc#*:}" 2>/dev/null || true; $ipt -t "${tc%%:*}" -X "${tc#*:}" 2>/dev/null || true
    done
  done
  rm -rf "$run" || { say "could not remove $run; still mounted: $(grep -c "$real" /proc/mounts)"; return 1; }
  say "cluster down"
}

case "${1:-up}" in
  build) build ;;
  up) up ;;
  kubeconfig) api_ready || { say "the cluster is not up (run: $0 up)"; exit 1; }; echo "$run/admin.kubeconfig" ;;
  status) api_ready ;;
  down) down ;;
  *) echo "usage: $0 build|up|kubeconfig|status|down" >&2; exit 2 ;;
esac
