"""The interface every deployment target implements.

A target runs one *revision* of a service (an artifact built from a bundle, plus a deployment config) and
answers questions about it. It keeps no state of its own: :meth:`Target.start` returns a JSON-serializable
*handle* (pid and port, container id, ...) that :mod:`nbdeploy.service` stores in the revision record and
passes back to every other verb, so a service is found again after a kernel restart. Only the target reads
its handle; callers reach a revision through :meth:`Target.endpoint` / :meth:`Target.private_endpoint`.

A target class declares its whole surface: ``name``, ``aliases``, a one-line ``description``, its
``config_class`` (a :class:`~nbdeploy.specs.DeploymentConfig` subclass), its command-line ``options``
(:mod:`nbdeploy.targets.options`), which kind of artifact it runs (:meth:`Target.artifact_kind`) and whether
it can run here (:meth:`Target.availability`). The CLI, ``%deploy``, the widgets and the docs are generated
from that; :mod:`nbdeploy.targets.registry` finds targets by name.
"""

from __future__ import annotations

import enum
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from nbdeploy.errors import TargetNotAvailable
from nbdeploy.targets.options import Option

if TYPE_CHECKING:
    from nbdeploy.builders.base import Artifact, BuildRequest
    from nbdeploy.builders.bundle import Bundle
    from nbdeploy.specs import DeploymentConfig, Environment
    from nbdeploy.targets.endpoint import Endpoint
    from nbdeploy.workspace import Workspace

Handle = dict[str, Any]
"""A target's record of one running revision; each target documents its keys in a TypedDict."""
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


@dataclass(frozen=True)
class Availability:
    """Whether a target can run here, and if not, why and what to do."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


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
    artifact: Artifact | None = None
    """What the build step made for this revision (None for targets that run the bundle as it is)."""


class Target(ABC):
    """Runs revisions of services somewhere. Subclasses declare their surface and implement the verbs."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    """One line for listings and help."""
    config_class: ClassVar[type[DeploymentConfig]]
    options: ClassVar[tuple[Option, ...]] = ()
    """The config fields users set from the command line and ``%deploy``, beyond the common ones."""
    extra: ClassVar[str | None] = None
    """The pip extra that brings this target's Python dependencies (named in availability messages)."""
    commands: ClassVar[tuple[tuple[str, str, str], ...]] = ()
    """Command groups of the target's own for the ``nbdeploy`` CLI: (name, ``"module:attr"``, one-line help)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.progress: Callable[[str], None] = _log.info
        """Receives start-up lines; the service layer points it at the operation's progress sink."""

    # -- what the target is --------------------------------------------------------------------------
    @classmethod
    def availability(cls) -> Availability:
        """Whether this target can run here now (may ask an engine: not for import time or constructors)."""
        return Availability(True)

    @classmethod
    def option_values(cls, parsed: Mapping[str, Any]) -> dict[str, Any]:
        """Config changes from parsed options (field -> value, None meaning "not given"); targets whose
        options imply others (a replica count turns autoscaling off) override this."""
        from nbdeploy.targets.options import COMMON_OPTIONS, values_for

        return values_for((*COMMON_OPTIONS, *cls.options), parsed)

    def artifact_kind(self, request: BuildRequest) -> str | None:
        """The kind of artifact (a builder name) this revision runs from; None: the bundle as it is.

        May raise :class:`~nbdeploy.errors.InvalidSpec` when the request cannot run on this target.
        """
        return None

    # -- verbs ---------------------------------------------------------------------------------------
    @abstractmethod
    def start(self, spec: RevisionSpec, previous: Handle | None = None) -> Handle:
        """Start the revision from ``spec.artifact`` and return its handle; do not wait for it to become Healthy.

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

    @abstractmethod
    def endpoint(self, handle: Handle) -> Endpoint | None:
        """How clients reach the service through this revision once it serves (None: not reachable yet)."""

    def private_endpoint(self, handle: Handle) -> Endpoint | None:
        """How to reach this revision alone, before it takes traffic (health and smoke checks).

        Default: the public endpoint (targets whose new revision is reachable only once it serves).
        """
        return self.endpoint(handle)

    def promote(self, new: Handle, old: Handle | None) -> Handle:
        """Move traffic from ``old`` to ``new`` (both running) and return ``new``'s handle, updated.

        The caller retires ``old`` afterwards. The default suits targets whose :meth:`start` already serves.
        """
        return new

    def retire(self, old: Handle, new: Handle) -> None:
        """After a successful update: stop the revision that was replaced."""
        self.stop(old)

    def abort(self, new: Handle, old: Handle | None) -> None:
        """After a failed update: remove the new revision; ``old`` must keep serving."""
        self.stop(new)

    def reconcile(self, service: str, current: Handle | None, others: Mapping[int, Handle | None]) -> dict[int, str]:
        """Stop what runs for ``service`` besides its ``current`` revision; say what was done, per revision.

        Called under the service's lifecycle lock before every lifecycle operation, so no other operation is
        in flight: whatever runs for a revision in ``others`` (revision -> its handle, None when the
        operation that started it died before recording one) was left behind by an operation that died
        (a SIGKILLed CLI, a lost machine) and must not serve. Returns ``{revision: what was done}`` for the
        revisions it acted on ("stopped", "was not running"); the service layer records those in the
        history. A target may also clean up ``current``'s leftovers (e.g. processes of a dead server).

        Default: nothing (``{}``). That is the safe choice for targets whose revisions share one object
        (``aks``: every handle names the same Deployment, so stopping an old handle would stop the service).
        Targets whose revisions run side by side (``process``, ``local``) implement it.
        """
        return {}

    def remove_copies(self, handle: Handle) -> None:
        """Remove what the revision placed on its engine beyond what ``stop`` removes (an image shipped to a
        remote engine); ``delete(delete_image=True)`` calls it. Default: nothing."""
        return None

    def converge(self, handle: Handle) -> Handle:
        """Bring the serving revision to where it should run but does not yet (``nbdeploy service reconcile``):
        e.g. edge devices that were offline during a rollout. Returns the handle, updated. Default: nothing to do.
        """
        return handle

    def update_keys(self, handle: Handle, keys: tuple[str, str] | None) -> None:
        """Make the running revision accept new auth keys (``regen_key``)."""
        raise TargetNotAvailable(f"The {self.name!r} target cannot change keys of a running service; redeploy it.")

    def scoring_uri(self, handle: Handle) -> str | None:
        """The public scoring URL of a revision."""
        endpoint = self.endpoint(handle)
        return endpoint.scoring_uri if endpoint else None
