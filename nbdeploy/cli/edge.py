"""``nbdeploy edge export|bundle``: an edge service as an IoT Edge manifest, or as an air-gapped install bundle."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nbdeploy.cli._common import workspace_from
from nbdeploy.service import Webservice


@click.group()
def edge() -> None:
    """Export edge services for IoT Hub, or bundle them for devices without a network."""


@edge.command("export")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="-", show_default=True,
              help="Where to write the manifest (- for stdout).")
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
