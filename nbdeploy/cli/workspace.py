"""``nbdeploy workspace create|show|ca``, ``nbdeploy gc`` and ``nbdeploy verify``."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import click

from nbdeploy.cli._common import echo_json, workspace_from
from nbdeploy.errors import WorkspaceError
from nbdeploy.registry.model import human_size
from nbdeploy.workspace import CONFIG_NAME, DB_NAME, DIR_NAME, ENV_VAR, Workspace


@click.group()
def workspace() -> None:
    """Create and show workspaces."""


@workspace.command("create")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--exist-ok", is_flag=True, help="Succeed if PATH is already a workspace.")
@click.option(
    "--default/--no-default",
    "make_default",
    default=None,
    help="Make PATH the default workspace for the current folder and below (writes .nbdeploy/config.json "
    "here). Asked when run interactively; otherwise the export line is printed.",
)
def create(path: str, exist_ok: bool, make_default: bool | None) -> None:
    """Create a workspace folder at PATH (and offer to make it this folder's default)."""
    ws = Workspace.create(path, exist_ok=exist_ok)
    click.echo(f"Created workspace {ws.path}")
    offer_default(ws, make_default)


def offer_default(ws: Workspace, make_default: bool | None) -> None:
    """Make ``ws`` the current folder's default (a ``.nbdeploy/config.json`` pointer), or say how to use it."""
    here = Path.cwd()
    if ws.path == here / DIR_NAME:
        click.echo(f"Commands run in {here} and below use it (found as {DIR_NAME}/).")
        return
    if make_default is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
        make_default = interactive and click.confirm(f"Make it the default workspace for {here}?", default=True)
    if not make_default:
        quoted = shlex.quote(str(ws.path))
        click.echo(
            f"To use it: export {ENV_VAR}={quoted}  (or pass -w {quoted}, or make it this folder's default: "
            f"nbdeploy workspace create {quoted} --exist-ok --default)"
        )
        return
    pointer_dir = here / DIR_NAME
    if here == Path.home():
        raise WorkspaceError(
            f"{pointer_dir} is the per-user default workspace, so a pointer cannot live there; "
            f"export {ENV_VAR}={ws.path} instead."
        )
    if (pointer_dir / DB_NAME).is_file():
        raise WorkspaceError(
            f"{pointer_dir} is a workspace itself, so it stays this folder's default; use -w {ws.path} "
            f"or export {ENV_VAR}={ws.path}."
        )
    pointer_dir.mkdir(exist_ok=True)
    config = pointer_dir / CONFIG_NAME
    config.write_text(json.dumps({"workspace": str(ws.path)}, indent=2) + "\n")
    click.echo(f"Commands run in {here} and below now use it ({config}).")
    if os.environ.get(ENV_VAR):
        click.echo(f"Note: {ENV_VAR}={os.environ[ENV_VAR]} is set and wins over it; unset it to use this default.")


@workspace.command("show")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def show(ctx: click.Context, output: str) -> None:
    """Show which workspace is used and what it holds."""
    ws = workspace_from(ctx)
    conn = ws.db(create=False)
    versions, names = conn.execute("SELECT COUNT(*), COUNT(DISTINCT name) FROM models").fetchone()
    stored = sum(p.stat().st_size for p in ws.blobs_dir.rglob("*") if p.is_file()) if ws.exists() else 0
    schema = conn.execute("PRAGMA user_version").fetchone()[0]
    info = {
        "path": str(ws.path),
        "found_by": ws.source,
        "exists": ws.exists(),
        "schema_version": schema,
        "models": names,
        "model_versions": versions,
        "blob_bytes": stored,
    }
    if output == "json":
        echo_json(info)
        return
    click.echo(f"Workspace  {ws.path}{'' if ws.exists() else '  (not created yet: created on first write)'}")
    click.echo(f"Found by   {ws.source}")
    click.echo(f"Schema     {schema}")
    click.echo(f"Models     {names} name(s), {versions} version(s), {human_size(stored)} stored")


@workspace.command("ca")
@click.option("--pem", is_flag=True, help="Print the CA certificate itself instead of its path.")
@click.pass_context
def ca(ctx: click.Context, pem: bool) -> None:
    """The workspace CA that signs the certificates of HTTPS services (created on first use).

    Give its path to clients that call those services (curl --cacert, requests verify=); its key stays in
    the workspace.
    """
    from nbdeploy.tls import WorkspaceCA

    authority = WorkspaceCA(workspace_from(ctx).path)
    path = authority.ensure()
    click.echo(authority.pem().rstrip() if pem else str(path))


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@click.pass_context
def gc(ctx: click.Context, dry_run: bool) -> None:
    """Remove file blobs no model version refers to, and stale temporary files."""
    from nbdeploy.registry.gc import gc as run_gc

    report = run_gc(workspace_from(ctx), dry_run=dry_run)
    verb = "Would remove" if dry_run else "Removed"
    click.echo(
        f"{verb} {report.blobs_removed} blob(s), {report.copies_removed} unused deploy copy(ies) "
        f"({human_size(report.bytes_freed)}) and {report.tmp_removed} temporary file(s); "
        f"{report.blobs_kept} blob(s) in use."
    )
    if report.blobs_detached:
        click.echo(
            f"{'Would give' if dry_run else 'Gave'} {report.blobs_detached} blob(s) hard-linked from old bundles "
            "their own copy."
        )


@click.command("verify")
@click.option("--quick", is_flag=True, help="Compare blob sizes only (no sha256 of every file).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def verify(ctx: click.Context, quick: bool, output: str) -> None:
    """Check the workspace database and every model file blob against its recorded sha256."""
    from nbdeploy.errors import WorkspaceError
    from nbdeploy.registry.verify import verify as run_verify

    report = run_verify(workspace_from(ctx), quick=quick)
    if output == "json":
        echo_json(
            {
                "ok": report.ok,
                "blobs_checked": report.blobs_checked,
                "bytes_checked": report.bytes_checked,
                "orphans": report.orphans,
                "database_problem": report.database_problem,
                "problems": [
                    {"digest": p.digest, "problem": p.problem, "models": list(p.models)} for p in report.problems
                ],
            }
        )
    else:
        if report.database_problem:
            click.echo(f"database: {report.database_problem}")
        for p in report.problems:
            click.echo(f"blob {p.digest[:16]} ({', '.join(p.models)}): {p.problem}")
        how = "sizes" if quick else "sha256"
        click.echo(
            f"Checked {report.blobs_checked} blob(s) ({human_size(report.bytes_checked)}, {how}); "
            f"{len(report.problems)} damaged; {report.orphans} unreferenced (gc removes them)."
        )
    if not report.ok:
        raise WorkspaceError(
            "The workspace is damaged (see above). Re-register a damaged model's original file "
            "to repair its blob; restore the database from a backup if it is the database."
        )
