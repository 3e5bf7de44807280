"""Notebook tests: real kernels (papermill, jupyter_client), real scoring servers (process target)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCORE = textwrap.dedent("""
    import json, os, time
    import joblib

    def init():
        global model
        time.sleep(float(os.environ.get("SLOW_INIT", "0")))
        model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))

    def run(raw_data):
        return model.predict(json.loads(raw_data)["data"]).tolist()
""")
SLOW_SCORE = SCORE.replace('float(os.environ.get("SLOW_INIT", "0"))', "4")


def require(module: str) -> None:
    """Import ``module`` or skip; in CI (CI=true) a missing dependency is a failure, never a skip."""
    try:
        __import__(module)
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{module} is not installed (pip install {module})")


@pytest.fixture
def ip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython

    from nbdeploy.notebook._session import Session

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBDEPLOY_WIDGETS", "0")
    shell = get_ipython() or start_ipython()
    shell.run_line_magic("load_ext", "nbdeploy")
    shell.magics_manager.registry["NbdeployMagics"].session = Session()
    shell.run_line_magic("nbdeploy_workspace", str(tmp_path / "ws"))
    yield shell
    from nbdeploy.service import Webservice

    for svc in Webservice.list(tmp_path / "ws"):
        svc.delete()
    os.environ.pop("NBDEPLOY_WORKSPACE", None)


@pytest.fixture
def diabetes_model(ip, tmp_path: Path):
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True)
    joblib.dump(Ridge().fit(X, y), tmp_path / "model.joblib")
    ip.run_line_magic("register_model", f"{tmp_path / 'model.joblib'} --name diabetes")
    ip.user_ns["payload"] = {"data": X[:2].tolist()}
    return X
