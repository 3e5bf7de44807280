"""Entry point of the ``nbdeploy`` command.

Subcommand groups live in their own modules (``cli/model.py``, ``cli/service.py``, ...) and are
imported only when invoked, so ``nbdeploy --help`` stays fast. ``--workspace/-w`` is accepted before the
subcommand and on every command below it (``nbdeploy model register -w W ...``). Every :class:`~nbdeploy.errors.NbdeployError`
becomes a one-line reason on stderr and a non-zero exit code.
"""

from __future__ import annotations

import importlib
import sys

import click

from nbdeploy.errors import NbdeployError

# name -> (module, attribute, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "workspace": ("nbdeploy.cli.workspace", "workspace", "Create and show workspaces."),
    "model": ("nbdeploy.cli.model", "model", "Register, list, show, download, update and delete models."),
    "gc": ("nbdeploy.cli.workspace", "gc", "Remove file blobs no model version refers to."),
    "verify": ("nbdeploy.cli.workspace", "verify", "Check the database and every model file blob's sha256."),
    "service": ("nbdeploy.cli.service", "service", "Deploy, inspect, score, update and delete services."),
    "env": ("nbdeploy.cli.env", "env", "Saved environments and the locks builds install from."),
    "serve": ("nbdeploy.cli.serve", "serve", "Run the scoring server for an entry script (azmlinfsrv equivalent)."),
    "base-image": ("nbdeploy.cli.base_image", "base_image", "Build Python base images without a registry."),
    "host": ("nbdeploy.cli.host", "host", "Save, list, check and remove remote Docker engines (container hosts)."),
    "device": (
        "nbdeploy.cli.device",
        "device",
        "Save, list, check and remove edge devices (Docker engines with tags).",
    ),
    "batch": ("nbdeploy.cli.batch", "batch", "Batch inference over files and tables (v1 ParallelRunStep scripts)."),
}


def target_commands() -> dict[str, tuple[str, str, str]]:
    """Command groups the targets declare (``Target.commands``: e.g. ``nbdeploy edge export``)."""
    from nbdeploy.targets.registry import target_classes

    found: dict[str, tuple[str, str, str]] = {}
    for cls in target_classes():
        for name, entry, help_text in cls.commands:
            module_name, _, attr = entry.partition(":")
            found[name] = (module_name, attr, help_text)
    return found


WORKSPACE_HELP = "Workspace folder (default: NBDEPLOY_WORKSPACE, a .nbdeploy/ folder found upward, or ~/.nbdeploy)."


def _take_workspace(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """``--workspace`` given after a subcommand: it wins over the root's (and over NBDEPLOY_WORKSPACE)."""
    if value is None:
        return
    root = ctx.find_root()
    root.obj = {**(root.obj or {}), "workspace": value}
    root.set_parameter_source("workspace", click.core.ParameterSource.COMMANDLINE)


def with_workspace_option(command: click.Command) -> click.Command:
    """Accept ``--workspace/-w`` on ``command`` and, for a group, on every subcommand below it (idempotent)."""
    opts = {opt for p in command.params for opt in getattr(p, "opts", [])}
    if not opts & {"--workspace", "-w"}:
        command.params.append(
            click.Option(
                ["--workspace", "-w", "workspace_choice"],
                type=click.Path(file_okay=False),
                expose_value=False,
                callback=_take_workspace,
                help=WORKSPACE_HELP,
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_workspace_option(sub)
    return command


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (each accepts ``--workspace/-w`` too)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({**SUBCOMMANDS, **target_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        commands = SUBCOMMANDS if cmd_name in SUBCOMMANDS else target_commands()
        if cmd_name not in commands:
            return None
        module_name, attr, _ = commands[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None  # subcommand not built yet
            raise
        return with_workspace_option(getattr(module, attr))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = {**SUBCOMMANDS, **target_commands()}
        rows = [(name, commands[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--workspace",
    "-w",
    "workspace",
    envvar="NBDEPLOY_WORKSPACE",
    type=click.Path(file_okay=False),
    help=WORKSPACE_HELP,
)
@click.version_option(package_name="nbdeploy")
@click.pass_context
def cli(ctx: click.Context, workspace: str | None) -> None:
    """nbdeploy: register models and deploy them as scoring services."""
    ctx.obj = {"workspace": workspace}


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; NbdeployError becomes ``Error: <reason>`` and exit code 1."""
    try:
        cli.main(args=argv, prog_name="nbdeploy", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except NbdeployError as exc:
        from nbdeploy.cli._common import error_line

        click.echo(error_line(exc), err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
