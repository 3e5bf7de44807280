"""Command-line options of the aks target, as data, for the CLI (click) and the notebook magics.

Wiring in ``nbdeploy/cli/service.py``::

    from nbdeploy.targets.kubernetes.cli_options import click_options, config_overrides

    @service.command("deploy")
    ...
    @click_options
    def deploy_cmd(ctx, ..., **k8s):
        overrides = {"port": port, "auth_enabled": auth, "workers": workers, **config_overrides(k8s)}

Magics (argparse or IPython's ``magic_arguments``) add one argument per :data:`OPTIONS` entry
(``--flag``, ``dest=field``, ``type=kind``) and pass ``config_overrides(vars(args))`` the same way.
Every value maps to the :class:`~nbdeploy.specs.AksDeploymentConfig` field of the same name; an option left
out is ``None`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    flag: str
    field: str
    """The AksDeploymentConfig field (and the click/argparse dest)."""
    kind: type
    help: str
    choices: tuple[str, ...] = ()


OPTIONS: tuple[Option, ...] = (
    Option("--replicas", "num_replicas", int, "Fixed number of replicas (turns autoscaling off)."),
    Option("--kubeconfig", "kubeconfig", str, "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)."),
    Option("--context", "context", str, "kubeconfig context (default: its current context)."),
    Option("--namespace", "namespace", str, "Namespace (default: the context's, else 'default'); created when missing."),
    Option("--autoscale-min", "autoscale_min_replicas", int, "Autoscaling: fewest replicas (default 1)."),
    Option("--autoscale-max", "autoscale_max_replicas", int, "Autoscaling: most replicas (default 10)."),
    Option("--autoscale-target", "autoscale_target_utilization", int, "Autoscaling: target CPU utilization in % (default 70)."),
    Option("--cpu", "cpu_cores", float, "CPU cores requested per replica (default 0.1)."),
    Option("--memory-gb", "memory_gb", float, "Memory requested per replica in GB (default 0.5)."),
    Option("--cpu-limit", "cpu_cores_limit", float, "CPU limit per replica (at least --cpu)."),
    Option("--memory-gb-limit", "memory_gb_limit", float, "Memory limit per replica in GB (at least --memory-gb)."),
    Option("--gpu", "gpu_cores", int, "GPUs per replica (nvidia.com/gpu)."),
    Option("--service-type", "service_type", str, "How the service is exposed.", ("ClusterIP", "NodePort", "LoadBalancer")),
    Option("--image-registry", "image_registry", str, "Push the image here (default: the cluster shares the local Docker engine)."),
    Option("--image-pull-secret", "image_pull_secret", str, "Secret for pulling from --image-registry."),
)
FIELDS = tuple(o.field for o in OPTIONS)


def click_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command with every aks option (values arrive as keyword arguments named by field)."""
    import click

    for option in reversed(OPTIONS):
        kind: Any = click.Choice(option.choices) if option.choices else option.kind
        fn = click.option(option.flag, option.field, type=kind, default=None, help=f"[aks] {option.help}")(fn)
    return fn


def config_overrides(values: Mapping[str, Any]) -> dict[str, Any]:
    """The AksDeploymentConfig changes among ``values`` (the options that were given)."""
    changes = {field: values[field] for field in FIELDS if values.get(field) is not None}
    if "autoscale_min_replicas" in changes or "autoscale_max_replicas" in changes or "autoscale_target_utilization" in changes:
        changes.setdefault("autoscale_enabled", True)
    return changes
