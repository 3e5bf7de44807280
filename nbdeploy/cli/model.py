"""``nbdeploy model register|list|show|download|delete|update``."""

from __future__ import annotations

import click

from nbdeploy.cli._common import echo_json, pairs, table, workspace_from
from nbdeploy.registry.model import Model, human_size
from nbdeploy.registry.names import parse_model_ref, printable


@click.group()
def model() -> None:
    """Register, list, show, download, update and delete models."""


@model.command("register")
@click.option("-n", "--name", required=True, help="Model name (letters, digits, '-', '_', '.').")
@click.option("-p", "--path", "path", required=True, help="File or folder to register.")
@click.option("--tag", "tags", multiple=True, metavar="K=V", help="A tag (repeatable).")
@click.option("--property", "properties", multiple=True, metavar="K=V", help="A property (repeatable).")
@click.option("--description", default=None)
@click.option("--framework", default=None, help="e.g. ScikitLearn, PyTorch, Onnx, TensorFlow, Custom.")
@click.option("--framework-version", default=None)
@click.option("--if-changed", is_flag=True, help="Return the latest version when its bytes and metadata are the same.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def register(
    ctx: click.Context,
    name: str,
    path: str,
    tags: tuple[str, ...],
    properties: tuple[str, ...],
    description: str | None,
    framework: str | None,
    framework_version: str | None,
    if_changed: bool,
    output: str,
) -> None:
    """Register a file or folder as the next version of NAME."""
    m = Model.register(
        path,
        name,
        tags=pairs("tag", tags),
        properties=pairs("property", properties),
        description=description,
        model_framework=framework,
        model_framework_version=framework_version,
        workspace=workspace_from(ctx),
        if_changed=if_changed,
    )
    if output == "json":
        echo_json(m.serialize())
    else:
        click.echo(f"Registered {m.id} ({human_size(m.size)}, {len(m.files)} file(s), {m.digest[:19]})")


@model.command("list")
@click.option("--name", default=None)
@click.option("--tag", "tags", multiple=True, metavar="K[=V]", help="Tag filter; several are AND-ed.")
@click.option("--property", "properties", multiple=True, metavar="K[=V]", help="Property filter; AND-ed.")
@click.option("--latest", is_flag=True, help="Only the newest matching version of each name.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def list_(
    ctx: click.Context, name: str | None, tags: tuple[str, ...], properties: tuple[str, ...], latest: bool, output: str
) -> None:
    """List model versions."""
    models = Model.list(
        name=name, tags=list(tags), properties=list(properties), latest=latest, workspace=workspace_from(ctx)
    )
    if output == "json":
        echo_json([m.serialize() for m in models])
        return
    rows = [
        [
            m.name,
            str(m.version),
            m._record.created_time[:19].replace("T", " "),
            human_size(m.size),
            m.model_framework or "",
            ",".join(f"{k}={v}" for k, v in m.tags.items()),
        ]
        for m in models
    ]
    click.echo(table(["NAME", "VERSION", "CREATED (UTC)", "SIZE", "FRAMEWORK", "TAGS"], rows))


@model.command("show")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def show(ctx: click.Context, ref: str, output: str) -> None:
    """Show one model version (the latest when VERSION is omitted)."""
    name, version = parse_model_ref(ref)
    m = Model.get(name, version, workspace=workspace_from(ctx))
    data = m.serialize()
    if output == "json":
        echo_json(data)
        return
    for key in ("id", "createdTime", "createdBy", "description", "framework", "frameworkVersion", "digest"):
        click.echo(f"{key:<17}{'' if data[key] is None else data[key]}")
    click.echo(f"{'size':<17}{human_size(m.size)} ({m.size} bytes)")
    click.echo(f"{'tags':<17}{', '.join(f'{k}={v}' for k, v in m.tags.items())}")
    click.echo(f"{'properties':<17}{', '.join(f'{k}={v}' for k, v in m.properties.items())}")
    used = m.used_by()
    click.echo(f"{'used by':<17}{', '.join(used)}")
    click.echo("files:")
    for e in m.file_entries():
        click.echo(f"  {oct(e.mode)[2:]:>4}  {e.size:>12}  {printable(e.path)}")


@model.command("download")
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("-t", "--target-dir", required=True, type=click.Path(file_okay=False))
@click.option("--exist-ok", is_flag=True, help="Overwrite files that exist already.")
@click.pass_context
def download(ctx: click.Context, ref: str, target_dir: str, exist_ok: bool) -> None:
    """Write a model version's files into a folder."""
    name, version = parse_model_ref(ref)
    m = Model.get(name, version, workspace=workspace_from(ctx))
    click.echo(printable(m.download(target_dir, exist_ok=exist_ok)))


@model.command("delete")
@click.argument("ref", metavar="NAME:VERSION")
@click.option("--force", is_flag=True, help="Delete even if a service uses it.")
@click.pass_context
def delete(ctx: click.Context, ref: str, force: bool) -> None:
    """Delete one model version."""
    name, version = parse_model_ref(ref, require_version=True)
    m = Model.get(name, version, workspace=workspace_from(ctx))
    m.delete(force=force)
    click.echo(f"Deleted {m.id}")


@model.command("update")
@click.argument("ref", metavar="NAME:VERSION")
@click.option("--add-tag", "add_tags", multiple=True, metavar="K=V")
@click.option("--remove-tag", "remove_tags", multiple=True, metavar="K")
@click.option("--add-property", "add_properties", multiple=True, metavar="K=V", help="Add-only.")
@click.pass_context
def update(
    ctx: click.Context,
    ref: str,
    add_tags: tuple[str, ...],
    remove_tags: tuple[str, ...],
    add_properties: tuple[str, ...],
) -> None:
    """Add or remove tags and add properties of one model version."""
    name, version = parse_model_ref(ref, require_version=True)
    if not (add_tags or remove_tags or add_properties):
        raise click.UsageError("Nothing to update: give --add-tag, --remove-tag or --add-property.")
    new_tags, new_props = pairs("tag", add_tags), pairs("property", add_properties)
    m = Model.get(name, version, workspace=workspace_from(ctx))
    m.update_tags_properties(add_tags=new_tags, remove_tags=list(remove_tags), add_properties=new_props)
    click.echo(f"Updated {m.id}: tags {m.tags or '{}'}, properties {m.properties or '{}'}")


def _deploy_alias() -> click.Command:
    """``nbdeploy model deploy -n NAME -m MODEL --ic ... --dc ...``: ``az ml model deploy``'s spelling of
    ``nbdeploy service deploy`` (the same command, options and help)."""
    from nbdeploy.cli.service import deploy_cmd

    return deploy_cmd


model.add_command(_deploy_alias(), "deploy")
