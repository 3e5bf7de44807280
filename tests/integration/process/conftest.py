"""Fixtures for the process target: a scratch workspace, a registered scikit-learn model, entry scripts."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import nbdeploy
from nbdeploy.service import Webservice

SCORE = textwrap.dedent(
    """
    import json, os
    import joblib

    def init():
        global model
        model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))

    def run(raw_data):
        return model.predict(json.loads(raw_data)["data"]).tolist()
    """
)


@pytest.fixture(scope="session")
def diabetes() -> tuple[list[list[float]], list[float]]:
    X, y = load_diabetes(return_X_y=True)
    return X[:5].tolist(), y[:5].tolist()


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[nbdeploy.Workspace]:
    ws = nbdeploy.Workspace.create(tmp_path / "ws")
    yield ws
    for svc in Webservice.list(ws):  # never leave a server running
        svc.delete()


@pytest.fixture
def model(tmp_path: Path, workspace: nbdeploy.Workspace) -> nbdeploy.Model:
    X, y = load_diabetes(return_X_y=True)
    joblib.dump(Ridge().fit(X, y), tmp_path / "model.joblib")
    return nbdeploy.Model.register(tmp_path / "model.joblib", "diabetes", workspace=workspace)


def write_script(folder: Path, body: str = SCORE, name: str = "score.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture
def score_py(tmp_path: Path) -> Path:
    return write_script(tmp_path)
