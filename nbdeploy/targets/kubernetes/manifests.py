"""Kubernetes objects for one revision of a service, rendered from plain data. Pure: no I/O, no client.

:func:`render_manifests` returns, in apply order: the keys Secret (key auth on), the Deployment (rolling
update that never lowers the available replicas, startup/liveness/readiness probes, resources, env, short
termination grace), the Service, the HorizontalPodAutoscaler (autoscaling on) and an Ingress (when an
ingress host is set). Every object carries :func:`service_labels`, so one label selector lists and deletes a
service's objects.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nbdeploy.targets.kubernetes.config import AksDeploymentConfig

CONTAINER_NAME = "scoring"
CONTAINER_PORT = 5001
SERVICE_PORT = 80
KEYS_DIR = "/var/run/nbdeploy-keys"
KEYS_FILE = "keys.json"

LABEL_SERVICE = "nbdeploy.service"
LABEL_MANAGED = "nbdeploy.managed"
LABEL_WORKSPACE = "nbdeploy.workspace"
LABEL_REVISION = "nbdeploy.revision"
ANNOTATION_BUNDLE = "nbdeploy.io/bundle"
ANNOTATION_MODELS = "nbdeploy.io/models"

HPA_API_VERSIONS = ("autoscaling/v2", "autoscaling/v2beta2", "autoscaling/v2beta1", "autoscaling/v1")
"""Newest first: the target picks the first one the API server serves."""
DEFAULT_AUTOSCALE = {"min": 1, "max": 10, "target_utilization": 70}


@dataclass(frozen=True)
class ManifestSpec:
    """Everything that shapes one revision's objects."""

    service: str
    revision: int
    namespace: str
    image: str
    config: AksDeploymentConfig
    keys: tuple[str, str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra container environment (the image carries the Environment's variables already)."""
    workspace_id: str = ""
    bundle_digest: str = ""
    model_ids: tuple[str, ...] = ()
    hpa_api_version: str = "autoscaling/v1"


def service_labels(service: str, workspace_id: str = "") -> dict[str, str]:
    """The labels on every object of ``service``; ``nbdeploy.service=<name>`` alone selects them."""
    labels = {
        LABEL_SERVICE: service,
        LABEL_MANAGED: "true",
        "app.kubernetes.io/name": service,
        "app.kubernetes.io/managed-by": "nbdeploy",
    }
    if workspace_id:
        labels[LABEL_WORKSPACE] = workspace_id
    return labels


def secret_name(service: str) -> str:
    return f"{service}-keys"


def keys_document(keys: tuple[str, str]) -> str:
    """The keys file the scoring server reads (``NBDEPLOY_AUTH_KEYS_FILE``)."""
    return json.dumps({"primaryKey": keys[0], "secondaryKey": keys[1]})


def image_pull_policy(config: AksDeploymentConfig) -> str:
    """The configured policy; else Never when the cluster shares the local engine, IfNotPresent with a registry."""
    if config.image_pull_policy:
        return config.image_pull_policy
    return "IfNotPresent" if config.image_registry else "Never"


def render_manifests(spec: ManifestSpec) -> list[dict[str, Any]]:
    """The revision's objects, in the order they are applied."""
    objects: list[dict[str, Any]] = []
    if spec.keys is not None:
        objects.append(render_secret(spec))
    objects.append(render_deployment(spec))
    objects.append(render_service(spec))
    if spec.config.autoscaling:
        objects.append(render_hpa(spec))
    if spec.config.ingress_host:
        objects.append(render_ingress(spec))
    return objects


def _metadata(spec: ManifestSpec, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": spec.namespace,
        "labels": service_labels(spec.service, spec.workspace_id),
        **extra,
    }


def render_secret(spec: ManifestSpec) -> dict[str, Any]:
    assert spec.keys is not None
    data = base64.b64encode(keys_document(spec.keys).encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(spec, secret_name(spec.service)),
        "type": "Opaque",
        "data": {KEYS_FILE: data},
    }


def _quantity_cpu(cores: float) -> str:
    return f"{max(1, round(cores * 1000))}m"


def _quantity_memory(gb: float) -> str:
    return f"{max(1, math.ceil(gb * 1024))}Mi"


def render_resources(config: AksDeploymentConfig) -> dict[str, dict[str, Any]]:
    """Requests from cpu_cores/memory_gb; limits from the *_limit values and GPUs."""
    resources: dict[str, dict[str, Any]] = {
        "requests": {"cpu": _quantity_cpu(config.cpu_cores), "memory": _quantity_memory(config.memory_gb)},
    }
    limits: dict[str, Any] = {}
    if config.cpu_cores_limit is not None:
        limits["cpu"] = _quantity_cpu(config.cpu_cores_limit)
    if config.memory_gb_limit is not None:
        limits["memory"] = _quantity_memory(config.memory_gb_limit)
    if config.gpu_cores:
        limits["nvidia.com/gpu"] = int(config.gpu_cores)
    if limits:
        resources["limits"] = limits
    return resources


def render_probes(config: AksDeploymentConfig) -> dict[str, dict[str, Any]]:
    """v1's liveness settings, adapted: a startup probe allows ``initial_delay_seconds`` for init() without
    delaying detection afterwards, and a fast readiness probe on /health/ready gates traffic."""

    def get(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}, "timeoutSeconds": config.timeout_seconds}

    return {
        "startupProbe": {
            **get("/health/live"),
            "periodSeconds": 1,
            "failureThreshold": max(1, int(config.initial_delay_seconds)),
        },
        "livenessProbe": {
            **get("/health/live"),
            "periodSeconds": config.period_seconds,
            "successThreshold": 1,
            "failureThreshold": config.failure_threshold,
        },
        "readinessProbe": {
            **get("/health/ready"),
            "periodSeconds": 1,
            "successThreshold": config.success_threshold,
            "failureThreshold": config.failure_threshold,
        },
    }


def render_env(spec: ManifestSpec) -> list[dict[str, str]]:
    config = spec.config
    env = {
        "SERVICE_NAME": spec.service,
        # drain on SIGTERM a little faster than the kubelet's SIGKILL
        "NBDEPLOY_GRACEFUL_TIMEOUT_S": str(max(0, config.termination_grace_seconds - 1)),
    }
    if config.scoring_timeout_ms:
        env["SCORING_TIMEOUT_MS"] = str(config.scoring_timeout_ms)
    if spec.keys is not None:
        env["NBDEPLOY_AUTH_KEYS_FILE"] = f"{KEYS_DIR}/{KEYS_FILE}"
    env.update(spec.env)
    return [{"name": k, "value": str(v)} for k, v in sorted(env.items())]


def render_deployment(spec: ManifestSpec) -> dict[str, Any]:
    config = spec.config
    labels = service_labels(spec.service, spec.workspace_id)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": spec.image,
        "imagePullPolicy": image_pull_policy(config),
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": render_env(spec),
        "resources": render_resources(config),
        **render_probes(config),
    }
    if config.termination_grace_seconds >= 3:
        # kube-proxy and endpoints controllers need a moment to stop sending new connections here
        container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", "1"]}}}
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": config.termination_grace_seconds,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
    }
    if spec.keys is not None:
        # the whole folder, not a subPath: the kubelet updates it in place when the Secret changes
        container["volumeMounts"] = [{"name": "nbdeploy-keys", "mountPath": KEYS_DIR, "readOnly": True}]
        pod_spec["volumes"] = [
            {"name": "nbdeploy-keys", "secret": {"secretName": secret_name(spec.service), "defaultMode": 0o444}}
        ]
    if config.image_pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": config.image_pull_secret}]
    annotations = {ANNOTATION_MODELS: ",".join(spec.model_ids)} if spec.model_ids else {}
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": {LABEL_SERVICE: spec.service}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "50%"}},
        "revisionHistoryLimit": 5,
        "progressDeadlineSeconds": config.rollout_deadline_seconds,
        "template": {
            "metadata": {
                "labels": labels,
                "annotations": {ANNOTATION_BUNDLE: spec.bundle_digest} if spec.bundle_digest else {},
            },
            "spec": pod_spec,
        },
    }
    if not config.autoscaling:
        deployment_spec["replicas"] = config.num_replicas
    metadata = _metadata(spec, spec.service)
    metadata["labels"] = {**metadata["labels"], LABEL_REVISION: str(spec.revision)}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": deployment_spec}


