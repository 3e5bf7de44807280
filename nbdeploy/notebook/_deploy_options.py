"""``%deploy``'s target options (``--port``, ``--cpu`` ...) turned into the target's DeploymentConfig."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

if TYPE_CHECKING:
    from nbdeploy.specs import DeploymentConfig

TARGETS = ("process", "local", "aci", "aks", "edge", "fpga")

OPTION_FIELDS: dict[str, dict[str, str]] = {
    # --option (argparse dest) -> {target: DeploymentConfig field}
    "port": {"process": "port", "local": "port", "aci": "port"},
    "workers": {"process": "workers"},
    "auth": {t: "auth_enabled" for t in TARGETS},
    "replicas": {"aks": "num_replicas"},
    "cpu": {"local": "cpu_cores", "aci": "cpu_cores", "aks": "cpu_cores"},
    "memory_gb": {"local": "memory_gb", "aci": "memory_gb", "aks": "memory_gb"},
    "namespace": {"aks": "namespace"},
    "kubeconfig": {"aks": "kubeconfig"},
    "context": {"aks": "context"},
    "autoscale_min": {"aks": "autoscale_min_replicas"},
    "autoscale_max": {"aks": "autoscale_max_replicas"},
    "autoscale_target": {"aks": "autoscale_target_utilization"},
    "cpu_limit": {"aks": "cpu_cores_limit"},
    "memory_gb_limit": {"aks": "memory_gb_limit"},
    "gpu": {"aks": "gpu_cores"},
    "service_type": {"aks": "service_type"},
}


def check_target(target: str) -> None:
    """UsageError when the target is not built in this installation (yet)."""
    from nbdeploy.errors import TargetNotAvailable
    from nbdeploy.targets.base import get_target_class

    try:
        get_target_class(target)
    except TargetNotAvailable as exc:
        raise UsageError(f"{exc} Use --target process meanwhile.") from None


def deployment_config(target: str, args: argparse.Namespace) -> DeploymentConfig:
    """The target's config with the options given; an option the target has no use for is a UsageError."""
    from nbdeploy.specs import deployment_config_class

    values: dict[str, Any] = {}
    for dest, per_target in OPTION_FIELDS.items():
        value = getattr(args, dest, None)
        if value in (None, False):
            continue
        flag = "--" + dest.replace("_", "-")
        if target not in per_target:
            raise UsageError(f"{flag} does not apply to --target {target} (it applies to: {', '.join(per_target)}).")
        values[per_target[target]] = value
    if target == "aks" and "num_replicas" in values:
        values.setdefault("autoscale_enabled", False)
    if target == "aks" and any(k.startswith("autoscale_") and k != "autoscale_enabled" for k in values):
        values.setdefault("autoscale_enabled", True)
    return deployment_config_class(target)(**values)
