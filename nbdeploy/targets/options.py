"""Deployment options as data: each target declares its own, front ends (CLI, ``%deploy``) render them.

An :class:`Option` maps one command-line flag to one field of a target's
:class:`~nbdeploy.specs.DeploymentConfig`. :data:`COMMON_OPTIONS` are the fields every config has; a target
lists its own in ``Target.options``. Front ends never list targets or flags themselves: they turn these
declarations into click or argparse parameters (``nbdeploy.cli.target_options``,
``nbdeploy.notebook._deploy_options``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbdeploy.errors import InvalidInput

if TYPE_CHECKING:
    from nbdeploy.targets.base import Target


@dataclass(frozen=True)
class Option:
    """One command-line option of a deployment config field."""

    flag: str
    """``--replicas``; a boolean option also gets ``--no-<name>``."""
    field: str
    """The DeploymentConfig field it sets (and the parsed value's name)."""
    type: type
    """``int``, ``float``, ``str`` or ``bool``."""
    help: str
    choices: tuple[str, ...] = ()
    metavar: str | None = None

    @property
    def dest(self) -> str:
        """The parsed value's name: the field name."""
        return self.field

    @property
    def negative_flag(self) -> str | None:
        """``--no-auth`` for the boolean ``--auth``; None for valued options."""
        return "--no-" + self.flag[2:] if self.type is bool else None


COMMON_OPTIONS: tuple[Option, ...] = (
    Option("--auth", "auth_enabled", bool, "Key authentication on every route but the health routes."),
    Option("--description", "description", str, "Free text stored with the service."),
    Option("--scoring-timeout-ms", "scoring_timeout_ms", int, "A run() taking longer is answered 500."),
    Option(
        "--smoke-input",
        "smoke_input",
        str,
        "Request body POSTed to /score before an update moves traffic (default: the swagger example).",
        metavar="JSON",
    ),
)


def values_for(options: Iterable[Option], parsed: Mapping[str, Any]) -> dict[str, Any]:
    """The config changes among ``parsed`` (dest -> value): the options that were given (not None)."""
    return {o.field: parsed[o.dest] for o in options if parsed.get(o.dest) is not None}


def merge_options(groups: Iterable[tuple[str, Iterable[Option]]]) -> list[tuple[Option, list[str]]]:
    """One entry per flag across targets, with the targets that have it; a flag must mean one thing.

    Raises ValueError when two targets declare the same flag for different fields or types (a plugin bug).
    """
    merged: dict[str, tuple[Option, list[str]]] = {}
    for owner, options in groups:
        for option in options:
            if option.flag in merged:
                first, owners = merged[option.flag]
                if (first.field, first.type) != (option.field, option.type):
                    raise ValueError(
                        f"{option.flag} means {first.field} ({first.type.__name__}) for {owners[0]} but "
                        f"{option.field} ({option.type.__name__}) for {owner}"
                    )
                owners.append(owner)
            else:
                merged[option.flag] = (option, [owner])
    return list(merged.values())


def target_flags(cls: type[Target]) -> list[str]:
    """The flags a target accepts beyond the common ones."""
    return [o.flag for o in cls.options]


def refuse_foreign_options(cls: type[Target], given: Mapping[str, Any]) -> None:
    """InvalidInput naming the first given option that ``cls`` does not have, and the options it has."""
    from nbdeploy.targets.registry import target_classes

    own = {o.dest for o in (*COMMON_OPTIONS, *cls.options)}
    for option, owners in merge_options((c.name, c.options) for c in target_classes()):
        if given.get(option.dest) is not None and option.dest not in own:
            theirs = ", ".join(target_flags(cls)) or "none beyond the common ones"
            raise InvalidInput(
                f"{option.flag} is not an option of target {cls.name!r} (it is one of "
                f"{', '.join(owners)}); {cls.name}'s own options: {theirs}"
            )
