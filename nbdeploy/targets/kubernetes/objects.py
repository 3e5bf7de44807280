"""Thin steps over the API: apply, list, prune and delete a service's objects, observe it, read logs and events.

Every object is handled as a plain dict through the client's dynamic API; every call that fails is turned
into nbdeploy's error by :func:`~nbdeploy.targets.kubernetes.cluster.api_error`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from nbdeploy.errors import InvalidSpec, NbdeployError
from nbdeploy.targets.base import Handle
from nbdeploy.targets.kubernetes.cluster import FIELD_MANAGER, REQUEST_TIMEOUT_S, Cluster, api_error, import_kubernetes
from nbdeploy.targets.kubernetes.manifests import CONTAINER_PORT, LABEL_MANAGED, LABEL_SERVICE, pick_hpa_api
from nbdeploy.targets.kubernetes.status import Verdict, classify, ready_endpoints

log = logging.getLogger(__name__)

LABEL_NAMESPACE_OWNER = "nbdeploy.namespace-for"
KINDS = (("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "Secret"), ("networking.k8s.io/v1", "Ingress"))
"""Kinds nbdeploy creates (plus the HorizontalPodAutoscaler in whichever version the server offers)."""


def _api(cluster: Cluster, verb: str, resource: str, namespace: str | None, call: Callable[[], Any]) -> Any:
    kubernetes = import_kubernetes()
    try:
        return call()
    except kubernetes.client.exceptions.ApiException as exc:
        raise api_error(exc, verb, resource, namespace, cluster) from exc
    except NbdeployError:
        raise
    except OSError as exc:
        from nbdeploy.targets.kubernetes.cluster import unreachable

        raise unreachable(cluster, exc) from exc


def best_effort(step: Callable[[], Any]) -> None:
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - cleanup after another error; that error is what the user sees
        log.warning("cleanup failed: %s", exc)


def _plural(kind: str) -> str:
    return {"Ingress": "ingresses"}.get(kind, kind.lower() + "s")


def ensure_namespace(cluster: Cluster, namespace: str, create: bool, service: str) -> bool:
    """True when this call created the namespace."""
    kubernetes = import_kubernetes()
    resource = cluster.resource("v1", "Namespace")
    try:
        resource.get(name=namespace, _request_timeout=REQUEST_TIMEOUT_S)
        return False
    except kubernetes.client.exceptions.ApiException as exc:
        if getattr(exc, "status", None) != 404:
            raise api_error(exc, "get", "namespaces", None, cluster) from exc
    if not create:
        raise InvalidSpec(
            "namespace",
            f"{namespace!r} does not exist in context {cluster.context!r}; create it "
            "(kubectl create namespace) or allow nbdeploy to (create_namespace=True)",
        )
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": {LABEL_MANAGED: "true", LABEL_NAMESPACE_OWNER: service}},
    }
    _api(cluster, "create", "namespaces", None, lambda: resource.create(body=body))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the token controller's default ServiceAccount is needed to create pods
        try:
            cluster.resource("v1", "ServiceAccount").get(name="default", namespace=namespace)
            break
        except kubernetes.client.exceptions.ApiException:
            time.sleep(0.2)
    return True


def apply_all(
    cluster: Cluster, manifests: list[dict[str, Any]], namespace: str
) -> dict[tuple[str, str], dict[str, Any]]:
    """Server-side apply each object; their state after the apply, by (kind, name)."""
    applied = {}
    for manifest in manifests:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        resource = _api(
            cluster,
            "discover",
            _plural(kind),
            namespace,
            functools.partial(cluster.resource, manifest["apiVersion"], manifest["kind"]),
        )
        result = _api(
            cluster,
            "patch",
            _plural(kind),
            namespace,
            functools.partial(
                resource.server_side_apply,
                body=manifest,
                namespace=namespace,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            ),
        )
        applied[(kind, name)] = result.to_dict()
    return applied


def list_objects(cluster: Cluster, api_version: str, kind: str, namespace: str, service: str) -> list[dict[str, Any]]:
    resource = cluster.resource(api_version, kind)
    result = _api(
        cluster,
        "list",
        _plural(kind),
        namespace,
        lambda: resource.get(
            namespace=namespace, label_selector=f"{LABEL_SERVICE}={service}", _request_timeout=REQUEST_TIMEOUT_S
        ),
    )
    return [item.to_dict() if hasattr(item, "to_dict") else item for item in result.to_dict().get("items", [])]


def prune(cluster: Cluster, service: str, namespace: str, keep: list[dict[str, Any]]) -> None:
    """Delete the service's objects of nbdeploy's kinds that ``keep`` no longer has (HPA, Secret, Ingress)."""
    kept = {(m["kind"], m["metadata"]["name"]) for m in keep}
    kinds = [(a, k) for a, k in KINDS if k in ("Secret", "Ingress")] + _hpa_kinds(cluster)
    for api_version, kind in kinds:
        for obj in list_objects(cluster, api_version, kind, namespace, service):
            if (kind, obj["metadata"]["name"]) not in kept:
                delete_object(cluster, api_version, kind, namespace, obj["metadata"]["name"])


def _hpa_kinds(cluster: Cluster) -> list[tuple[str, str]]:
    served = cluster.served_versions("autoscaling")
    try:
        return [(pick_hpa_api(served), "HorizontalPodAutoscaler")]
    except ValueError:
        return []


def delete_object(
    cluster: Cluster, api_version: str, kind: str, namespace: str, name: str, grace_period: int | None = None
) -> None:
    kubernetes = import_kubernetes()
    body: dict[str, Any] = {"propagationPolicy": "Background"}
    if grace_period is not None:
        body["gracePeriodSeconds"] = grace_period
    try:
        cluster.resource(api_version, kind).delete(name=name, namespace=namespace, body=body)
    except kubernetes.client.exceptions.ApiException as exc:
        if getattr(exc, "status", None) != 404:
            raise api_error(exc, "delete", _plural(kind), namespace, cluster) from exc


def delete_all(cluster: Cluster, service: str, namespace: str, hpa_api: str | None) -> None:
    """Delete every object labelled for ``service``; the garbage collector removes the Deployment's
    ReplicaSets and pods, and this removes any that lost their owner."""
    kinds = list(KINDS) + _hpa_kinds(cluster) + [("apps/v1", "ReplicaSet"), ("v1", "Pod")]
    for api_version, kind in kinds:
        for obj in list_objects(cluster, api_version, kind, namespace, service):
            owned = bool(obj["metadata"].get("ownerReferences")) and kind in ("ReplicaSet", "Pod")
            if not obj["metadata"].get("deletionTimestamp") and not owned:
                delete_object(cluster, api_version, kind, namespace, obj["metadata"]["name"])


def delete_namespace_if_unused(cluster: Cluster, namespace: str, service: str) -> None:
    """Delete a namespace nbdeploy created for ``service`` once nothing of nbdeploy's is left in it."""
    ns = _api(
        cluster, "get", "namespaces", None, lambda: cluster.resource("v1", "Namespace").get(name=namespace)
    ).to_dict()
    if (ns["metadata"].get("labels") or {}).get(LABEL_NAMESPACE_OWNER) != service:
        return
    resource = cluster.resource("apps/v1", "Deployment")
    others = resource.get(namespace=namespace, label_selector=f"{LABEL_MANAGED}=true").to_dict().get("items", [])
    if not others:
        delete_object(cluster, "v1", "Namespace", "", namespace)


