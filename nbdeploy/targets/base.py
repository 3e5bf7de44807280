"""The interface every deployment target implements, and the registry that finds targets by name.

A target runs one *revision* of a service (a bundle plus a deployment config) and answers questions about
it. It keeps no state of its own: :meth:`Target.start` returns a JSON-serializable *handle* (pid and port,
container id, ...) that :mod:`nbdeploy.service` stores in the revision record and passes back to every
other verb, so a service is found again after a kernel restart.

Adding a target means one module with a :class:`Target` subclass, registered under its name with
:func:`register_target` (or the ``nbdeploy.targets`` entry point group); nothing else changes.
"""

from __future__ import annotations

import enum
import importlib
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from nbdeploy.errors import TargetNotAvailable

if TYPE_CHECKING:
    from nbdeploy.builders.bundle import Bundle
    from nbdeploy.specs import DeploymentConfig, Environment
    from nbdeploy.workspace import Workspace

Handle = dict[str, Any]
_log = logging.getLogger(__name__)


class State(str, enum.Enum):
    """Service states, in the cloud spelling of Azure ML SDK v1."""

    TRANSITIONING = "Transitioning"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    UNSCHEDULABLE = "Unschedulable"
    FAILED = "Failed"
    DELETING = "Deleting"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        """Whether waiting longer cannot change this state by itself."""
        return self in (State.HEALTHY, State.FAILED, State.UNSCHEDULABLE)


@dataclass
class Status:
    """What a target observes about one running revision."""

    state: State
    reason: str = ""
    """Why the state is not Healthy (empty when Healthy)."""
    evidence: str = ""
    """Exit code, init() traceback, failing probe, pod events: what proves the reason."""
    scoring_uri: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RevisionSpec:
    """Everything a target needs to start one revision of a service."""

    service: str
    revision: int
    bundle: Bundle
    config: DeploymentConfig
    environment: Environment | None = None
    keys: tuple[str, str] | None = None
    """(primary, secondary) when key auth is on."""


class Target(ABC):
    """Runs revisions of services somewhere. Subclasses implement the abstract verbs."""

    name: ClassVar[str]

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.progress: Callable[[str], None] = _log.info
        """Receives build and start-up lines; the service layer points it at the operation's progress sink."""

    @abstractmethod
    def start(self, spec: RevisionSpec, previous: Handle | None = None) -> Handle:
        """Start the revision and return its handle; do not wait for it to become Healthy.

        ``previous`` is the handle of the revision now serving (an update): the new one starts beside it
        without taking its traffic until :meth:`promote`.
        """

    @abstractmethod
    def status(self, handle: Handle) -> Status:
        """Observe the revision now (cheap; called in a polling loop)."""

    @abstractmethod
    def logs(self, handle: Handle, num_lines: int = 5000) -> str:
        """The last ``num_lines`` lines of the revision's log."""

    @abstractmethod
    def stop(self, handle: Handle) -> None:
        """Stop and remove the revision. Idempotent: stopping a stopped revision is fine."""

    def delete_image(self, handle: Handle) -> None:
        """Remove what the revision was built into (an image), when the target builds one; default: nothing."""

    def promote(self, new: Handle, old: Handle | None) -> Handle:
        """Move traffic from ``old`` to ``new`` (both running) and return ``new``'s handle, updated.

        The caller stops ``old`` afterwards. The default suits targets whose :meth:`start` already serves.
        """
        return new

    def retire(self, old: Handle, new: Handle) -> None:
        """After a successful update: stop the revision that was replaced."""
        self.stop(old)

    def abort(self, new: Handle, old: Handle | None) -> None:
        """After a failed update: remove the new revision; ``old`` must keep serving."""
        self.stop(new)

    def update_keys(self, handle: Handle, keys: tuple[str, str] | None) -> None:
        """Make the running revision accept new auth keys (``regen_key``)."""
        raise TargetNotAvailable(f"The {self.name!r} target cannot change keys of a running service; redeploy it.")

    def scoring_uri(self, handle: Handle) -> str | None:
        """The public scoring URL of a revision (default: ``http://<host>:<port>/score`` from the handle)."""
        if "scoring_uri" in handle:
            return str(handle["scoring_uri"])
        if "port" not in handle:
            return None
        from nbdeploy.targets.net import client_host

        return f"http://{client_host(handle.get('host') or '')}:{handle['port']}/score"

    def smoke_uri(self, handle: Handle) -> str | None:
        """A base URL that reaches this revision alone (before promotion), for health and smoke checks."""
        return None


_TARGETS: dict[str, str | type[Target]] = {
    "process": "nbdeploy.targets.process:ProcessTarget",
    "local": "nbdeploy.targets.local_docker:LocalDockerTarget",
    "aci": "nbdeploy.targets.container_instance:ContainerInstanceTarget",
    "aks": "nbdeploy.targets.kubernetes:KubernetesTarget",
    "edge": "nbdeploy.targets.edge:EdgeTarget",
    "fpga": "nbdeploy.targets.accelerator:AcceleratorTarget",
}
_ALIASES = {"kubernetes": "aks", "docker": "local", "subprocess": "process", "accelerator": "fpga"}
_entry_points_loaded = False


def register_target(name: str, target: str | type[Target]) -> None:
    """Register a target class (or ``"module:Class"`` import string) under ``name``."""
    _TARGETS[name] = target


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="nbdeploy.targets"):
        _TARGETS.setdefault(ep.name, ep.value)


def target_names() -> list[str]:
    """Names of all registered targets."""
    _load_entry_points()
    return sorted(_TARGETS)


def get_target_class(name: str) -> type[Target]:
    """The target class registered under ``name`` (or an alias)."""
    _load_entry_points()
    key = _ALIASES.get(name, name)
    if key not in _TARGETS:
        raise TargetNotAvailable(f"No target named {name!r}. Available: {', '.join(target_names())}")
    entry = _TARGETS[key]
    if isinstance(entry, str):
        module_name, _, attr = entry.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                raise TargetNotAvailable(f"The {key!r} target is not available yet in this version of nbdeploy.") from exc
            raise TargetNotAvailable(
                f"The {key!r} target needs the Python package {exc.name!r}: pip install 'nbdeploy[{key}]'"
            ) from exc
        entry = getattr(module, attr)
        _TARGETS[key] = entry
    return entry


def get_target(name: str, workspace: Workspace) -> Target:
    """An instance of the target registered under ``name`` for ``workspace``."""
    return get_target_class(name)(workspace)
