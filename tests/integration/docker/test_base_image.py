"""``nbdeploy base-image build`` against the real engine (reuses the cached root filesystem of docker.sh up)."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from nbdeploy.cli.main import cli

from .docker_testapp import RUN_ID

pytestmark = pytest.mark.docker

HOST_CA = "/etc/ssl/certs/ca-certificates.crt"


def test_base_image_build_imports_a_working_python(engine, resources):
    tag = f"nbdeploy-test/base-{RUN_ID}:1"
    resources.repositories.append(tag.split(":")[0])
    args = ["base-image", "build", "--tag", tag] + (["--extra-ca", HOST_CA] if os.path.isfile(HOST_CA) else [])
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert tag in result.output.splitlines()[-1]
    image = engine.images.get(tag)
    assert image.attrs["Config"]["Cmd"] == ["python3"]
    assert "nbdeploy.base.key" in image.labels
    out = engine.containers.run(tag, ["python3", "-c", "import ssl, venv, sys; print(sys.version_info[:2])"],
                                remove=True).decode()
    assert out.strip() == "(3, 11)"
    again = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert "up to date" in again.output
