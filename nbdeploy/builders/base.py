"""The build step: builders turn a revision's bundle and environment into an artifact a target can run.

The service builds *before* it touches the serving revision (a failed build leaves the old one serving),
then hands the :class:`Artifact` to ``Target.start``. A target says which kind of artifact it runs
(``Target.artifact_kind``); builders are found by kind in a small registry that later targets extend with
:func:`register_builder` (or the ``nbdeploy.builders`` entry-point group). Whether an artifact is up to date
is decided from digests already known (bundle, environment, scoring server), never by reading model bytes.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from nbdeploy.errors import TargetNotAvailable
from nbdeploy.plugins import PluginRegistry

if TYPE_CHECKING:
    from nbdeploy.builders.bundle import Bundle
    from nbdeploy.specs import DeploymentConfig, Environment
    from nbdeploy.workspace import Workspace

_log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildRequest:
    """What one revision needs built."""

    service: str
    revision: int
    bundle: Bundle
    config: DeploymentConfig
    environment: Environment | None = None


@dataclass(frozen=True)
class Artifact:
    """Something built that a target runs: an image, an isolated environment."""

    kind: str
    reference: str
    """How the target names it: an image tag, an interpreter path."""
    digest: str
    """The recipe digest it was built from (what decides "up to date")."""
    id: str | None = None
    """The engine's own id where there is one (a Docker image id)."""
    cached: bool = False
    """True when it existed already and nothing was built."""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "reference": self.reference,
            "digest": self.digest,
            "id": self.id,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Artifact:
        return cls(doc["kind"], doc["reference"], doc["digest"], doc.get("id"), details=dict(doc.get("details") or {}))


class Builder(ABC):
    """Builds one kind of artifact; reuses it when its recipe digest is unchanged."""

    kind: ClassVar[str]

    def __init__(self, workspace: Workspace, progress: Progress | None = None) -> None:
        self.workspace = workspace
        self.progress: Progress = progress or _log.info

    @abstractmethod
    def build(self, request: BuildRequest) -> Artifact:
        """Build the artifact (or find it up to date) and return it; BuildError when the build fails."""

    def remove(self, artifact: Artifact) -> None:  # noqa: B027 - optional hook, default no-op
        """Delete a built artifact when asked (``delete(delete_image=True)``); default: nothing."""


_BUILDERS: PluginRegistry[type[Builder]] = PluginRegistry(
    "nbdeploy.builders",
    {
        "venv": "nbdeploy.builders.isolated:VenvBuilder",
        "docker-image": "nbdeploy.builders.image:ImageBuilder",
    },
)


def register_builder(kind: str, builder: str | type[Builder]) -> None:
    """Register a builder class (or ``"module:Class"``) for an artifact kind."""
    _BUILDERS.register(kind, builder)


def builder_kinds() -> list[str]:
    return _BUILDERS.names()


def get_builder(kind: str, workspace: Workspace, progress: Progress | None = None) -> Builder:
    """An instance of the builder of ``kind``."""
    if kind not in _BUILDERS:
        raise TargetNotAvailable(f"No builder makes artifacts of kind {kind!r} (known: {', '.join(_BUILDERS.names())})")
    return _BUILDERS.load(kind)(workspace, progress)
