"""The registry of targets: built-in ones, ``register_target`` calls and the ``nbdeploy.targets`` entry points.

Entries are ``"module:Class"`` strings imported on first use, so listing names costs no import. Everything
that offers targets to users (CLI, ``%deploy``, widgets, the lab panel, docs) asks this module; nothing
outside ``targets/`` lists targets by name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from nbdeploy.errors import TargetNotAvailable
from nbdeploy.plugins import PluginRegistry

if TYPE_CHECKING:
    from nbdeploy.specs import DeploymentConfig
    from nbdeploy.targets.base import Target
    from nbdeploy.workspace import Workspace

log = logging.getLogger(__name__)

DEFAULT_TARGET = "process"
_TARGETS: PluginRegistry[type[Target]] = PluginRegistry(
    "nbdeploy.targets",
    {
        "process": "nbdeploy.targets.process:ProcessTarget",
        "local": "nbdeploy.targets.local_docker:LocalDockerTarget",
        "aks": "nbdeploy.targets.kubernetes.target:KubernetesTarget",
        "aci": "nbdeploy.targets.container_instance:ContainerInstanceTarget",
        "edge": "nbdeploy.targets.edge.target:EdgeTarget",
    },
)


def register_target(name: str, target: str | type[Target]) -> None:
    """Register a target class (or ``"module:Class"`` import string) under ``name``."""
    _TARGETS.register(name, target)


def target_names() -> list[str]:
    """Names of all registered targets (aliases not included)."""
    return _TARGETS.names()


def _load(name: str) -> type[Target]:
    entry = _TARGETS.entries[name]
    try:
        cls = _TARGETS.load(name)
    except ModuleNotFoundError as exc:
        module_name = str(entry).partition(":")[0]
        if exc.name and module_name.startswith(exc.name):
            raise TargetNotAvailable(f"The {name!r} target's module {module_name!r} is not installed.") from exc
        raise TargetNotAvailable(
            f"The {name!r} target needs the Python package {exc.name!r}: pip install {exc.name}"
        ) from exc
    if cls.name != name:
        raise TargetNotAvailable(f"{entry} is registered as {name!r} but calls itself {cls.name!r}")
    return cls


def target_classes() -> Iterator[type[Target]]:
    """Every registered target class that can be imported (a broken plugin is logged and skipped)."""
    for name in target_names():
        try:
            yield _load(name)
        except TargetNotAvailable as exc:
            log.warning("target %s skipped: %s", name, exc)


def get_target_class(name: str) -> type[Target]:
    """The target class registered under ``name`` or one of its aliases."""
    if name in _TARGETS:
        return _load(name)
    for cls in target_classes():
        if name in cls.aliases:
            return cls
    raise TargetNotAvailable(f"No target named {name!r}. Available: {', '.join(target_names())}")


def get_target(name: str, workspace: Workspace) -> Target:
    """An instance of the target registered under ``name`` for ``workspace``."""
    return get_target_class(name)(workspace)


def config_class_for(target_or_compute_type: str) -> type[DeploymentConfig]:
    """The deployment config class of a target name, alias or v1 ``computeType`` (case-insensitive)."""
    wanted = target_or_compute_type.lower()
    if target_or_compute_type in _TARGETS:
        return _load(target_or_compute_type).config_class
    for cls in target_classes():
        names = {cls.name, *cls.aliases, cls.config_class.compute_type, *cls.config_class.compute_type_aliases}
        if wanted in {n.lower() for n in names}:
            return cls.config_class
    raise TargetNotAvailable(
        f"No target named {target_or_compute_type!r} has a deployment configuration. "
        f"Available: {', '.join(target_names())}"
    )


def target_of_config(config: DeploymentConfig) -> type[Target]:
    """The target class whose config class ``config`` is."""
    for cls in target_classes():
        if type(config) is cls.config_class:
            return cls
    raise TargetNotAvailable(f"No registered target takes a {type(config).__name__}")
