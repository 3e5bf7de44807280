"""The pre-1.0 image configuration mapped onto an InferenceConfig; Image records in the workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbdeploy.compat.azureml.core import Model, Workspace
from nbdeploy.compat.azureml.core.image import ContainerImage, Image
from nbdeploy.compat.azureml.exceptions import WebserviceException
from nbdeploy.errors import InvalidName, NotFound


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "score.py").write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    (tmp_path / "env.yml").write_text("name: e\ndependencies:\n  - python=3.11\n  - pip:\n    - joblib\n")
    return Workspace.create(tmp_path / "ws")


def test_script_and_conda_file_become_an_inference_config(ws: Workspace) -> None:
    config = ContainerImage.image_configuration(execution_script="score.py", runtime="python", conda_file="env.yml",
                                                base_image="python:3.11-slim", enable_gpu=False)
    ic = config.inference_config(ws)
    assert ic.source_directory is None and ic.entry_script_path.name == "score.py"
    assert ic.environment.pip_packages == ["joblib"] and ic.environment.docker.base_image == "python:3.11-slim"


def test_dependencies_ship_in_a_folder_of_their_own(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "util.py").write_text("X = 1\n")
    config = ContainerImage.image_configuration(execution_script="score.py", runtime="python",
                                                dependencies=["helpers/util.py"])
    ic = config.inference_config(ws)
    folder = Path(ic.source_directory)
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == ["helpers/util.py", "score.py"]
    assert folder.is_relative_to(ws.cache_dir)  # not the whole current folder (which holds the workspace)
    with pytest.raises(Exception, match="relative path below the current folder"):
        ContainerImage.image_configuration(execution_script="score.py", runtime="python",
                                           dependencies=["../elsewhere.py"]).inference_config(ws)


def test_runtime_is_checked() -> None:
    with pytest.raises(Exception, match="runtime 'java'"):
        ContainerImage.image_configuration(execution_script="score.py", runtime="java")


def test_image_create_records_versions_and_lookups(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"x")
    model = Model.register(ws, "m.bin", "m")
    config = ContainerImage.image_configuration(execution_script="score.py", runtime="python", conda_file="env.yml",
                                                tags={"k": "v"})
    first = Image.create(ws, "my-image", [model], config)
    second = ContainerImage.create(workspace=ws, name="my-image", models=[model], image_config=config)
    assert (first.version, second.version, first.creation_state, first.tags) == (1, 2, "NotStarted", {"k": "v"})
    assert Image(ws, name="my-image").version == 2 and Image(ws, id="my-image:1").version == 1
    assert [i.id for i in Image.list(ws, model_name="m")] == ["my-image:1", "my-image:2"]
    assert [m.id for m in first.models] == ["m:1"] and first.inference_config().environment.pip_packages == ["joblib"]
    with pytest.raises(WebserviceException) as info:
        Image(ws, name="nope")
    assert isinstance(info.value, NotFound)
    with pytest.raises(WebserviceException) as info:
        Image.create(ws, "../escape", [model], config)
    assert isinstance(info.value, InvalidName)
