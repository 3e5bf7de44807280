"""Fixtures for batch tests: a scratch workspace with the sklearn fixture model, v1-style batch scripts, inputs."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import joblib
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import nbdeploy
from nbdeploy.service import Webservice

REPO = Path(__file__).resolve().parents[3]

# A v1 tabular script (the shape of Azure ML's iris/diabetes ParallelRunStep examples).
TABULAR = """
import os, time
import joblib
from azureml_user.parallel_run import EntryScript

def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))
    EntryScript().logger.info("init() done in pid %d", os.getpid())

def run(mini_batch):
    delay = float(os.environ.get("BATCH_TEST_DELAY", "0"))
    if delay:
        time.sleep(delay)
    bad = os.environ.get("BATCH_TEST_BAD_ID")
    if bad is not None and (mini_batch["id"] == int(bad)).any():
        raise ValueError(f"cannot score row id {bad}")
    result = mini_batch[["id"]].copy()
    result["prediction"] = model.predict(mini_batch.drop(columns=["id"]))
    return result
"""

# A v1 file script: one result string per file; files whose name contains "skip" get no result.
FILES = """
import os
import joblib
import numpy as np
from azureml.core.model import Model

def init():
    global model
    model = joblib.load(Model.get_model_path("diabetes"))

def run(mini_batch):
    results = []
    for path in mini_batch:
        if "skip" in os.path.basename(path):
            continue
        row = np.loadtxt(path, delimiter=",").reshape(1, -1)
        results.append(f"{os.path.basename(path)}:{model.predict(row)[0]:.6f}")
    return results
"""

SERVICE = """
import json, os
import joblib

def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))

def run(raw_data):
    return model.predict(json.loads(raw_data)["data"]).tolist()
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[nbdeploy.Workspace]:
    ws = nbdeploy.Workspace.create(tmp_path / "ws")
    yield ws
    for svc in Webservice.list(ws):
        svc.delete()


@pytest.fixture
def model(tmp_path: Path, workspace: nbdeploy.Workspace) -> nbdeploy.Model:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    joblib.dump(Ridge().fit(X, y), tmp_path / "model.joblib")
    return nbdeploy.Model.register(tmp_path / "model.joblib", "diabetes", workspace=workspace)


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def diabetes_rows(n: int, with_id: bool = True) -> pd.DataFrame:
    X, _ = load_diabetes(return_X_y=True, as_frame=True)
    frame = X.sample(n, replace=True, random_state=0).reset_index(drop=True)
    if with_id:
        frame.insert(0, "id", range(n))
    return frame


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    diabetes_rows(3000).to_csv(path, index=False)
    return path


def cli(*args: str, **kwargs: object) -> list[str]:
    """argv of the nbdeploy CLI in a subprocess (with this checkout importable)."""
    return [sys.executable, "-m", "nbdeploy", *args]


def cli_env(workspace: nbdeploy.Workspace, **extra: str) -> dict[str, str]:
    env = {**os.environ, "NBDEPLOY_WORKSPACE": str(workspace.path), **extra}
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
