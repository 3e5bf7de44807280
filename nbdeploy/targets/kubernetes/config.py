"""The aks target's deployment config: v1's ``AksWebservice.deploy_configuration`` with v1's defaults and rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from nbdeploy.errors import InvalidSpec
from nbdeploy.specs.deployment import DeploymentConfig, positive

NAMESPACE_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{,61}[a-z0-9])?$")


@dataclass
class AksDeploymentConfig(DeploymentConfig):
    """A Kubernetes Deployment + Service (v1's ``AksWebservice``), with v1's defaults and rules."""

    target: ClassVar[str] = "aks"
    compute_type: ClassVar[str] = "AKS"
    compute_type_aliases: ClassVar[tuple[str, ...]] = ("kubernetes", "AKSENDPOINT")
    json_keys: ClassVar[dict[str, str]] = {
        "autoScaler.autoscaleEnabled": "autoscale_enabled",
        "autoScaler.minReplicas": "autoscale_min_replicas",
        "autoScaler.maxReplicas": "autoscale_max_replicas",
        "autoScaler.refreshPeriodInSeconds": "autoscale_refresh_seconds",
        "autoScaler.targetUtilization": "autoscale_target_utilization",
        "tokenAuthEnabled": "token_auth_enabled",
        "containerResourceRequirements.cpu": "cpu_cores",
        "containerResourceRequirements.memoryInGB": "memory_gb",
        "containerResourceRequirements.cpuLimit": "cpu_cores_limit",
        "containerResourceRequirements.memoryInGBLimit": "memory_gb_limit",
        "maxConcurrentRequestsPerContainer": "replica_max_concurrent_requests",
        "maxQueueWaitMs": "max_request_wait_time",
        "numReplicas": "num_replicas",
        "gpuCores": "gpu_cores",
        "livenessProbeRequirements.periodSeconds": "period_seconds",
        "livenessProbeRequirements.initialDelaySeconds": "initial_delay_seconds",
        "livenessProbeRequirements.timeoutSeconds": "timeout_seconds",
        "livenessProbeRequirements.successThreshold": "success_threshold",
        "livenessProbeRequirements.failureThreshold": "failure_threshold",
        "namespace": "namespace",
        "computeTargetName": "compute_target_name",
        "kubeconfig": "kubeconfig",
        "context": "context",
        "serviceType": "service_type",
        "createNamespace": "create_namespace",
        "imageRegistry": "image_registry",
        "imagePullSecret": "image_pull_secret",
        "imagePullPolicy": "image_pull_policy",
        "terminationGracePeriodSeconds": "termination_grace_seconds",
        "progressDeadlineSeconds": "rollout_deadline_seconds",
        "ingressHost": "ingress_host",
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
        for key in (
            "cpu_cores",
            "memory_gb",
            "cpu_cores_limit",
            "memory_gb_limit",
            "num_replicas",
            "period_seconds",
            "initial_delay_seconds",
            "timeout_seconds",
            "success_threshold",
            "failure_threshold",
            "replica_max_concurrent_requests",
            "max_request_wait_time",
            "autoscale_min_replicas",
            "autoscale_max_replicas",
            "autoscale_refresh_seconds",
            "autoscale_target_utilization",
        ):
            value = getattr(self, key)
            if value is not None:
                positive(key, value)
        if self.gpu_cores < 0:
            raise InvalidSpec("gpu_cores", "must be 0 or more")
        if self.cpu_cores_limit is not None and self.cpu_cores_limit < self.cpu_cores:
            raise InvalidSpec(
                "cpu_cores_limit", f"{self.cpu_cores_limit} is below the request cpu_cores={self.cpu_cores}"
            )
        if self.memory_gb_limit is not None and self.memory_gb_limit < self.memory_gb:
            raise InvalidSpec(
                "memory_gb_limit", f"{self.memory_gb_limit} is below the request memory_gb={self.memory_gb}"
            )
        if self.namespace is not None and not NAMESPACE_RE.fullmatch(self.namespace):
            raise InvalidSpec(
                "namespace",
                f"{self.namespace!r} must be lower-case letters, digits and '-', at most 63 characters, "
                "starting and ending with a letter or digit",
            )
        autoscale_values = [
            k
            for k in (
                "autoscale_min_replicas",
                "autoscale_max_replicas",
                "autoscale_refresh_seconds",
                "autoscale_target_utilization",
            )
            if getattr(self, k) is not None
        ]
        if self.autoscale_enabled and self.num_replicas is not None:
            raise InvalidSpec("num_replicas", "cannot be set together with autoscale_enabled=True; choose one")
        if self.autoscale_enabled is False and self.num_replicas is None:
            raise InvalidSpec("num_replicas", "is required when autoscale_enabled=False")
        if self.num_replicas is not None and autoscale_values:
            raise InvalidSpec(autoscale_values[0], "cannot be set when autoscaling is off (num_replicas is set)")
        if (
            self.autoscale_min_replicas
            and self.autoscale_max_replicas
            and self.autoscale_min_replicas > self.autoscale_max_replicas
        ):
            raise InvalidSpec(
                "autoscale_min_replicas",
                f"{self.autoscale_min_replicas} exceeds autoscale_max_replicas={self.autoscale_max_replicas}",
            )
        if self.auth_enabled and self.token_auth_enabled:
            raise InvalidSpec(
                "token_auth_enabled", "cannot be true together with auth_enabled; choose key or token auth"
            )
        if self.service_type not in ("ClusterIP", "NodePort", "LoadBalancer"):
            raise InvalidSpec(
                "service_type", f"{self.service_type!r}", allowed=["ClusterIP", "NodePort", "LoadBalancer"]
            )
        if self.image_pull_policy is not None and self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise InvalidSpec(
                "image_pull_policy", f"{self.image_pull_policy!r}", allowed=["Always", "IfNotPresent", "Never"]
            )
        if (
            isinstance(self.termination_grace_seconds, bool)
            or not isinstance(self.termination_grace_seconds, int)
            or self.termination_grace_seconds < 0
        ):
            raise InvalidSpec(
                "termination_grace_seconds", f"must be an integer of 0 or more, got {self.termination_grace_seconds!r}"
            )
        positive("rollout_deadline_seconds", self.rollout_deadline_seconds)

    @property
    def autoscaling(self) -> bool:
        """v1's rule: autoscale is on unless num_replicas is set."""
        return self.num_replicas is None if self.autoscale_enabled is None else bool(self.autoscale_enabled)
