"""A managed port-forward to a ClusterIP Service, so the notebook reaches it on 127.0.0.1.

:class:`ServiceForwarder` listens on a loopback port; every accepted connection goes, through the API
server's port-forward subresource, to one of the Service's *ready* endpoints (round robin), so it keeps
working across rolling updates and spreads new connections over the replicas. One forwarder per service
lives as long as this Python process (daemon threads); :func:`forwarder` starts or reuses it.
"""

from __future__ import annotations

import itertools
import logging
import select
import socket
import threading
from typing import Any

log = logging.getLogger(__name__)

_FORWARDERS: dict[tuple[str, str, str, str], ServiceForwarder] = {}
_LOCK = threading.Lock()


class ServiceForwarder:
    """Loopback port -> ready pods of one Service (through the API server)."""

    def __init__(self, cluster: Any, namespace: str, service: str, target_port: int) -> None:
        self.cluster, self.namespace, self.service, self.target_port = cluster, namespace, service, target_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._counter = itertools.count()
        self._closed = False
        threading.Thread(target=self._accept, name=f"nbdeploy port-forward {service}", daemon=True).start()

    @property
    def alive(self) -> bool:
        return not self._closed

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.close()
        except OSError:  # pragma: no cover
            pass

    def ready_pods(self) -> list[str]:
        """Names of the pods in the Service's ready endpoints."""
        endpoints = self.cluster.core().read_namespaced_endpoints(self.service, self.namespace, _request_timeout=10)
        pods = []
        for subset in endpoints.subsets or []:
            for address in subset.addresses or []:
                ref = address.target_ref
                if ref is not None and ref.kind == "Pod":
                    pods.append(ref.name)
        return sorted(pods)

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        pf = remote = None
        try:
            pods = self.ready_pods()
            if not pods:
                log.warning("port-forward %s/%s: no ready pod", self.namespace, self.service)
                return
            pod = pods[next(self._counter) % len(pods)]
            pf, remote = open_pod_socket(self.cluster, self.namespace, pod, self.target_port)
            _pump(conn, remote)
        except Exception as exc:  # noqa: BLE001 - one connection fails, the forwarder goes on
            log.warning("port-forward %s/%s: %s", self.namespace, self.service, exc)
        finally:
            conn.close()
            if pf is not None:
                close_pod_socket(pf, remote)


def open_pod_socket(cluster: Any, namespace: str, pod: str, port: int) -> tuple[Any, Any]:
    """(port-forward, socket) connected to ``port`` of ``pod``; close the port-forward when done."""
    from kubernetes.stream import portforward

    core = cluster.core()
    pf = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port))
    return pf, pf.socket(port)


def close_pod_socket(pf: Any, sock: Any, timeout: float = 2.0) -> None:
    """Half-close, let the client's proxy thread see EOF and close its end, then close: closing with unread
    data would make that thread fail with ConnectionResetError."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(timeout)
        while sock.recv(65536):
            pass
    except OSError:
        pass
    finally:
        pf.close()


def _pump(a: socket.socket, b: Any) -> None:
    """Copy bytes both ways until either side closes."""
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], 300)
        if not readable:
            return
        for s in readable:
            try:
                data = s.recv(65536)
            except OSError:
                return
            if not data:
                return
            (b if s is a else a).sendall(data)


def forwarder(cluster: Any, namespace: str, service: str, target_port: int) -> ServiceForwarder:
    """The running forwarder for ``service`` (started on first use)."""
    key = (cluster.kubeconfig, cluster.context, namespace, service)
    with _LOCK:
        existing = _FORWARDERS.get(key)
        if existing is not None and existing.alive:
            return existing
        fwd = ServiceForwarder(cluster, namespace, service, target_port)
        _FORWARDERS[key] = fwd
        return fwd


def stop_forwarder(kubeconfig: str, context: str, namespace: str, service: str) -> None:
    with _LOCK:
        fwd = _FORWARDERS.pop((kubeconfig, context, namespace, service), None)
    if fwd is not None:
        fwd.close()
