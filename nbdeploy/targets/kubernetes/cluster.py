"""The connection to a cluster: kubeconfig and context, the official client (imported lazily), clear errors.

:func:`connect` loads a kubeconfig context, checks that the API server answers (naming the kubeconfig and the
context when it does not) and returns a :class:`Cluster` holding a dynamic client, which applies and reads
any object as a plain dict. :func:`api_error` turns the client's exceptions into nbdeploy's errors, naming
the verb and resource a 403 refused.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nbdeploy.errors import EngineUnavailable, InvalidInput, NbdeployError, TargetNotAvailable

FIELD_MANAGER = "nbdeploy"
REQUEST_TIMEOUT_S = 15
START_HINT = (
    "Check the kubeconfig and context (--kubeconfig, --context); for the test cluster of a nbdeploy "
    "clone: bash tests/engines/kubernetes.sh up"
)


class KubernetesForbidden(NbdeployError):
    """The cluster's RBAC refused a verb on a resource."""

    status_code = 403

    def __init__(self, verb: str, resource: str, namespace: str | None, context: str, detail: str = "") -> None:
        where = f" in namespace {namespace!r}" if namespace else ""
        super().__init__(
            f"Kubernetes refused to {verb} {resource}{where} (context {context!r}): forbidden. "
            f"Ask a cluster admin for a Role that allows '{verb}' on '{resource}', or use another --context."
            + (f"\nAPI server: {detail}" if detail else "")
        )
        self.verb, self.resource, self.namespace, self.context = verb, resource, namespace, context


def import_kubernetes() -> Any:
    """The ``kubernetes`` package, or TargetNotAvailable naming the extra to install."""
    try:
        import kubernetes
    except ModuleNotFoundError as exc:
        raise TargetNotAvailable(
            "The Kubernetes target needs the Python package 'kubernetes': pip install 'nbdeploy[kubernetes]'"
        ) from exc
    return kubernetes


def default_kubeconfig() -> str:
    """``$KUBECONFIG`` (its first file) or ``~/.kube/config``."""
    env = os.environ.get("KUBECONFIG")
    if env:
        return env.split(os.pathsep)[0]
    return str(Path.home() / ".kube" / "config")


@dataclass
class Cluster:
    """A connected cluster."""

    api_client: Any
    dynamic: Any
    kubeconfig: str
    context: str
    namespace: str
    """The context's namespace (``default`` when it names none)."""
    server: str

    @property
    def local(self) -> bool:
        """Whether the API server is on this machine (NodePorts are then reached on 127.0.0.1)."""
        return (urlsplit(self.server).hostname or "") in ("127.0.0.1", "localhost", "::1")

    def core(self) -> Any:
        return import_kubernetes().client.CoreV1Api(self.api_client)

    def resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def served_versions(self, group: str) -> set[str]:
        """``group/version`` strings the API server serves for ``group``."""
        kubernetes = import_kubernetes()
        try:
            groups = kubernetes.client.ApisApi(self.api_client).get_api_versions(_request_timeout=REQUEST_TIMEOUT_S)
        except kubernetes.client.exceptions.ApiException as exc:
            raise api_error(exc, "list", "API groups", None, self) from exc
        for g in groups.groups:
            if g.name == group:
                return {v.group_version for v in g.versions}
        return set()


_CACHE: dict[tuple[str, str | None], Cluster] = {}
_LOCK = threading.Lock()


def connect(kubeconfig: str | None = None, context: str | None = None, check: bool = True) -> Cluster:
    """A client for ``context`` of ``kubeconfig`` (defaults: ``$KUBECONFIG``, its current context).

    Cached per (kubeconfig, context); the first connection checks that the API server answers.
    """
    path = str(Path(kubeconfig or default_kubeconfig()).expanduser())
    key = (path, context)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    kubernetes = import_kubernetes()
    from kubernetes.dynamic import DynamicClient

    if not Path(path).is_file():
        raise EngineUnavailable("Kubernetes", f"the kubeconfig {path} does not exist", START_HINT)
    try:
        contexts, current = kubernetes.config.list_kube_config_contexts(config_file=path)
    except Exception as exc:
        raise EngineUnavailable("Kubernetes", f"the kubeconfig {path} cannot be read: {exc}", START_HINT) from exc
    names = [c["name"] for c in contexts or []]
    chosen = context or (current or {}).get("name")
    if not chosen or chosen not in names:
        raise InvalidInput(
            f"Context {chosen!r} is not in the kubeconfig {path}; its contexts: {', '.join(names) or 'none'}"
        )
    entry = next(c for c in contexts if c["name"] == chosen)
    namespace = (entry.get("context") or {}).get("namespace") or "default"
    try:
        api_client = kubernetes.config.new_client_from_config(config_file=path, context=chosen, persist_config=False)
    except Exception as exc:
        raise EngineUnavailable(
            "Kubernetes", f"context {chosen!r} of the kubeconfig {path} is unusable: {exc}", START_HINT
        ) from exc
    server = api_client.configuration.host
    cluster = Cluster(api_client, None, path, chosen, namespace, server)
    if check:
        try:
            kubernetes.client.VersionApi(api_client).get_code(_request_timeout=REQUEST_TIMEOUT_S)
        except kubernetes.client.exceptions.ApiException as exc:
            raise api_error(exc, "get", "version", None, cluster) from exc
        except Exception as exc:
            raise unreachable(cluster, exc) from exc
    try:
        cluster.dynamic = DynamicClient(api_client)
    except kubernetes.client.exceptions.ApiException as exc:
        raise api_error(exc, "list", "API resources", None, cluster) from exc
    except Exception as exc:
        raise unreachable(cluster, exc) from exc
    with _LOCK:
        _CACHE[key] = cluster
    return cluster


def forget(kubeconfig: str | None = None, context: str | None = None) -> None:
    """Drop cached connections (all when no kubeconfig is given)."""
    with _LOCK:
        if kubeconfig is None:
            _CACHE.clear()
        else:
            _CACHE.pop((str(Path(kubeconfig).expanduser()), context), None)


def unreachable(cluster: Cluster, exc: BaseException) -> EngineUnavailable:
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return EngineUnavailable(
        "Kubernetes",
        f"the API server {cluster.server} (kubeconfig {cluster.kubeconfig}, context {cluster.context!r}) "
        f"does not answer: {text}",
        START_HINT,
    )


def api_error(exc: Any, verb: str, resource: str, namespace: str | None, cluster: Cluster) -> NbdeployError:
    """nbdeploy's error for a failed API call: 403 names verb and resource, 401 the credentials."""
    status = getattr(exc, "status", None)
    body = _message(exc)
    if status == 403:
        return KubernetesForbidden(verb, resource, namespace, cluster.context, body)
    if status == 401:
        return EngineUnavailable(
            "Kubernetes",
            f"the API server {cluster.server} rejected the credentials of context "
            f"{cluster.context!r} in {cluster.kubeconfig} (401 Unauthorized)",
            START_HINT,
        )
    if status in (400, 422):
        return InvalidInput(f"Kubernetes rejected {verb} {resource}: {body}")
    if status is None or status == 0:
        return unreachable(cluster, exc)
    return NbdeployError(
        f"Kubernetes: {verb} {resource}" + (f" in {namespace!r}" if namespace else "") + f" failed ({status}): {body}"
    )


def _message(exc: Any) -> str:
    import json

    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if body:
        try:
            return str(json.loads(body).get("message") or body)[:500]
        except (ValueError, AttributeError):
            return str(body)[:500]
    return str(getattr(exc, "reason", "") or exc)[:500]
