"""Fixtures for tests against real remote Docker engines reached over TCP+TLS.

The engines are started by ``tests/engines/aci.sh up`` (one container host) and ``tests/engines/edge.sh up``
(devices edge1..edgeN), each in its own network namespace; the local engine by ``tests/engines/docker.sh up``.
Under CI (``CI=true``) a missing engine fails the tests; elsewhere they are skipped. Images a test makes are
tagged ``nbdeploy-remote-test/<run id>-<n>`` and removed from every engine in teardown; the shipped base
image stays on the remote engines (shipping it once is the point).
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
ENGINES = ROOT / "tests" / "engines"
BASE_IMAGE = os.environ.get("NBDEPLOY_TEST_BASE_IMAGE", "nbdeploy/python-base:3.11-bookworm")
RUN_ID = uuid.uuid4().hex[:8]
REPOSITORY = f"nbdeploy-remote-test/{RUN_ID}"


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: remote-engine tests must run, never skip)")
    pytest.skip(reason)


def engine_script(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ENGINES / args[0]), *args[1:]], capture_output=True, text=True, check=check,
                          timeout=120)


def parse_env_line(line: str) -> dict[str, str]:
    """``export A=1 B=2`` -> ``{"A": "1", "B": "2"}``."""
    words = line.split()
    assert words and words[0] == "export", line
    return dict(w.split("=", 1) for w in words[1:])


def parse_device_line(line: str) -> dict[str, str]:
    """``nbdeploy device add NAME --url U --tls-ca C ...`` -> ``{"name": NAME, "url": U, "tls-ca": C, ...}``."""
    words = line.split()
    assert words[:3] == ["nbdeploy", "device", "add"], line
    out = {"name": words[3]}
    out.update({k[2:]: v for k, v in zip(words[4::2], words[5::2])})
    return out


@pytest.fixture(scope="session")
def aci_env() -> dict[str, str]:
    result = engine_script("aci.sh", "env", check=False)
    if result.returncode != 0:
        unavailable("the aci engine is not running: bash tests/engines/aci.sh up")
    return parse_env_line(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def aci(aci_env: dict[str, str]) -> Any:
    from nbdeploy.remote import EngineConnection

    return EngineConnection.from_env(aci_env, name="aci")


@pytest.fixture(scope="session")
def devices() -> list[dict[str, str]]:
    """The edge devices edge.sh runs (at least two), as parsed ``device add`` lines."""
    result = engine_script("edge.sh", "list", check=False)
    found = [parse_device_line(line) for line in result.stdout.splitlines() if line.startswith("nbdeploy device add")]
    if result.returncode != 0 or len(found) < 2:
        unavailable("fewer than 2 edge devices: bash tests/engines/edge.sh up 3")
    return found


@pytest.fixture(scope="session")
def local_client() -> Any:
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


@pytest.fixture(scope="session")
def remote_client(aci: Any) -> Iterator[Any]:
    client = aci.client()
    yield client
    _remove_images(client)
    client.close()


@pytest.fixture(scope="session")
def images(local_client: Any) -> Iterator[Any]:
    """Builds test images on the local engine; removes them from the local engine at the end."""
    builder = ImageBuilder(local_client)
    yield builder
    _remove_images(local_client)


class ImageBuilder:
    """``build(dockerfile, files) -> tag`` on the local engine, tags ``nbdeploy-remote-test/<run>:<n>``."""

    repository = REPOSITORY

    def __init__(self, client: Any) -> None:
        self.client = client
        self.count = 0

    def build(self, dockerfile: str, files: dict[str, bytes], tmp_path: Path) -> str:
        self.count += 1
        context = tmp_path / f"context-{self.count}"
        context.mkdir()
        (context / "Dockerfile").write_text(dockerfile)
        for name, data in files.items():
            (context / name).write_bytes(data)
        tag = f"{REPOSITORY}:{self.count}"
        self.client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
        return tag


def _remove_images(client: Any) -> None:
    for image in client.images.list(name=REPOSITORY):
        try:
            client.images.remove(image.id, force=True)
        except Exception:  # noqa: BLE001 - already gone, or shared by another tag of ours
            pass


@pytest.fixture
def plain_http_engine() -> Iterator[str]:
    """The local Docker engine served over plain HTTP on a loopback TCP port (a TCP -> unix-socket relay):
    a real engine that speaks no TLS. Yields ``tcp://127.0.0.1:PORT``."""
    relay = _Relay("/var/run/docker.sock")
    try:
        yield f"tcp://127.0.0.1:{relay.port}"
    finally:
        relay.close()


class _Relay:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.socket_path)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.server.close()
