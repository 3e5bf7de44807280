"""nbdeploy.batch.score against a real process-target service deployed with the Python API."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nbdeploy
from nbdeploy.batch import BatchFailed, run, score

from .conftest import SERVICE, TABULAR, diabetes_rows, write

pytestmark = pytest.mark.slow

FLAKY = SERVICE + """
import hashlib, pathlib
CALLS = pathlib.Path(os.environ["FLAKY_DIR"])

def run(raw_data):
    mark = CALLS / hashlib.sha256(raw_data.encode() if isinstance(raw_data, str) else raw_data).hexdigest()[:16]
    first = not mark.exists()
    mark.write_text(str(int(mark.read_text() or 0) + 1) if mark.exists() else "1")
    if first and len(list(CALLS.iterdir())) % 3 == 1:
        raise RuntimeError("transient failure")  # -> HTTP 500, retried by the client
    return model.predict(json.loads(raw_data)["data"]).tolist()
"""


def _deploy(tmp_path, workspace, model, body: str, name: str, env: dict[str, str] | None = None) -> nbdeploy.Webservice:
    environment = nbdeploy.Environment("batch-svc")
    environment.environment_variables = dict(env or {})
    ic = nbdeploy.InferenceConfig(write(tmp_path, f"{name}.py", body), environment=environment)
    svc = nbdeploy.deploy(name, [model], ic, nbdeploy.ProcessDeploymentConfig(workers=2), workspace=workspace)
    svc.wait_for_deployment(timeout_sec=120)
    return svc


def test_score_through_a_service_matches_local_batch(tmp_path, workspace, model):
    frame = diabetes_rows(2000)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    frame.drop(columns=["id"]).to_csv(tmp_path / "features.csv", index=False)
    svc = _deploy(tmp_path, workspace, model, SERVICE, "batch-svc")
    result = score(svc.name, tmp_path / "features.csv", tmp_path / "out", workspace=workspace, mini_batch_size=150, concurrency=3)
    assert (result.state, result.succeeded, result.mini_batches) == ("Succeeded", 2000, 14)
    remote = np.loadtxt(result.output_file)
    local = run(write(tmp_path, "score_rows.py", TABULAR), tmp_path / "rows.csv", tmp_path / "local", models=[model],
                workspace=workspace, mini_batch_size=500, processes=1)
    expected = pd.read_csv(local.output_file, delimiter=" ", header=None)[1].to_numpy()
    np.testing.assert_allclose(remote, expected, rtol=1e-12)
    again = score(svc.name, tmp_path / "features.csv", tmp_path / "out", workspace=workspace, mini_batch_size=150)
    assert again.resumed == 14 and again.output_file.read_bytes() == result.output_file.read_bytes()


def test_5xx_answers_are_retried_with_backoff(tmp_path, workspace, model):
    diabetes_rows(900, with_id=False).to_csv(tmp_path / "features.csv", index=False)
    calls = tmp_path / "calls"
    calls.mkdir()
    svc = _deploy(tmp_path, workspace, model, FLAKY, "flaky-svc", {"FLAKY_DIR": str(calls)})
    result = score(svc.name, tmp_path / "features.csv", tmp_path / "out", workspace=workspace, mini_batch_size=100, concurrency=2)
    assert (result.state, result.succeeded, result.failed_items) == ("Succeeded", 900, 0)
    counts = sorted(int(p.read_text()) for p in calls.iterdir())
    assert len(counts) == 9 and counts.count(2) >= 3  # some mini-batches needed a second request
    assert len(np.loadtxt(result.output_file)) == 900


def test_a_stopped_service_fails_the_mini_batches_after_retries(tmp_path, workspace, model):
    diabetes_rows(300, with_id=False).to_csv(tmp_path / "features.csv", index=False)
    svc = _deploy(tmp_path, workspace, model, SERVICE, "gone-svc")
    svc._target().stop(svc._current()[0])  # the server process is gone; the record stays
    with pytest.raises(BatchFailed) as info:
        score("gone-svc", tmp_path / "features.csv", tmp_path / "out", workspace=workspace, mini_batch_size=100, max_tries=2)
    assert "after 2 tries" in info.value.result.failures[0].error
