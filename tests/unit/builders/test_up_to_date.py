"""Up to date is decided from digests already known: a 500 MB model is never read to decide it.

Bytes read are counted with /proc/self/io ``rchar`` (every byte passed through read(), page cache
included), around real calls on real files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import nbdeploy
from nbdeploy.builders import docker_builder as db
from nbdeploy.builders.bundle import create_bundle
from nbdeploy.builders.dockerfile import ImageSpec

MODEL_BYTES = 500 << 20
LOCK = "six==1.17.0 \\\n    --hash=sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274\n"


def bytes_read() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.fixture(scope="module")
def big_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    ws = nbdeploy.Workspace.create(root / "ws")
    model_file = root / "model.bin"
    with open(model_file, "wb") as f:
        f.truncate(MODEL_BYTES)  # sparse: no disk blocks, but every read() of it passes 500 MB
    model = nbdeploy.Model.register(model_file, "big", workspace=ws)
    (root / "score.py").write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    config = nbdeploy.InferenceConfig(str(root / "score.py"))
    return ws, model, config


def test_create_bundle_does_not_read_models(big_bundle):
    ws, model, config = big_bundle
    first = create_bundle(ws, [model], config)  # lays the model out (how is the registry's business)
    before = bytes_read()
    again = create_bundle(ws, [model], config)
    assert bytes_read() - before < MODEL_BYTES // 50  # digested from the registry's digests, laid out once
    assert again.digest == first.digest and again.path == first.path
    assert (first.path / first.model_dir / "model.bin").stat().st_size == MODEL_BYTES


def test_recipe_digest_reads_no_model_byte_and_covers_every_input(big_bundle):
    ws, model, config = big_bundle
    bundle = create_bundle(ws, [model], config)
    spec = ImageSpec(lock=LOCK, model_dir=bundle.model_dir)
    before = bytes_read()
    recorded = db.bundle_digest_of(bundle.path)
    digest = db.recipe_digest(spec, None, recorded, "sha256:base")
    assert bytes_read() - before < 1 << 20
    assert recorded == bundle.digest
    changed = [
        db.recipe_digest(ImageSpec(lock=LOCK + "x==1\n", model_dir=bundle.model_dir), None, recorded, "sha256:base"),
        db.recipe_digest(spec, None, "other-bundle", "sha256:base"),
        db.recipe_digest(spec, None, recorded, "sha256:other-base"),
        db.recipe_digest(ImageSpec(lock=LOCK, model_dir=bundle.model_dir, ca_bundle="PEM"), None, recorded, "sha256:base"),
        db.recipe_digest(ImageSpec(lock=LOCK, model_dir=bundle.model_dir, env={"A": "1"}), None, recorded, "sha256:base"),
        db.recipe_digest(spec, None, recorded, "sha256:base", deps_image="nbdeploy/deps:x"),
    ]
    assert len({digest, *changed}) == 1 + len(changed)
    assert db.recipe_digest(spec, None, recorded, "sha256:base") == digest


def test_a_folder_that_is_not_a_bundle_is_digested_by_content(tmp_path):
    (tmp_path / "azureml-models" / "m" / "1").mkdir(parents=True)
    (tmp_path / "score.py").write_text("x")
    (tmp_path / "azureml-models" / "m" / "1" / "w.json").write_text("1")
    assert db.bundle_digest_of(tmp_path) is None
    first = db.app_files_digest(tmp_path)
    (tmp_path / "azureml-models" / "m" / "1" / "w.json").write_text("2")
    assert db.app_files_digest(tmp_path) != first
