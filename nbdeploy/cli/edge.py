"""``nbdeploy edge status|export|bundle``: an edge service's devices, its IoT Edge manifest, an air-gapped bundle."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nbdeploy.cli._common import table, workspace_from
from nbdeploy.service import Webservice


@click.group()
def edge() -> None:
    """Export edge services for IoT Hub, or bundle them for devices without a network."""


@edge.command("status")
@click.argument("name")
def status_cmd(name: str) -> None:
    """NAME's state from its policy, and each device: state, the revision it runs, port, since when, why."""
    ctx = click.get_current_context()
    svc = Webservice(name, workspace_from(ctx))
    status = svc.status()
    click.echo(
        f"{name}: {status.state} (revision {svc.revision}, policy {status.details.get('policy', '?')})"
        + (f"\n  {status.reason}" if status.reason else "")
    )
    rows = [
        [
            d["name"],
            d["state"],
            str(d.get("runs") or "-"),
            str(d.get("port") or "-"),
            (d.get("since") or "")[:19],
            d.get("reason") or "",
        ]
        for d in status.details.get("devices", [])
    ]
    if rows:
        click.echo(table(["device", "state", "runs", "port", "since", "reason"], rows))


@edge.command("export")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default="-",
    show_default=True,
    help="Where to write the manifest (- for stdout).",
)
def export_cmd(name: str, output: str) -> None:
    """Write NAME's IoT Edge deployment manifest ($edgeAgent, $edgeHub, the module, routes)."""
    from nbdeploy.targets.edge.bundle import module_spec_for
    from nbdeploy.targets.edge.manifest import render_edge_manifest

    ctx = click.get_current_context()
    text = json.dumps(render_edge_manifest(module_spec_for(Webservice(name, workspace_from(ctx)))), indent=2)
    if output == "-":
        click.echo(text)
    else:
        Path(output).write_text(text + "\n")
        click.echo(f"Wrote {output}", err=True)


@edge.command("bundle")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="The bundle (.tar) to write.")
def bundle_cmd(name: str, output: str) -> None:
    """Write NAME's image, manifest and install.sh into one tar for devices without a network."""
    from nbdeploy.builders.docker_builder import docker_client
    from nbdeploy.targets.edge.bundle import module_spec_for, write_bundle

    ctx = click.get_current_context()
    spec = module_spec_for(Webservice(name, workspace_from(ctx)))
    path = write_bundle(docker_client(), spec, Path(output))
    click.echo(f"Wrote {path} ({path.stat().st_size / 1e6:.1f} MB): tar xf {path.name} && sh install.sh")
