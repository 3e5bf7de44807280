"""The test engines themselves: a device engine runs our base image, serves on its own address, and
comes back with its containers after a restart."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from nbdeploy.remote import EngineConnection, ship_image

from .conftest import BASE_IMAGE, RUN_ID, engine_script

pytestmark = pytest.mark.remote

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str, deadline_s: float) -> str:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with _NO_PROXY.open(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


@pytest.fixture
def device(devices: list[dict[str, str]]) -> Iterator[tuple[dict[str, str], Any]]:
    d = devices[0]
    conn = EngineConnection(d["url"], tls_ca=d["tls-ca"], tls_cert=d["tls-cert"], tls_key=d["tls-key"], name=d["name"])
    client = conn.client()
    yield d, client
    for c in client.containers.list(all=True, filters={"label": f"nbdeploy.test-run={RUN_ID}"}):
        c.remove(force=True)
    client.close()


def test_a_device_runs_the_base_image_serves_on_its_address_and_survives_a_restart(
        local_client: Any, device: tuple[dict[str, str], Any]) -> None:
    d, client = device
    ship_image(local_client, client, BASE_IMAGE)
    client.containers.run(
        BASE_IMAGE, ["python3", "-m", "http.server", "8080", "--directory", "/etc"], detach=True,
        ports={"8080/tcp": 18080}, restart_policy={"Name": "always"}, name=f"t{RUN_ID}-web",
        labels={"nbdeploy.test-run": RUN_ID})
    host = d["url"].removeprefix("tcp://").rsplit(":", 1)[0]
    assert "os-release" in _get(f"http://{host}:18080/", deadline_s=15)

    result = engine_script("edge.sh", "restart", d["name"])
    assert result.stdout.strip().startswith(f"nbdeploy device add {d['name']} --url {d['url']}")
    assert "stopping dockerd" in result.stderr
    assert "os-release" in _get(f"http://{host}:18080/", deadline_s=30)  # the restart policy brought it back
