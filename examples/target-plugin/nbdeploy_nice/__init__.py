"""``--target nice``: an out-of-tree nbdeploy target, as a third party would write one.

It runs the scoring server like the built-in ``process`` target, at a lower CPU priority (``nice``), so a
laptop stays responsive while a service warms up. Everything nbdeploy needs is declared on the class: its
name, a one-line description, its deployment config, its command-line options, and whether it can run here.
The ``nbdeploy.targets`` entry point in pyproject.toml makes ``nbdeploy service deploy --target nice`` and
``%deploy ... --target nice`` work without changing nbdeploy. Walk-through: docs/targets.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

from nbdeploy.errors import InvalidSpec
from nbdeploy.targets.base import Availability, Handle, RevisionSpec
from nbdeploy.targets.options import Option
from nbdeploy.targets.process import ProcessDeploymentConfig, ProcessTarget


@dataclass
class NiceDeploymentConfig(ProcessDeploymentConfig):
    """The process target's settings plus the CPU priority."""

    target: ClassVar[str] = "nice"
    compute_type: ClassVar[str] = "nice"
    json_keys: ClassVar[dict[str, str]] = {**ProcessDeploymentConfig.json_keys, "niceness": "niceness"}

    niceness: int = 10
    """0 (normal) to 19 (lowest priority)."""

    def validate(self) -> None:
        super().validate()
        if isinstance(self.niceness, bool) or not isinstance(self.niceness, int) or not 0 <= self.niceness <= 19:
            raise InvalidSpec("niceness", f"must be an integer from 0 to 19, got {self.niceness!r}")


class NiceTarget(ProcessTarget):
    """The scoring server as a local subprocess with a lower CPU priority."""

    name = "nice"
    aliases = ()
    description = "The process target at a lower CPU priority (an example plugin)."
    config_class = NiceDeploymentConfig
    options = (*ProcessTarget.options, Option("--niceness", "niceness", int, "CPU priority, 0-19 (default 10)."))

    @classmethod
    def availability(cls) -> Availability:
        if not hasattr(os, "setpriority"):
            return Availability(False, "this platform cannot change process priorities")
        return Availability(True)

    def start(self, spec: RevisionSpec, previous: Handle | None = None) -> Handle:
        handle = super().start(spec, previous)
        niceness = spec.config.niceness if isinstance(spec.config, NiceDeploymentConfig) else 10
        os.setpriority(os.PRIO_PGRP, handle["pid"], niceness)  # the server and its workers: one process group
        self.progress(f"scoring server pid {handle['pid']} runs at niceness {niceness}")
        return handle


__all__ = ["NiceDeploymentConfig", "NiceTarget"]
