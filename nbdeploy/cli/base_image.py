"""``nbdeploy base-image``: Python base images from Debian packages, for engines without a registry."""

from __future__ import annotations

from pathlib import Path

import click

from nbdeploy.builders import base_image as base


@click.group("base-image")
def base_image() -> None:
    """Build Python base images without a registry (debootstrap, then docker import)."""


@base_image.command("build")
@click.option("--tag", default=base.DEFAULT_LOCAL_TAG, show_default=True, help="Image tag to create.")
@click.option("--suite", default="bookworm", show_default=True, help="Debian suite.")
@click.option("--mirror", default=base.DEFAULT_MIRROR, show_default=True, help="Debian mirror URL.")
@click.option(
    "--extra-ca",
    "extra_ca",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM file of CA certificates to trust inside the image (e.g. a TLS-inspecting proxy's CA). Repeatable.",
)
@click.option("--package", "packages", multiple=True, help="Extra Debian package to include. Repeatable.")
@click.option("--force", is_flag=True, help="Rebuild the root filesystem and re-import even when cached.")
def build(
    tag: str, suite: str, mirror: str, extra_ca: tuple[Path, ...], packages: tuple[str, ...], force: bool
) -> None:
    """Debootstrap a slim Debian with python3 and venv, and import it as TAG."""
    spec = base.BaseImageSpec(
        tag=tag, suite=suite, mirror=mirror, packages=base.DEFAULT_PACKAGES + packages, extra_ca=tuple(extra_ca)
    )
    result = base.build_base_image(spec, progress=click.echo, force=force)
    click.echo(f"{result.tag} {result.image_id}")
