"""``%deploy``'s parser, generated from the target registry, and its options turned into a DeploymentConfig.

The common arguments are ``%deploy``'s own; each target adds the options it declares (``Target.options``).
With ``--target T`` on the line only T's options are accepted, and one it lacks is refused naming the ones it
has; ``%deploy --help`` prints the help of every target's options (``--target T --help``: T's only).
"""

from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING, Any, NoReturn

from IPython.core.error import UsageError

if TYPE_CHECKING:
    from nbdeploy.specs import DeploymentConfig
    from nbdeploy.targets.base import Target


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting the kernel."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"%deploy: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _HelpShown(message or "")


class _HelpShown(Exception):
    """--help printed the help: the magic returns without deploying."""


def deploy_parser(target: type[Target] | None) -> argparse.ArgumentParser:
    """The ``%deploy`` parser with ``target``'s options (every target's when None)."""
    from nbdeploy.targets.options import COMMON_OPTIONS, merge_options
    from nbdeploy.targets.registry import DEFAULT_TARGET, target_classes, target_names

    parser = _Parser(
        prog="%deploy",
        description="Deploy registered models as a scoring service and wait until it is Healthy.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", help="Service name (3-32 lower-case letters, digits, '-').")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="M[:V]",
        help="Registered model, latest or :version (repeatable; none for a script that loads no model).",
    )
    parser.add_argument("--entry", help="Entry script (default: the last %%score_script or %%inference_config).")
    parser.add_argument("--env", help="Environment defined with %%environment (or a YAML file).")
    parser.add_argument(
        "--target",
        default=DEFAULT_TARGET,
        help=f"Where it runs: {', '.join(target_names())} (default {DEFAULT_TARGET}).",
    )
    parser.add_argument("--overwrite", action="store_true", help="Replace a service of the same name.")
    parser.add_argument(
        "--temporary",
        action="store_true",
        help="Delete the service when this kernel exits, even after a failing cell (examples, CI runs).",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="Seconds to wait for Healthy (default 600).")
    common = parser.add_argument_group("options of every target")
    for option in COMMON_OPTIONS:
        _add(common, option, ())
    if target is not None:
        group = parser.add_argument_group(f"options of --target {target.name}")
        for option in target.options:
            _add(group, option, ())
    else:
        group = parser.add_argument_group("target options")
        for option, owners in merge_options((c.name, c.options) for c in target_classes()):
            _add(group, option, owners)
    return parser


def _add(group: Any, option: Any, owners: tuple[str, ...] | list[str]) -> None:
    where = f" ({', '.join(owners)})" if owners else ""
    text = (option.help + where).replace("%", "%%")
    if option.type is bool:
        group.add_argument(
            option.flag,
            option.negative_flag,
            dest=option.dest,
            default=None,
            action=argparse.BooleanOptionalAction,
            help=text,
        )
    else:
        group.add_argument(
            option.flag,
            dest=option.dest,
            type=option.type,
            default=None,
            choices=option.choices or None,
            metavar=option.metavar,
            help=text,
        )


def parse_deploy_line(line: str) -> tuple[argparse.Namespace, type[Target]] | None:
    """Parse a ``%deploy`` line (shell quoting); None when it asked for help (printed)."""
    from nbdeploy.errors import NbdeployError
    from nbdeploy.targets.registry import get_target_class

    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%deploy: {exc} (check the quotes)") from None
    named = next((words[i + 1] for i, w in enumerate(words[:-1]) if w == "--target"), None)
    named = named or next((w.split("=", 1)[1] for w in words if w.startswith("--target=")), None)
    cls = None
    if named is not None:
        try:
            cls = get_target_class(named)
        except NbdeployError as exc:
            raise UsageError(str(exc)) from None
    parser = deploy_parser(cls)
    try:
        args = parser.parse_args(words)
    except _HelpShown:
        return None
    except UsageError as exc:
        if cls is not None and "unrecognized arguments" in str(exc):
            own = ", ".join(o.flag for o in cls.options) or "none beyond the common ones"
            raise UsageError(f"{exc}: not options of --target {cls.name}; its own options: {own}") from None
        raise
    if cls is None:
        cls = get_target_class(args.target)
    return args, cls


def deployment_config(target: type[Target], args: argparse.Namespace) -> DeploymentConfig:
    """The target's config with the options given; another target's option is a UsageError."""
    from nbdeploy.errors import InvalidInput
    from nbdeploy.targets.options import refuse_foreign_options

    parsed = vars(args)
    try:
        refuse_foreign_options(target, parsed)
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    return target.config_class(**target.option_values(parsed))
