"""Shared pieces of the Docker integration tests: the base image, the run's label, a tiny app."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

BASE_IMAGE = os.environ.get("NBDEPLOY_TEST_BASE_IMAGE", "nbdeploy/python-base:3.11-bookworm")
RUN_ID = uuid.uuid4().hex[:8]
TEST_LABEL = "nbdeploy.test-run"

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


def make_app(root: Path, weight: float = 2.0, init_extra: str = "pass", score: str | None = None) -> Path:
    """An app root as a bundle lays it out: score.py + azureml-models/m/1/model.json."""
    (root / "azureml-models" / "m" / "1").mkdir(parents=True, exist_ok=True)
    (root / "score.py").write_text(score or SCORE_PY.format(init_extra=init_extra))
    (root / "azureml-models" / "m" / "1" / "model.json").write_text(json.dumps({"w": weight}))
    return root


def make_bundle(root: Path, entry_script: str = "score.py", source_dir: str | None = None) -> Any:
    from nbdeploy.builders.bundle import Bundle

    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())).hexdigest()
    return Bundle(path=root, digest=digest, code_digest=digest, models_digest=digest, entry_script=entry_script,
                  model_dir="azureml-models/m/1", source_dir=source_dir, model_ids=("m:1",))


def make_environment(pip: tuple[str, ...] = ()) -> Any:
    from nbdeploy.specs import Environment

    env = Environment("test-env")
    env.docker.base_image = BASE_IMAGE
    for package in pip:
        env.python.conda_dependencies.add_pip_package(package)
    env.environment_variables = {"NBDEPLOY_TEST_VAR": "42"}
    return env
