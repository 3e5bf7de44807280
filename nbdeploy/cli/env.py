"""``nbdeploy env list|show|lock``: saved environments and their locks."""

from __future__ import annotations

import click

from nbdeploy.cli._common import workspace_from


@click.group("env")
def env() -> None:
    """Saved environments (%%environment) and the locks builds install from."""


@env.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """Names of the environments saved in the workspace."""
    from nbdeploy.specs.environment_store import environment_names

    for name in environment_names(workspace_from(ctx)):
        click.echo(name)


@env.command("lock")
@click.argument("name_or_file")
@click.option("--refresh", is_flag=True, help="Resolve again (newer versions within the requirements).")
@click.pass_context
def lock_cmd(ctx: click.Context, name_or_file: str, refresh: bool) -> None:
    """Resolve NAME_OR_FILE once into exact versions with hashes (reused by every build) and print the lock."""
    from nbdeploy.builders.lock import describe_lock, lock_environment
    from nbdeploy.specs.environment_store import load_environment

    ws = workspace_from(ctx)
    lock = lock_environment(
        ws, load_environment(ws, name_or_file), lambda line: click.echo(line, err=True), refresh=refresh
    )
    click.echo(describe_lock(lock), err=True)
    for package in lock.packages:
        click.echo(package)
