"""A device whose engine runs another architecture than the image is refused before anything is shipped."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from nbdeploy.builders.base import Artifact
from nbdeploy.builders.bundle import Bundle
from nbdeploy.remote.ship import PlatformMismatch
from nbdeploy.targets.base import RevisionSpec
from nbdeploy.targets.edge import EdgeDeploymentConfig, EdgeTarget

from .conftest import RUN_ID

pytestmark = pytest.mark.remote


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _load_foreign_image(local, tag: str) -> str:
    """A one-layer image whose config says linux/arm64, loaded into the local engine (no emulation needed)."""
    layer = _tar({"hello.txt": b"built for another machine\n"})
    config = json.dumps({"architecture": "arm64", "os": "linux", "config": {"Cmd": ["/hello"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}},
                        separators=(",", ":")).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["l1/layer.tar"]}]).encode()
    local.images.load(_tar({config_name: config, "l1/layer.tar": layer, "manifest.json": manifest}))
    return local.images.get(tag).id


def test_foreign_architecture_is_refused_before_shipping(fleet) -> None:
    tag = f"nbdeploy-edge-test/{RUN_ID}-arm64:1"
    image_id = _load_foreign_image(fleet.local, tag)
    try:
        assert fleet.local.images.get(tag).attrs["Architecture"] == "arm64"
        bundle = Bundle(Path("/nonexistent"), "0" * 64, "0" * 64, "0" * 64, "score.py", "azureml-models", None, ())
        spec = RevisionSpec("foreign", 1, bundle, EdgeDeploymentConfig(devices=["edge1", "edge2"]),
                            artifact=Artifact("docker-image", tag, "0" * 64, image_id))
        with pytest.raises(PlatformMismatch) as refused:
            EdgeTarget(fleet.ws).start(spec)
        text = str(refused.value)
        assert "\n" not in text
        assert "built for linux/arm64 but edge1 runs linux/amd64, edge2 runs linux/amd64; nothing was shipped" in text
        for name in ("edge1", "edge2"):
            client = fleet.client(name)
            try:
                assert not client.images.list(name=tag.split(":")[0])
            finally:
                client.close()
    finally:
        fleet.local.images.remove(image_id, force=True)
