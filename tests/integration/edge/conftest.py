"""Fixtures for the edge target against real device engines (``bash tests/engines/edge.sh up 3``).

The devices are registered in a fresh workspace per test from the lines ``edge.sh list`` prints. Under CI
(``CI=true``) missing devices or a missing local engine fail the tests; elsewhere they are skipped. Each
test's containers on the devices carry its service name and are removed in teardown.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
EDGE = ROOT / "tests" / "engines" / "edge.sh"
BASE_IMAGE = os.environ.get("NBDEPLOY_TEST_BASE_IMAGE", "nbdeploy/python-base:3.11-bookworm")
RUN_ID = uuid.uuid4().hex[:6]

SCORE_PY = """\
import json, os

def init():
    global weight
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.json")) as f:
        weight = json.load(f)["w"]
    {init_extra}

def run(raw_data):
    return [weight * x for x in json.loads(raw_data)["data"]]
"""


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: edge tests must run, never skip)")
    pytest.skip(reason)


def edge(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(EDGE), *args], capture_output=True, text=True, check=check, timeout=120)


def parse_device_line(line: str) -> dict[str, str]:
    words = line.split()
    assert words[:3] == ["nbdeploy", "device", "add"], line
    out = {"name": words[3]}
    out.update({k[2:]: v for k, v in zip(words[4::2], words[5::2])})
    return out


@pytest.fixture(scope="session")
def device_lines() -> list[dict[str, str]]:
    result = edge("list", check=False)
    found = [parse_device_line(l) for l in result.stdout.splitlines() if l.startswith("nbdeploy device add")]
    if result.returncode != 0 or len(found) < 3:
        unavailable("fewer than 3 edge devices: bash tests/engines/edge.sh up 3")
    for d in found[:3]:  # a previous test run may have left one offline
        edge("online", d["name"])
    return found[:3]


@pytest.fixture(scope="session")
def local_engine() -> Any:
    from nbdeploy.builders.docker_builder import docker_client
    from nbdeploy.errors import EngineUnavailable

    try:
        client = docker_client()
        client.images.get(BASE_IMAGE)
    except EngineUnavailable as exc:
        unavailable(str(exc))
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound
        unavailable(f"base image {BASE_IMAGE} missing: bash tests/engines/docker.sh up")
    return client


@pytest.fixture
def fleet(tmp_path: Path, device_lines: list[dict[str, str]], local_engine: Any) -> Iterator[Fleet]:
    from nbdeploy.remote import EngineConnection
    from nbdeploy.remote.store import EngineStore
    from nbdeploy.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws")
    store = EngineStore("device", ws)
    for d in device_lines:
        store.add(d["name"], EngineConnection(d["url"], tls_ca=d["tls-ca"], tls_cert=d["tls-cert"],
                                              tls_key=d["tls-key"]), tags={"site": "plant-3"})
    fleet = Fleet(ws, [d["name"] for d in device_lines], tmp_path, local_engine)
    yield fleet
    fleet.cleanup()


class Fleet:
    """A workspace with the three devices saved, and helpers to make apps and clean up."""

    def __init__(self, ws: Any, names: list[str], tmp: Path, local: Any) -> None:
        self.ws, self.names, self.tmp, self.local = ws, names, tmp, local
        self.services: list[str] = []

    def service_name(self) -> str:
        name = f"e{RUN_ID}-{len(self.services)}"
        self.services.append(name)
        return name

    def app(self, weight: float = 2.0, init_extra: str = "pass", name: str = "app") -> Any:
        """An InferenceConfig for the tiny scoring script, and its registered model."""
        import json

        from nbdeploy.registry import Model
        from nbdeploy.specs import Environment, InferenceConfig

        root = self.tmp / name
        root.mkdir(exist_ok=True)
        (root / "score.py").write_text(SCORE_PY.format(init_extra=init_extra))
        model_file = root / "model.json"
        model_file.write_text(json.dumps({"w": weight}))
        model = Model.register(workspace=self.ws, model_path=str(model_file), model_name=f"m{RUN_ID}")
        env = Environment("edge-test-env")
        env.docker.base_image = BASE_IMAGE
        return InferenceConfig(entry_script=str(root / "score.py"), environment=env), model

    def client(self, name: str) -> Any:
        from nbdeploy.remote.store import EngineStore

        return EngineStore("device", self.ws).get(name).connection.client(timeout=10)

    def containers(self, name: str, service: str) -> dict[str, str]:
        """revision -> container status of ``service`` on device ``name``."""
        client = self.client(name)
        try:
            found = client.containers.list(all=True, filters={"label": f"nbdeploy.service={service}"})
            return {c.labels["nbdeploy.revision"]: c.status for c in found}
        finally:
            client.close()

    def cleanup(self) -> None:
        for name in self.names:
            edge("online", name, check=False)
            try:
                client = self.client(name)
            except Exception:  # noqa: BLE001
                continue
            for service in self.services:
                for c in client.containers.list(all=True, filters={"label": f"nbdeploy.service={service}"}):
                    c.remove(force=True)
                for image in client.images.list(name=f"nbdeploy/{service}"):
                    try:
                        client.images.remove(image.id, force=True)
                    except Exception:  # noqa: BLE001 - shared layers
                        pass
            client.close()
        for service in self.services:
            for image in self.local.images.list(name=f"nbdeploy/{service}"):
                try:
                    self.local.images.remove(image.id, force=True)
                except Exception:  # noqa: BLE001
                    pass