def observe(cluster: Cluster, handle: Handle) -> tuple[Verdict, list[dict[str, Any]], list[dict[str, Any]]]:
    ns, name = handle["namespace"], handle["name"]
    kubernetes = import_kubernetes()
    try:
        deployment = (
            cluster.resource("apps/v1", "Deployment")
            .get(name=name, namespace=ns, _request_timeout=REQUEST_TIMEOUT_S)
            .to_dict()
        )
    except kubernetes.client.exceptions.ApiException as exc:
        if getattr(exc, "status", None) != 404:
            raise api_error(exc, "get", "deployments", ns, cluster) from exc
        deployment = None
    replica_sets = list_objects(cluster, "apps/v1", "ReplicaSet", ns, name)
    pods = list_objects(cluster, "v1", "Pod", ns, name)
    events = service_events(cluster, handle, pods, replica_sets)
    try:
        endpoints = cluster.resource("v1", "Endpoints").get(name=name, namespace=ns).to_dict()
    except kubernetes.client.exceptions.ApiException as exc:
        if getattr(exc, "status", None) != 404:
            raise api_error(exc, "get", "endpoints", ns, cluster) from exc
        endpoints = None
    verdict = classify(deployment, replica_sets, pods, events, handle.get("generation", 0), ready_endpoints(endpoints))
    return verdict, pods, events


