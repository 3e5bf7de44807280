"""Fixtures for the ``aci`` target's tests: the TLS engine of ``tests/engines/aci.sh up`` (its own network
namespace, 10.231.1.2:2376) and the local engine of ``tests/engines/docker.sh up`` (images are built there).

Under CI (``CI=true``) a missing engine fails the tests; elsewhere they are skipped. Teardown removes every
service a test deployed and checks that neither engine keeps a container or an image of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbdeploy
from nbdeploy.service import Webservice

ROOT = Path(__file__).resolve().parents[3]
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
        pytest.fail(reason + " (CI=true: the aci tests must run, never skip)")
    pytest.skip(reason)


def engine_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / "tests" / "engines" / "aci.sh"), *args], capture_output=True,
                          text=True, timeout=180)


def parse_env_line(line: str) -> dict[str, str]:
    words = line.split()
    assert words and words[0] == "export", line
    return dict(w.split("=", 1) for w in words[1:])


@pytest.fixture(scope="session")
def aci_env() -> dict[str, str]:
    result = engine_script("env")
    if result.returncode != 0:
        unavailable("the aci engine is not running: bash tests/engines/aci.sh up")
    return parse_env_line(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def engine_files(aci_env: dict[str, str]) -> dict[str, str]:
    """The engine's URL and TLS files, as AciDeploymentConfig fields."""
    cert = Path(aci_env["DOCKER_CERT_PATH"])
    return {"engine_url": aci_env["DOCKER_HOST"], "tls_ca": str(cert / "ca.pem"), "tls_cert": str(cert / "cert.pem"),
            "tls_key": str(cert / "key.pem")}


@pytest.fixture(scope="session")
def remote(aci_env: dict[str, str]) -> Any:
    from nbdeploy.remote import EngineConnection

    return EngineConnection.from_env(aci_env, name="aci").client()


@pytest.fixture(scope="session")
def local() -> Any:
    from nbdeploy.builders.docker_builder import docker_client
    from nbdeploy.errors import EngineUnavailable

    try:
        client = docker_client(base_url="unix:///var/run/docker.sock")
        client.images.get(BASE_IMAGE)
    except EngineUnavailable as exc:
        unavailable(str(exc))
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound
        unavailable(f"base image {BASE_IMAGE} missing: bash tests/engines/docker.sh up")
    return client


class Services:
    """Service names for this run; teardown deletes them and checks both engines are clean."""

    def __init__(self, workspace: nbdeploy.Workspace, local: Any, remote: Any) -> None:
        self.workspace, self.local, self.remote = workspace, local, remote
        self.names: list[str] = []

    def name(self) -> str:
        name = f"aci{RUN_ID}-{len(self.names)}"
        self.names.append(name)
        return name

    def leftovers(self, name: str) -> list[str]:
        """Containers and images of service ``name`` on either engine."""
        found = []
        for label, client in (("local", self.local), ("remote", self.remote)):
            found += [f"{label} container {c.name}" for c in
                      client.containers.list(all=True, filters={"label": f"nbdeploy.service={name}"})]
            found += [f"{label} image {t}" for i in client.images.list(name=f"nbdeploy/{name}") for t in i.tags]
        return found

    def cleanup(self) -> None:
        for svc in Webservice.list(self.workspace):
            try:
                svc.delete(delete_image=True)
            except Exception:  # noqa: BLE001 - the engine may be restarting; removed below
                pass
        for name in self.names:
            for client in (self.local, self.remote):
                for c in client.containers.list(all=True, filters={"label": f"nbdeploy.service={name}"}):
                    c.remove(force=True, v=True)
                for image in client.images.list(name=f"nbdeploy/{name}"):
                    try:
                        client.images.remove(image.id, force=True)
                    except Exception:  # noqa: BLE001 - already gone
                        pass


@pytest.fixture
def workspace(tmp_path: Path) -> nbdeploy.Workspace:
    return nbdeploy.Workspace.create(tmp_path / "ws")


@pytest.fixture
def services(workspace: nbdeploy.Workspace, local: Any, remote: Any) -> Iterator[Services]:
    res = Services(workspace, local, remote)
    yield res
    res.cleanup()


@pytest.fixture
def model(tmp_path: Path, workspace: nbdeploy.Workspace) -> nbdeploy.Model:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.json").write_text(json.dumps({"w": 3}))
    return nbdeploy.Model.register(tmp_path / "m" / "model.json", "m", workspace=workspace)


def environment() -> Any:
    from nbdeploy.specs import Environment

    env = Environment("aci-test-env")
    env.docker.base_image = BASE_IMAGE
    return env


def inference(tmp_path: Path, text: str, name: str = "score.py") -> nbdeploy.InferenceConfig:
    (tmp_path / name).write_text(text)
    return nbdeploy.InferenceConfig(str(tmp_path / name), environment=environment())
