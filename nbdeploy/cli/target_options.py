"""Click parameters generated from the targets' declared options (``Target.options``).

:class:`TargetOptionsCommand` reads ``--target`` (or the ``computeType`` of ``--dc``) before parsing, so
``service deploy --target aks --help`` shows the common options plus aks's own, and an option the target does
not have is refused in one line naming the options it has. Without a known target (``service update``) every
target's options are accepted and the command checks them against the service's target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click
import yaml

from nbdeploy.errors import NbdeployError
from nbdeploy.targets.options import COMMON_OPTIONS, Option, merge_options, target_flags
from nbdeploy.targets.registry import DEFAULT_TARGET, config_class_for, get_target_class, target_classes


def click_option(option: Option, owners: Sequence[str] = ()) -> click.Option:
    """One click option for a declared option (booleans get ``--x/--no-x``; values default to None)."""
    where = f" [{', '.join(owners)}]" if owners else ""
    if option.type is bool:
        return click.Option(
            [f"{option.flag}/{option.negative_flag}", option.dest], default=None, help=option.help + where
        )
    kind: Any = click.Choice(option.choices) if option.choices else option.type
    return click.Option(
        [option.flag, option.dest], type=kind, default=None, metavar=option.metavar, help=option.help + where
    )


class TargetOptionsCommand(click.Command):
    """A command whose parameters are its own plus the options of the target named on its command line."""

    def __init__(self, *args: Any, target_from_args: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.own_params = list(self.params)
        self.target_from_args = target_from_args

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        target = _peek_target(args) if self.target_from_args else None
        if target is not None:
            try:
                cls = get_target_class(config_class_for(target).target)
            except NbdeployError as exc:
                raise click.UsageError(str(exc), ctx) from None
            ctx.meta["nbdeploy.target"] = cls
            self.params = [*self.own_params, *(click_option(o) for o in (*COMMON_OPTIONS, *cls.options))]
        else:
            merged = merge_options((c.name, c.options) for c in target_classes())
            self.params = [
                *self.own_params,
                *(click_option(o) for o in COMMON_OPTIONS),
                *(click_option(o, owners) for o, owners in merged),
            ]
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            chosen = ctx.meta.get("nbdeploy.target")
            if chosen is None:
                raise
            known = ", ".join(target_flags(chosen)) or "none beyond the common ones"
            raise click.UsageError(
                f"{exc.option_name} is not an option of --target {chosen.name}; "
                f"its own options: {known} (see --target {chosen.name} --help)",
                ctx,
            ) from None


def _peek_target(args: Sequence[str]) -> str:
    """The target named by ``--target X`` / ``-t X`` / ``--target=X``, else by ``--dc FILE``, else the default."""
    for i, arg in enumerate(args):
        if arg in ("--target", "-t") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--target="):
            return arg.split("=", 1)[1]
    for i, arg in enumerate(args):
        if arg in ("--dc", "--deploy-config") and i + 1 < len(args):
            return _compute_type(args[i + 1]) or DEFAULT_TARGET
    return DEFAULT_TARGET


def _compute_type(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError):
        return None  # the command reports the file problem itself
    return str(doc.get("computeType")) if isinstance(doc, dict) and doc.get("computeType") else None
