"""v1's ``Model.package`` and the pre-1.0 ``Image.create`` build real images on the Docker engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .docker_testapp import BASE_IMAGE, RUN_ID

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SCORE = """\
import json, os

def init():
    global weight
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.json")) as f:
        weight = json.load(f)["w"]

def run(raw_data):
    return [weight * x for x in json.loads(raw_data)["data"]]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resources: Any) -> Any:
    from nbdeploy.compat.azureml.core import Model, Workspace

    monkeypatch.chdir(tmp_path)
    ws = Workspace.create(tmp_path / "ws")
    (tmp_path / "model.json").write_text(json.dumps({"w": 3.0}))
    (tmp_path / "score.py").write_text(SCORE)
    model = Model.register(ws, "model.json", "weights")
    return ws, model


def test_model_package_builds_the_image_and_reports_its_tag(project: Any, resources: Any) -> None:
    from nbdeploy.compat.azureml.core import Environment, Model
    from nbdeploy.compat.azureml.core.model import InferenceConfig

    ws, model = project
    env = Environment("pkg-env")
    env.docker.base_image = BASE_IMAGE
    name = resources.service()  # the image repository nbdeploy/<name> is removed in teardown
    package = Model.package(ws, [model], InferenceConfig(entry_script="score.py", environment=env), image_name=name,
                            image_label="v1")
    package.wait_for_creation(show_output=True)
    assert package.location == f"nbdeploy/{name}:v1" and package.state == "Succeeded"
    image = resources.client.images.get(package.location)
    assert image.labels["nbdeploy.models"] == "weights:1"
    assert "built nbdeploy/" in package.get_logs() or "up to date" in package.get_logs()


def test_image_create_builds_when_docker_answers(project: Any, resources: Any, tmp_path: Path) -> None:
    from nbdeploy.compat.azureml.core.image import ContainerImage, Image

    ws, model = project
    (tmp_path / "env.yml").write_text("name: e\ndependencies:\n  - python=3.11\n")
    config = ContainerImage.image_configuration(execution_script="score.py", runtime="python", conda_file="env.yml",
                                                base_image=BASE_IMAGE)
    name = resources.service()
    image = Image.create(ws, name, [model], config)
    image.wait_for_creation(show_output=False)
    assert image.creation_state == "Succeeded" and image.image_location == f"nbdeploy/{name}:1"
    assert resources.client.images.get(image.image_location).labels["nbdeploy.models"] == "weights:1"
    assert Image(ws, name=name).image_location == image.image_location and RUN_ID
