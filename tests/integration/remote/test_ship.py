"""Shipping images from the local engine to the real TLS engine (aci.sh), sending only missing layers."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from nbdeploy.remote import ImageNotFound, ship_image

from .conftest import BASE_IMAGE

pytestmark = pytest.mark.remote

MB = 1_000_000


def _layers(client: Any, image: str) -> list[str]:
    return client.api.inspect_image(image)["RootFS"]["Layers"]


def test_only_the_new_top_layer_is_shipped(local_client: Any, remote_client: Any, images: Any,
                                           tmp_path: Path) -> None:
    # two layers of fresh random bytes: the remote cannot have them
    first = images.build("FROM scratch\nCOPY a /a\nCOPY b /b\n",
                         {"a": os.urandom(2 * MB), "b": os.urandom(1 * MB)}, tmp_path)
    reports: list[tuple[int, int]] = []
    shipped = ship_image(local_client, remote_client, first, progress=lambda s, t: reports.append((s, t)))
    assert (shipped.layers, shipped.layers_sent, shipped.already_present) == (2, 2, False)
    assert 3 * MB <= shipped.bytes_sent < 3 * MB + 100_000
    assert reports and reports[-1] == (shipped.bytes_sent, shipped.bytes_sent)
    assert _layers(remote_client, first) == _layers(local_client, first)
    assert remote_client.images.get(first).id == local_client.images.get(first).id

    model_size = 3 * MB
    second = images.build(f"FROM {first}\nCOPY model /model\n", {"model": os.urandom(model_size)}, tmp_path)
    update = ship_image(local_client, remote_client, second)
    assert (update.layers, update.layers_sent) == (3, 1)
    assert model_size <= update.bytes_sent < model_size + MB
    assert update.layer_bytes_skipped >= 3 * MB
    assert _layers(remote_client, second) == _layers(local_client, second)


def test_shipping_an_image_already_there_sends_nothing_and_tags_it(local_client: Any, remote_client: Any,
                                                                   images: Any, tmp_path: Path) -> None:
    tag = images.build("FROM scratch\nCOPY a /a\n", {"a": os.urandom(100_000)}, tmp_path)
    ship_image(local_client, remote_client, tag)
    remote_client.images.remove(tag)  # untag: the image stays only if another tag holds it; here it goes
    again = ship_image(local_client, remote_client, tag)
    assert again.layers_sent == 1  # it was really gone
    alias = tag + "-alias"
    local_client.images.get(tag).tag(alias)
    third = ship_image(local_client, remote_client, alias)
    assert third.already_present and third.bytes_sent == 0
    assert remote_client.images.get(alias).id == local_client.images.get(tag).id


def test_model_only_update_of_a_runnable_python_image(local_client: Any, remote_client: Any, images: Any,
                                                      tmp_path: Path) -> None:
    """Base image shipped once (if the remote lacks it), then a model-only update ships only the model layer,
    and the remote engine runs the result."""
    base = ship_image(local_client, remote_client, BASE_IMAGE)
    assert base.already_present or base.layers_sent >= 1
    dockerfile = f"FROM {BASE_IMAGE}\nCOPY score.py /app/score.py\nCOPY model.bin /app/model.bin\n"
    # unique per test: the builder's cache must offer exactly one score.py layer (v1's) for v2 to reuse
    score = f"# {uuid.uuid4()}\nimport os\nprint(os.path.getsize('/app/model.bin'))\n".encode()
    v1 = images.build(dockerfile, {"score.py": score, "model.bin": os.urandom(2 * MB)}, tmp_path)
    first = ship_image(local_client, remote_client, v1)
    assert first.layers_sent == 2, first  # score.py and model layers; the base travelled at most once

    model_size = 4 * MB
    v2 = images.build(dockerfile, {"score.py": score, "model.bin": os.urandom(model_size)}, tmp_path)
    update = ship_image(local_client, remote_client, v2)
    assert update.layers_sent == 1, update
    assert update.bytes_sent < model_size + MB, update
    out = remote_client.containers.run(v2, ["python3", "/app/score.py"], remove=True)
    assert out.decode().strip() == str(model_size)


def test_missing_local_image(local_client: Any, remote_client: Any) -> None:
    with pytest.raises(ImageNotFound, match="No local image named 'nbdeploy-remote-test/none:0'"):
        ship_image(local_client, remote_client, "nbdeploy-remote-test/none:0")


def _load_foreign_image(client: Any, tag: str, arch: str) -> str:
    """Load (on the local engine) a one-layer image whose config says ``arch``: a real image for another platform."""
    import hashlib
    import io
    import json
    import tarfile

    def tar_of(files: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    layer = tar_of({"hello": os.urandom(1000)})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": arch, "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["l1/layer.tar"]}]).encode()
    client.images.load(tar_of({config_name: config, "l1/layer.tar": layer, "manifest.json": manifest}))
    return tag


def test_an_image_for_another_architecture_is_refused_before_sending(local_client: Any, remote_client: Any,
                                                                     images: Any) -> None:
    from nbdeploy.remote import PlatformMismatch

    remote_arch = remote_client.version()["Arch"]
    other = "arm64" if remote_arch != "arm64" else "amd64"
    tag = _load_foreign_image(local_client, f"{images.repository}:foreign", other)
    assert local_client.api.inspect_image(tag)["Architecture"] == other
    expected = f"built for linux/{other} but the remote engine runs linux/{remote_arch}"
    with pytest.raises(PlatformMismatch, match=expected):
        ship_image(local_client, remote_client, tag)
    assert not remote_client.images.list(name=tag)


def test_a_layer_gone_from_the_remote_meanwhile_means_one_full_resend(
        local_client: Any, remote_client: Any, images: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The remote's layers are read before sending; if one is removed before the load, the load fails on the
    real engine (its file is not in the archive) and ship_image sends every layer once."""
    from nbdeploy.remote import ship as ship_module

    tag = images.build("FROM scratch\nCOPY a /a\nCOPY b /b\n", {"a": os.urandom(300_000), "b": os.urandom(200_000)},
                       tmp_path)
    local_layers = _layers(local_client, tag)
    stale = set(ship_module.chain_ids(local_layers[:1]))  # "the remote has layer a" - it does not (any more)
    monkeypatch.setattr(ship_module, "remote_chain_ids", lambda client: stale)
    with caplog.at_level("WARNING", logger="nbdeploy.remote.ship"):
        result = ship_image(local_client, remote_client, tag)
    assert "sending all layers" in caplog.text
    # both attempts count: the refused one (layer b) and the full one (a and b)
    assert result.layers_sent == 2 and result.bytes_sent >= 700_000
    assert _layers(remote_client, tag) == local_layers


