"""``nbdeploy edge export`` and ``nbdeploy edge bundle``: the bundle's install.sh, run with nothing but docker
against a real device engine (DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH), yields the same running module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import httpx
import jsonschema
import pytest

from nbdeploy.service import deploy
from nbdeploy.targets.edge import EdgeDeploymentConfig

from .conftest import ROOT

pytestmark = [pytest.mark.remote, pytest.mark.slow]
SCHEMAS = ROOT / "tests" / "unit" / "edge" / "data"


def _cli(fleet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbdeploy", "-w", str(fleet.ws.path), *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, check=False)


def test_export_and_air_gapped_bundle(fleet, device_lines, tmp_path: Path) -> None:
    service = fleet.service_name()
    ic, model = fleet.app(weight=3.0)
    svc = deploy(service, [model], ic, EdgeDeploymentConfig(devices=["edge1"]), workspace=fleet.ws)
    status = svc.wait_for_deployment(timeout_sec=120)
    port = status.details["devices"][0]["port"]

    exported = _cli(fleet, "edge", "export", service, "-o", str(tmp_path / "manifest.json"))
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for schema, key in (("azure-iot-edgeagent-deployment-1.1.json", "$edgeAgent"),
                        ("azure-iot-edgehub-deployment-1.1.json", "$edgeHub")):
        jsonschema.validate({key: manifest["modulesContent"][key]}, json.loads((SCHEMAS / schema).read_text()))
    module = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"][service]
    assert module["settings"]["image"] == svc.image

    bundled = _cli(fleet, "edge", "bundle", service, "-o", str(tmp_path / "bundle.tar"))
    assert bundled.returncode == 0, bundled.stderr
    folder = tmp_path / "unpacked"
    with tarfile.open(tmp_path / "bundle.tar") as tar:
        assert sorted(tar.getnames()) == ["image.tar", "install.sh", "manifest.json"]
        tar.extractall(folder, filter="data")

    # edge2 has never seen this service: install.sh with plain docker, pointed at edge2 over TLS
    edge2 = next(d for d in device_lines if d["name"] == "edge2")
    env = {**os.environ, "DOCKER_HOST": edge2["url"], "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": str(Path(edge2["tls-ca"]).parent)}
    installed = subprocess.run(["sh", str(folder / "install.sh")], env=env, capture_output=True, text=True,
                               timeout=300, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "running and healthy" in installed.stdout
    assert fleet.containers("edge2", service) == {"1": "running"}

    host1, host2 = (d["url"].split("://")[1].split(":")[0] for d in device_lines[:2])
    body = {"data": [1, 2]}
    via_target = httpx.post(f"http://{host1}:{port}/score", json=body, timeout=10, trust_env=False).json()
    via_bundle = httpx.post(f"http://{host2}:{port}/score", json=body, timeout=10, trust_env=False).json()
    assert via_bundle == via_target == [3.0, 6.0]
