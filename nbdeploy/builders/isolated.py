"""The isolated-environment builder: a virtual environment for an Environment, for the process target.

:func:`unsatisfied_requirements` tells whether this interpreter already satisfies an environment (then the
process target runs the server here); otherwise :class:`VenvBuilder` builds (or reuses, by the environment's
lock) a virtual environment with :func:`nbdeploy.builders.venv.isolated_python`.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement

from nbdeploy.builders.base import Artifact, Builder, BuildRequest

if TYPE_CHECKING:
    from nbdeploy.specs import Environment


def unsatisfied_requirements(environment: Environment | None) -> list[str]:
    """The environment's pip requirements this interpreter does not satisfy ([] for none or no environment).

    A requirement that is not a plain ``name[extras] specifier`` (a URL, a path, an option line) counts as
    unsatisfied: only an isolated build can honour it.
    """
    if environment is None or environment.python.user_managed_dependencies:
        return []
    missing = []
    for line in environment.pip_packages:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            missing.append(line)
            continue
        if req.url or (req.marker is not None and not req.marker.evaluate()):
            if req.url:
                missing.append(line)
            continue
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(line)
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            missing.append(f"{line} (found {installed})")
    return missing


class VenvBuilder(Builder):
    """Builds the virtual environment of a revision's Environment (cached by its digest)."""

    kind = "venv"

    def build(self, request: BuildRequest) -> Artifact:
        from nbdeploy.builders.lock import describe_lock, lock_environment
        from nbdeploy.builders.venv import isolated_python

        folder = self.workspace.service_dir(request.service, create=True)
        log_path = folder / f"revision-{request.revision}.log"
        environment = request.environment
        self.progress(f"isolated environment for {environment.name if environment else 'the scoring server'}")
        lock = lock_environment(self.workspace, environment, self.progress)
        self.progress(describe_lock(lock))
        python, module, pythonpath = isolated_python(self.workspace, environment, log_path, lock=lock)
        return Artifact(
            self.kind,
            python,
            lock.digest,
            details={
                "module": module,
                "pythonpath": pythonpath,
                "lock": {"digest": lock.digest, "packages": list(lock.packages)},
            },
        )
