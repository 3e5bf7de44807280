"""Issue 11 item 4, the real attack: a deployment's init() running as root appends to its model file.

Before: bundles hard-linked the read-only blobs, so the append changed the registry in place (`model show`
kept the old digest, `model download` returned other bytes). Now the bundle's model file is its own copy.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbdeploy
from nbdeploy.builders.bundle import create_bundle
from nbdeploy.registry.blobs import BlobStore, file_sha256
from nbdeploy.registry.verify import verify

from .conftest import write_script

APPENDING = """
import os

def init():
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.bin")
    os.chmod(path, 0o644)  # root can, whatever the mode
    with open(path, "ab") as fh:
        fh.write(b"written by the deployment")

def run(raw_data):
    return os.path.getsize(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.bin"))
"""


def test_root_init_appending_to_its_model_file_leaves_the_registry_intact(tmp_path: Path, workspace) -> None:
    assert os.geteuid() == 0, "the attack needs root: a root init() can write a 0444 file"
    pristine = os.urandom(1 << 20)
    (tmp_path / "weights.bin").write_bytes(pristine)
    model = nbdeploy.Model.register(tmp_path / "weights.bin", "weights", workspace=workspace)
    blob = BlobStore(workspace).path(model.file_entries()[0].digest)
    script = write_script(tmp_path, APPENDING)
    svc = nbdeploy.deploy("appender", [model], nbdeploy.InferenceConfig(str(script)), workspace=workspace)
    svc.wait_for_deployment()
    assert svc.run("{}") == len(pristine) + len(b"written by the deployment")  # the append happened

    assert blob.read_bytes() == pristine and "sha256:" + file_sha256(blob) == model.digest
    out = Path(nbdeploy.Model.get("weights", workspace=workspace).download(tmp_path / "out"))
    assert out.read_bytes() == pristine
    assert verify(workspace).problems == []

    # the changed bundle is not reused: the next deploy of the same inputs gets pristine model files
    again = create_bundle(workspace, [model], nbdeploy.InferenceConfig(str(script)))
    assert (Path(again.path) / again.model_dir / "weights.bin").read_bytes() == pristine