def render_service(spec: ManifestSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec, spec.service),
        "spec": {
            "type": spec.config.service_type,
            "selector": {LABEL_SERVICE: spec.service},
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def autoscale_settings(config: AksDeploymentConfig) -> tuple[int, int, int]:
    """(min replicas, max replicas, target cpu %) with v1's defaults."""
    low = config.autoscale_min_replicas or DEFAULT_AUTOSCALE["min"]
    high = config.autoscale_max_replicas or max(DEFAULT_AUTOSCALE["max"], low)
    return low, high, config.autoscale_target_utilization or DEFAULT_AUTOSCALE["target_utilization"]


def render_hpa(spec: ManifestSpec) -> dict[str, Any]:
    low, high, target = autoscale_settings(spec.config)
    api = spec.hpa_api_version
    body: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.service},
        "minReplicas": low,
        "maxReplicas": high,
    }
    if api == "autoscaling/v1":
        body["targetCPUUtilizationPercentage"] = target
    elif api == "autoscaling/v2beta1":
        body["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "targetAverageUtilization": target}}]
    elif api in ("autoscaling/v2", "autoscaling/v2beta2"):
        body["metrics"] = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}},
            }
        ]
    else:
        raise ValueError(f"unsupported HorizontalPodAutoscaler API {api!r}; known: {', '.join(HPA_API_VERSIONS)}")
    return {
        "apiVersion": api,
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(spec, spec.service),
        "spec": body,
    }


def render_ingress(spec: ManifestSpec) -> dict[str, Any]:
    backend = {"service": {"name": spec.service, "port": {"number": SERVICE_PORT}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _metadata(spec, spec.service),
        "spec": {
            "rules": [
                {
                    "host": spec.config.ingress_host,
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ]
        },
    }


def pick_hpa_api(served: set[str]) -> str:
    """The newest HorizontalPodAutoscaler API in ``served`` (group/version strings)."""
    for api in HPA_API_VERSIONS:
        if api in served:
            return api
    raise ValueError("the API server serves no autoscaling API version: " + ", ".join(sorted(served)))