def service_events(
    cluster: Cluster, handle: Handle, pods: list[dict[str, Any]], replica_sets: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Events about the service's Deployment, ReplicaSets, pods and HPA."""
    ns, name = handle["namespace"], handle["name"]
    names = {name} | {p["metadata"]["name"] for p in pods} | {r["metadata"]["name"] for r in replica_sets or []}
    if replica_sets is None:
        names |= {r["metadata"]["name"] for r in list_objects(cluster, "apps/v1", "ReplicaSet", ns, name)}
    result = _api(
        cluster,
        "list",
        "events",
        ns,
        lambda: cluster.resource("v1", "Event").get(namespace=ns, _request_timeout=REQUEST_TIMEOUT_S),
    ).to_dict()
    return [e for e in result.get("items", []) if (e.get("involvedObject") or {}).get("name") in names]


def pod_log(cluster: Cluster, namespace: str, pod: str, num_lines: int, previous: bool = False) -> str:
    kubernetes = import_kubernetes()
    try:
        return str(
            cluster.core().read_namespaced_pod_log(
                pod, namespace, tail_lines=max(1, num_lines), previous=previous, _request_timeout=REQUEST_TIMEOUT_S
            )
            or ""
        )
    except kubernetes.client.exceptions.ApiException as exc:
        if getattr(exc, "status", None) in (400, 404):  # no previous container, container not started yet
            return ""
        raise api_error(exc, "get", "pods/log", namespace, cluster) from exc


def node_port(service: dict[str, Any]) -> int | None:
    for port in (service.get("spec") or {}).get("ports") or []:
        if port.get("nodePort"):
            return int(port["nodePort"])
    return None


def node_address(cluster: Cluster) -> str:
    """127.0.0.1 for a cluster on this machine, else the first node's ExternalIP or InternalIP."""
    if cluster.local:
        return "127.0.0.1"
    nodes = (
        _api(cluster, "list", "nodes", None, lambda: cluster.resource("v1", "Node").get()).to_dict().get("items", [])
    )
    for wanted in ("ExternalIP", "InternalIP"):
        for node in nodes:
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == wanted:
                    return str(address["address"])
    return "127.0.0.1"


def load_balancer_address(cluster: Cluster, handle: Handle) -> str | None:
    service = _api(
        cluster,
        "get",
        "services",
        handle["namespace"],
        lambda: cluster.resource("v1", "Service").get(name=handle["name"], namespace=handle["namespace"]),
    ).to_dict()
    for entry in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        if entry.get("ip") or entry.get("hostname"):
            return str(entry.get("ip") or entry.get("hostname"))
    return None


def wait_for_key(cluster: Cluster, namespace: str, pods: list[str], key: str, timeout: float) -> None:
    """Wait until every pod accepts ``key`` (GET /swagger.json is not 401), asking each pod through a port-forward."""
    import http.client

    from nbdeploy.targets.kubernetes.portforward import close_pod_socket, open_pod_socket

    deadline = time.monotonic() + timeout
    pending = list(pods)
    while pending and time.monotonic() < deadline:
        for pod in list(pending):
            pf = sock = None
            try:
                pf, sock = open_pod_socket(cluster, namespace, pod, CONTAINER_PORT)
                conn = http.client.HTTPConnection("localhost", CONTAINER_PORT, timeout=5)
                conn.sock = sock
                conn.request("GET", "/swagger.json", headers={"Authorization": f"Bearer {key}", "Connection": "close"})
                response = conn.getresponse()
                response.read()
                if response.status != 401:
                    pending.remove(pod)
            except Exception as exc:  # noqa: BLE001 - a pod going away is fine; we only wait
                log.debug("key check on %s: %s", pod, exc)
            finally:
                if pf is not None:
                    close_pod_socket(pf, sock)
        if pending:
            time.sleep(0.5)
    if pending:
        log.warning("pods %s did not accept the new key within %.0f s", ", ".join(pending), timeout)


def push_image(client: Any, tag: str, registry: str, progress: Callable[[str], None]) -> str:
    """Tag ``tag`` into ``registry`` and push it; the pushed reference."""
    from nbdeploy.errors import BuildError

    repository, _, version = tag.rpartition(":")
    target = f"{registry.rstrip('/')}/{repository}"
    client.images.get(tag).tag(target, version)
    progress(f"pushing {target}:{version}")
    for line in client.images.push(target, version, stream=True, decode=True):
        if "error" in line:
            raise BuildError(f"pushing {target}:{version} failed: {line['error']}", step="docker push")
    return f"{target}:{version}"