def test_shipping_to_a_fleet_reads_the_image_once_and_an_offline_device_does_not_stop_the_others(
        local_client: Any, devices: list[dict[str, str]], images: Any, tmp_path: Path) -> None:
    from nbdeploy.errors import EngineUnavailable
    from nbdeploy.remote import EngineConnection, ship_image_to_many

    from .conftest import engine_script

    clients = {}
    for d in devices[:3]:
        conn = EngineConnection(d["url"], tls_ca=d["tls-ca"], tls_cert=d["tls-cert"], tls_key=d["tls-key"],
                                name=d["name"])
        clients[d["name"]] = conn.client(timeout=3)
    first = images.build("FROM scratch\nCOPY a /a\n", {"a": os.urandom(1 * MB)}, tmp_path)
    names = list(clients)
    # one device already has the first layer, the others have nothing of it
    ship_image(local_client, clients[names[0]], first)
    second = images.build(f"FROM {first}\nCOPY model /model\n", {"model": os.urandom(2 * MB)}, tmp_path)

    offline = names[-1] if len(names) > 2 else None
    if offline:
        engine_script("edge.sh", "offline", offline)
    saves = []
    real_get_image = local_client.api.get_image
    try:
        local_client.api.get_image = lambda *a, **k: saves.append(a) or real_get_image(*a, **k)
        reports: dict[str, tuple[int, int]] = {}
        outcome = ship_image_to_many(local_client, clients, second,
                                     progress=lambda name, s, t: reports.__setitem__(name, (s, t)))
    finally:
        local_client.api.get_image = real_get_image
        if offline:
            engine_script("edge.sh", "online", offline)
        for client in clients.values():
            for tag in (first, second):
                try:
                    client.images.remove(tag, force=True)
                except Exception:  # noqa: BLE001 - not there
                    pass

    assert len(saves) == 1  # the local image was read once for the whole fleet
    had_first, had_nothing = outcome[names[0]], outcome[names[1]]
    assert not isinstance(had_first, Exception) and not isinstance(had_nothing, Exception)
    assert had_first.layers_sent == 1 and 2 * MB <= had_first.bytes_sent < 3 * MB
    assert had_nothing.layers_sent == 2 and 3 * MB <= had_nothing.bytes_sent < 3 * MB + 100_000
    assert reports[names[0]] == (had_first.bytes_sent, had_first.bytes_sent)
    if offline:
        assert isinstance(outcome[offline], EngineUnavailable)
        assert "\n" not in str(outcome[offline])
