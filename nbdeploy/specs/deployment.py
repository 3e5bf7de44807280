"""Deployment configurations: one class per target behind :class:`DeploymentConfig`.

Each class knows its target name, validates its values (v1's rules where v1 had them) and reads and writes
its part of v1's ``deploymentconfig.json``. New targets register their class with
:func:`register_deployment_config`.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import yaml

from nbdeploy.errors import InvalidInput, InvalidSpec

NAMESPACE_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{,61}[a-z0-9])?$")


@dataclass
class DeploymentConfig:
    """Settings common to every target. Subclasses add their own fields."""

    target: ClassVar[str] = ""
    compute_type: ClassVar[str] = ""
    """The ``computeType`` value in deploymentconfig.json."""
    json_keys: ClassVar[dict[str, str]] = {}
    """deploymentconfig.json key -> field name, for the target's own keys."""

    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    auth_enabled: bool = False
    primary_key: str | None = None
    secondary_key: str | None = None
    scoring_timeout_ms: int | None = None
    smoke_input: str | None = None
    """A request body POSTed to /score before an update switches traffic (default: derived from the swagger example)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InvalidSpec` naming the first bad value."""
        if self.scoring_timeout_ms is not None:
            _positive("scoring_timeout_ms", self.scoring_timeout_ms)
        for key in ("primary_key", "secondary_key"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or len(value) < 8):
                raise InvalidSpec(key, "must be a string of at least 8 characters")

    # -- deploymentconfig.json ------------------------------------------------------------------
    _COMMON_KEYS: ClassVar[dict[str, str]] = {
        "tags": "tags", "properties": "properties", "description": "description", "authEnabled": "auth_enabled",
        "scoringTimeoutMs": "scoring_timeout_ms", "smokeInput": "smoke_input",
    }

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"computeType": self.compute_type}
        for key, attr in {**self._COMMON_KEYS, **self.json_keys}.items():
            value = getattr(self, attr)
            if value not in (None, {}, []):
                _set_path(doc, key, value)
        if self.primary_key or self.secondary_key:
            doc["keys"] = {"primaryKey": self.primary_key, "secondaryKey": self.secondary_key}
        return doc

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> DeploymentConfig:
        known = {**cls._COMMON_KEYS, **cls.json_keys}
        allowed_top = {k.split(".")[0] for k in known} | {"computeType", "keys"}
        unknown = set(data) - allowed_top
        if unknown:
            raise InvalidSpec(sorted(unknown)[0], f"unknown key for computeType {cls.compute_type!r}", allowed=allowed_top, source=source)
        kwargs: dict[str, Any] = {}
        for key, attr in known.items():
            value = _get_path(data, key)
            if value is not None:
                kwargs[attr] = value
        keys = data.get("keys") or {}
        if keys:
            kwargs["primary_key"] = keys.get("primaryKey")
            kwargs["secondary_key"] = keys.get("secondaryKey")
        try:
            return cls(**kwargs)
        except TypeError as exc:  # pragma: no cover - json_keys out of sync with fields
            raise InvalidSpec(cls.compute_type, str(exc), source=source) from exc

    def merged(self, **changes: Any) -> DeploymentConfig:
        """A copy with ``changes`` applied (None values ignored)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in changes.items() if v is not None})
        return type(self)(**values)


@dataclass
class ProcessDeploymentConfig(DeploymentConfig):
    """The scoring server as a local subprocess (no Docker)."""

    target: ClassVar[str] = "process"
    compute_type: ClassVar[str] = "process"
    json_keys: ClassVar[dict[str, str]] = {"port": "port", "host": "host", "workers": "workers", "isolated": "isolated"}

    port: int | None = None
    """Port on ``host``; None picks a free one."""
    host: str = "127.0.0.1"
    workers: int = 1
    isolated: bool = False
    """True: run in a virtual environment built from the Environment (cached by its digest)."""

    def validate(self) -> None:
        super().validate()
        if self.port is not None:
            _port("port", self.port)
        _positive("workers", self.workers)


@dataclass
class LocalDeploymentConfig(DeploymentConfig):
    """A container on the local Docker engine (v1's ``LocalWebservice``)."""

    target: ClassVar[str] = "local"
    compute_type: ClassVar[str] = "local"
    json_keys: ClassVar[dict[str, str]] = {
        "port": "port", "host": "host", "containerResourceRequirements.cpu": "cpu_cores",
        "containerResourceRequirements.memoryInGB": "memory_gb", "restartPolicy": "restart_policy",
        "networkMode": "network_mode",
    }

    port: int | None = None
    host: str = "127.0.0.1"
    cpu_cores: float | None = None
    memory_gb: float | None = None
    restart_policy: str = "no"
    network_mode: str = field(default_factory=lambda: "host" if sys.platform.startswith("linux") else "bridge")
    """``host``: the server binds ``host:port`` itself and updates hand the port over without downtime (Linux);
    ``bridge``: the port is published by Docker and an update stops the old container first (short outage)."""

    def validate(self) -> None:
        super().validate()
        if self.port is not None:
            _port("port", self.port)
        for key in ("cpu_cores", "memory_gb"):
            if getattr(self, key) is not None:
                _positive(key, getattr(self, key))
        if self.restart_policy not in ("no", "always", "on-failure", "unless-stopped"):
            raise InvalidSpec("restart_policy", f"{self.restart_policy!r} is not a Docker restart policy", allowed=["no", "always", "on-failure", "unless-stopped"])
        if self.network_mode not in ("host", "bridge"):
            raise InvalidSpec("network_mode", f"{self.network_mode!r} is not supported", allowed=["host", "bridge"])


@dataclass
class AciDeploymentConfig(DeploymentConfig):
    """A single container on a remote Docker engine (v1's ``AciWebservice``)."""

    target: ClassVar[str] = "aci"
    compute_type: ClassVar[str] = "ACI"
    json_keys: ClassVar[dict[str, str]] = {
        "containerResourceRequirements.cpu": "cpu_cores", "containerResourceRequirements.memoryInGB": "memory_gb",
        "location": "location", "sslEnabled": "ssl_enabled", "dnsNameLabel": "dns_name_label",
        "dockerHost": "docker_host", "port": "port",
    }

    cpu_cores: float = 0.1
    memory_gb: float = 0.5
    location: str | None = None
    ssl_enabled: bool = False
    dns_name_label: str | None = None
    docker_host: str | None = None
    """The engine's URL (tcp://host:2376 with TLS, ssh://...); default DOCKER_HOST."""
    port: int | None = None

    def validate(self) -> None:
        super().validate()
        _positive("cpu_cores", self.cpu_cores)
        _positive("memory_gb", self.memory_gb)
        if self.port is not None:
            _port("port", self.port)


@dataclass
class AksDeploymentConfig(DeploymentConfig):
    """A Kubernetes Deployment + Service (v1's ``AksWebservice``), with v1's defaults and rules."""

    target: ClassVar[str] = "aks"
    compute_type: ClassVar[str] = "AKS"
    json_keys: ClassVar[dict[str, str]] = {
        "autoScaler.autoscaleEnabled": "autoscale_enabled", "autoScaler.minReplicas": "autoscale_min_replicas",
        "autoScaler.maxReplicas": "autoscale_max_replicas", "autoScaler.refreshPeriodInSeconds": "autoscale_refresh_seconds",
        "autoScaler.targetUtilization": "autoscale_target_utilization", "tokenAuthEnabled": "token_auth_enabled",
        "containerResourceRequirements.cpu": "cpu_cores", "containerResourceRequirements.memoryInGB": "memory_gb",
        "containerResourceRequirements.cpuLimit": "cpu_cores_limit", "containerResourceRequirements.memoryInGBLimit": "memory_gb_limit",
        "maxConcurrentRequestsPerContainer": "replica_max_concurrent_requests", "maxQueueWaitMs": "max_request_wait_time",
        "numReplicas": "num_replicas", "gpuCores": "gpu_cores",
        "livenessProbeRequirements.periodSeconds": "period_seconds", "livenessProbeRequirements.initialDelaySeconds": "initial_delay_seconds",
        "livenessProbeRequirements.timeoutSeconds": "timeout_seconds", "livenessProbeRequirements.successThreshold": "success_threshold",
        "livenessProbeRequirements.failureThreshold": "failure_threshold", "namespace": "namespace",
        "computeTargetName": "compute_target_name", "kubeconfig": "kubeconfig", "context": "context",
        "serviceType": "service_type",
        "createNamespace": "create_namespace", "imageRegistry": "image_registry", "imagePullSecret": "image_pull_secret",
        "imagePullPolicy": "image_pull_policy", "terminationGracePeriodSeconds": "termination_grace_seconds",
        "progressDeadlineSeconds": "rollout_deadline_seconds", "ingressHost": "ingress_host",
    }

    autoscale_enabled: bool | None = None
    autoscale_min_replicas: int | None = None
    autoscale_max_replicas: int | None = None
    autoscale_refresh_seconds: int | None = None
    autoscale_target_utilization: int | None = None
    token_auth_enabled: bool = False
    cpu_cores: float = 0.1
    memory_gb: float = 0.5
    cpu_cores_limit: float | None = None
    memory_gb_limit: float | None = None
    replica_max_concurrent_requests: int = 1
    max_request_wait_time: int = 500
    num_replicas: int | None = None
    gpu_cores: int = 0
    period_seconds: int = 10
    initial_delay_seconds: int = 310
    timeout_seconds: int = 2
    success_threshold: int = 1
    failure_threshold: int = 3
    namespace: str | None = None
    compute_target_name: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    service_type: str = "ClusterIP"
    auth_enabled: bool = True
    create_namespace: bool = True
    """Create ``namespace`` when it does not exist (False: a missing namespace is an error)."""
    image_registry: str | None = None
    """Push the image to this registry (``host[:port][/path]``); None: the cluster shares the local Docker engine."""
    image_pull_secret: str | None = None
    """Name of a docker-registry Secret in the namespace, for pulling from ``image_registry``."""
    image_pull_policy: str | None = None
    """Always, IfNotPresent or Never; None: Never without a registry, IfNotPresent with one."""
    termination_grace_seconds: int = 5
    rollout_deadline_seconds: int = 600
    """A rollout not progressing for this long fails (the Deployment's progressDeadlineSeconds)."""
    ingress_host: str | None = None
    """Also create an Ingress for this host; the scoring URI becomes ``http://<host>/score``."""

    def validate(self) -> None:
        super().validate()
        for key in ("cpu_cores", "memory_gb", "cpu_cores_limit", "memory_gb_limit", "num_replicas", "period_seconds",
                    "initial_delay_seconds", "timeout_seconds", "success_threshold", "failure_threshold",
                    "replica_max_concurrent_requests", "max_request_wait_time", "autoscale_min_replicas",
                    "autoscale_max_replicas", "autoscale_refresh_seconds", "autoscale_target_utilization"):
            value = getattr(self, key)
            if value is not None:
                _positive(key, value)
        if self.gpu_cores < 0:
            raise InvalidSpec("gpu_cores", "must be 0 or more")
        if self.cpu_cores_limit is not None and self.cpu_cores_limit < self.cpu_cores:
            raise InvalidSpec("cpu_cores_limit", f"{self.cpu_cores_limit} is below the request cpu_cores={self.cpu_cores}")
        if self.memory_gb_limit is not None and self.memory_gb_limit < self.memory_gb:
            raise InvalidSpec("memory_gb_limit", f"{self.memory_gb_limit} is below the request memory_gb={self.memory_gb}")
        if self.namespace is not None and not NAMESPACE_RE.match(self.namespace):
            raise InvalidSpec("namespace", f"{self.namespace!r} must be lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit")
        autoscale_values = [k for k in ("autoscale_min_replicas", "autoscale_max_replicas", "autoscale_refresh_seconds", "autoscale_target_utilization") if getattr(self, k) is not None]
        if self.autoscale_enabled and self.num_replicas is not None:
            raise InvalidSpec("num_replicas", "cannot be set together with autoscale_enabled=True; choose one")
        if self.autoscale_enabled is False and self.num_replicas is None:
            raise InvalidSpec("num_replicas", "is required when autoscale_enabled=False")
        if self.num_replicas is not None and autoscale_values:
            raise InvalidSpec(autoscale_values[0], "cannot be set when autoscaling is off (num_replicas is set)")
        if self.autoscale_min_replicas and self.autoscale_max_replicas and self.autoscale_min_replicas > self.autoscale_max_replicas:
            raise InvalidSpec("autoscale_min_replicas", f"{self.autoscale_min_replicas} exceeds autoscale_max_replicas={self.autoscale_max_replicas}")
        if self.auth_enabled and self.token_auth_enabled:
            raise InvalidSpec("token_auth_enabled", "cannot be true together with auth_enabled; choose key or token auth")
        if self.service_type not in ("ClusterIP", "NodePort", "LoadBalancer"):
            raise InvalidSpec("service_type", f"{self.service_type!r}", allowed=["ClusterIP", "NodePort", "LoadBalancer"])
        if self.image_pull_policy is not None and self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise InvalidSpec("image_pull_policy", f"{self.image_pull_policy!r}", allowed=["Always", "IfNotPresent", "Never"])
        if isinstance(self.termination_grace_seconds, bool) or not isinstance(self.termination_grace_seconds, int) \
                or self.termination_grace_seconds < 0:
            raise InvalidSpec("termination_grace_seconds", f"must be an integer of 0 or more, got {self.termination_grace_seconds!r}")
        _positive("rollout_deadline_seconds", self.rollout_deadline_seconds)

    @property
    def autoscaling(self) -> bool:
        """v1's rule: autoscale is on unless num_replicas is set."""
        return self.num_replicas is None if self.autoscale_enabled is None else bool(self.autoscale_enabled)


_CONFIGS: dict[str, type[DeploymentConfig]] = {}
_BY_COMPUTE_TYPE: dict[str, type[DeploymentConfig]] = {}


def register_deployment_config(cls: type[DeploymentConfig], *compute_types: str) -> None:
    """Register ``cls`` for its target name and for ``computeType`` values (case-insensitive)."""
    _CONFIGS[cls.target] = cls
    for compute_type in (cls.compute_type, cls.target, *compute_types):
        _BY_COMPUTE_TYPE[compute_type.lower()] = cls


for _cls in (ProcessDeploymentConfig, LocalDeploymentConfig, AciDeploymentConfig, AksDeploymentConfig):
    register_deployment_config(_cls)
register_deployment_config(AksDeploymentConfig, "kubernetes", "aksendpoint")


def deployment_config_class(target: str) -> type[DeploymentConfig]:
    """The config class of a target (or computeType)."""
    cls = _CONFIGS.get(target) or _BY_COMPUTE_TYPE.get(target.lower())
    if cls is None:
        raise InvalidSpec("target", f"No target named {target!r} has a deployment configuration", allowed=sorted(_CONFIGS))
    return cls


def deployment_config_from_dict(data: dict[str, Any], source: str | None = None) -> DeploymentConfig:
    """Read a parsed deploymentconfig.json."""
    if not isinstance(data, dict):
        raise InvalidSpec("deployment config", "must be a JSON/YAML object", source=source)
    compute_type = data.get("computeType")
    if not compute_type:
        raise InvalidSpec("computeType", "is required", allowed=sorted({c.compute_type for c in _CONFIGS.values()}), source=source)
    cls = _BY_COMPUTE_TYPE.get(str(compute_type).lower())
    if cls is None:
        raise InvalidSpec("computeType", f"{compute_type!r} is not supported", allowed=sorted({c.compute_type for c in _CONFIGS.values()}), source=source)
    return cls.from_dict(data, source=source)


def load_deployment_config(path: str | os.PathLike[str]) -> DeploymentConfig:
    """Read deploymentconfig.json (or .yml)."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"Deployment config {file} does not exist.")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise InvalidSpec(str(file), f"not valid JSON or YAML: {exc}") from exc
    return deployment_config_from_dict(data, source=str(file))


def _positive(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise InvalidSpec(key, f"must be a number greater than 0, got {value!r}")


def _port(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidSpec(key, f"must be an integer in 1-65535, got {value!r}")


def _get_path(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
