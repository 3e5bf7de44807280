"""The build step: builders turn a revision's bundle and environment into an artifact a target can run.

The service builds *before* it touches the serving revision (a failed build leaves the old one serving),
then hands the :class:`Artifact` to ``Target.start``. A target says which kind of artifact it runs
(``Target.artifact_kind``); builders are found by kind in a small registry that later targets extend with
:func:`register_builder` (or the ``nbdeploy.builders`` entry-point group). Whether an artifact is up to date
is decided from digests already known (bundle, environment, scoring server), never by reading model bytes.
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from nbdeploy.errors import TargetNotAvailable

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
        return {"kind": self.kind, "reference": self.reference, "digest": self.digest, "id": self.id,
                "details": dict(self.details)}

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

    def remove(self, artifact: Artifact) -> None:
        """Delete a built artifact when asked (``delete(delete_image=True)``); default: nothing."""


_BUILDERS: dict[str, str | type[Builder]] = {
    "venv": "nbdeploy.builders.isolated:VenvBuilder",
    "docker-image": "nbdeploy.builders.image:ImageBuilder",
}
_entry_points_loaded = False


def register_builder(kind: str, builder: str | type[Builder]) -> None:
    """Register a builder class (or ``"module:Class"``) for an artifact kind."""
    _BUILDERS[kind] = builder


def builder_kinds() -> list[str]:
    _load_entry_points()
    return sorted(_BUILDERS)


def get_builder(kind: str, workspace: Workspace, progress: Progress | None = None) -> Builder:
    """An instance of the builder of ``kind``."""
    _load_entry_points()
    entry = _BUILDERS.get(kind)
    if entry is None:
        raise TargetNotAvailable(f"No builder makes artifacts of kind {kind!r} (known: {', '.join(sorted(_BUILDERS))})")
    if isinstance(entry, str):
        module_name, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module_name), attr)
        _BUILDERS[kind] = entry
    return entry(workspace, progress)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="nbdeploy.builders"):
        _BUILDERS.setdefault(ep.name, ep.value)
