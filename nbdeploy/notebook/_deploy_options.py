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
    return deployment_config_class(target)(**values)
