"""``tests/engines/edge.sh offline|online`` really cuts and restores a device's network."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nbdeploy.errors import EngineUnavailable
from nbdeploy.remote import EngineConnection

from .conftest import engine_script

pytestmark = pytest.mark.remote


def _connection(device: dict[str, str]) -> EngineConnection:
    return EngineConnection(device["url"], tls_ca=device["tls-ca"], tls_cert=device["tls-cert"],
                            tls_key=device["tls-key"], name=device["name"])


@pytest.fixture
def offline_device(devices: list[dict[str, str]]) -> Iterator[dict[str, str]]:
    device = devices[-1]
    engine_script("edge.sh", "offline", device["name"])
    try:
        yield device
    finally:
        engine_script("edge.sh", "online", device["name"])


def test_offline_cuts_the_device_and_online_restores_it(devices: list[dict[str, str]],
                                                        offline_device: dict[str, str]) -> None:
    conn = _connection(offline_device)
    with pytest.raises(EngineUnavailable) as exc:
        conn.check(timeout=2)
    text = str(exc.value)
    assert "\n" not in text and f"'{offline_device['name']}'" in text and "timed out" in text

    # the packets vanish: a plain TCP connect gets no answer either (not a refusal)
    host, port = conn.address.rsplit(":", 1)
    with pytest.raises(socket.timeout):
        socket.create_connection((host, int(port)), timeout=1).close()

    # the other devices are untouched
    assert _connection(devices[0]).check(timeout=5).version

    # `list` still names the offline device (it exists; it is only cut off)
    assert offline_device["name"] in engine_script("edge.sh", "list").stdout

    engine_script("edge.sh", "online", offline_device["name"])
    assert conn.check(timeout=5).version
    engine_script("edge.sh", "online", offline_device["name"])  # idempotent
    assert conn.check(timeout=5).version


def test_offline_is_idempotent(offline_device: dict[str, str]) -> None:
    engine_script("edge.sh", "offline", offline_device["name"])
    engine_script("edge.sh", "online", offline_device["name"])
    # one `online` undoes any number of `offline`
    assert _connection(offline_device).check(timeout=5).version


def test_unknown_device_is_refused(devices: list[dict[str, str]]) -> None:
    result = engine_script("edge.sh", "offline", "nosuch", check=False)
    assert result.returncode != 0 and "no device 'nosuch'" in result.stderr


def test_each_device_has_its_own_ca(devices: list[dict[str, str]]) -> None:
    a, b = _connection(devices[0]), _connection(devices[1])
    with pytest.raises(EngineUnavailable, match="not signed by the CA"):
        dataclasses.replace(a, tls_ca=b.tls_ca).check(timeout=5)


def test_offline_also_cuts_published_container_ports(local_client: Any, devices: list[dict[str, str]]) -> None:
    """Traffic to a published port is DNAT'd to the container (FORWARD, not INPUT): offline must cut it too."""
    import urllib.request

    from nbdeploy.remote import ship_image

    from .conftest import BASE_IMAGE, RUN_ID

    device = devices[-1]
    client = _connection(device).client()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    host = device["url"].removeprefix("tcp://").rsplit(":", 1)[0]
    url = f"http://{host}:18081/"

    def served(timeout: float) -> bool:
        end = time.monotonic() + timeout
        while True:
            try:
                with opener.open(url, timeout=1) as response:
                    return response.status == 200
            except OSError:
                if time.monotonic() > end:
                    return False
                time.sleep(0.2)

    ship_image(local_client, client, BASE_IMAGE)
    container = client.containers.run(BASE_IMAGE, ["python3", "-m", "http.server", "8080"], detach=True,
                                      ports={"8080/tcp": 18081}, labels={"nbdeploy.test-run": RUN_ID})
    try:
        assert served(15)
        engine_script("edge.sh", "offline", device["name"])
        try:
            assert not served(2)
        finally:
            engine_script("edge.sh", "online", device["name"])
        assert served(10)
    finally:
        container.remove(force=True)
        client.close()
