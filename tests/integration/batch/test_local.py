"""nbdeploy.batch.run with real worker processes, real files and the sklearn fixture model."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbdeploy
from nbdeploy.batch import BatchFailed, run
from nbdeploy.batch.journal import JOURNAL, STATE_DIR

from .conftest import FILES, TABULAR, cli, cli_env, diabetes_rows, write

pytestmark = pytest.mark.slow


def read_output(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, delimiter=" ", header=None, names=["id", "prediction"])


def test_tabular_script_in_input_order_with_models_as_for_services(tmp_path, workspace, model, table_csv):
    script = write(tmp_path, "score_rows.py", TABULAR)
    result = run(script, table_csv, tmp_path / "out", models=[model], workspace=workspace, mini_batch_size=250, processes=2)
    assert result.state == "Succeeded"
    assert (result.mini_batches, result.succeeded, result.failed_items) == (12, 3000, 0)
    out = read_output(tmp_path / "out" / "parallel_run_step.txt")
    assert out["id"].tolist() == list(range(3000))  # input order, no gaps, no duplicates
    import joblib

    estimator = joblib.load(tmp_path / "model.joblib")
    frame = pd.read_csv(table_csv)
    np.testing.assert_allclose(out["prediction"], estimator.predict(frame.drop(columns=["id"])), rtol=1e-12)
    logs = "".join(p.read_text() for p in (tmp_path / "out" / STATE_DIR / "logs").glob("worker-*.log"))
    pids = re.findall(r"init\(\) done in pid (\d+)", logs)
    assert 1 <= len(pids) <= 2 and len(set(pids)) == len(pids)  # init() once per worker process


def test_size_mini_batches_parquet_and_jsonl_give_the_same_rows(tmp_path, workspace, model):
    frame = diabetes_rows(1200)
    frame.to_parquet(tmp_path / "rows.parquet", row_group_size=500)
    frame.to_json(tmp_path / "rows.jsonl", orient="records", lines=True)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    script = write(tmp_path, "score_rows.py", TABULAR)
    outputs = {}
    for name, size in (("rows.csv", "16KB"), ("rows.parquet", 300), ("rows.jsonl", "20KB")):
        result = run(script, tmp_path / name, tmp_path / f"out-{name}", models=[model], workspace=workspace,
                     mini_batch_size=size, processes=1)
        assert result.succeeded == 1200 and result.mini_batches > 1
        outputs[name] = read_output(result.output_file)
    for name, out in outputs.items():
        assert out["id"].tolist() == list(range(1200)), name
        np.testing.assert_allclose(out["prediction"], outputs["rows.csv"]["prediction"], rtol=1e-9)


def test_file_script_missing_results_count_as_failures(tmp_path, workspace, model):
    folder = tmp_path / "inputs"
    folder.mkdir()
    rows = diabetes_rows(25, with_id=False).to_numpy()
    for i, row in enumerate(rows):
        name = f"{i:03d}-skip.csv" if i in (4, 17) else f"{i:03d}-item.csv"
        np.savetxt(folder / name, row.reshape(1, -1), delimiter=",")
    script = write(tmp_path, "score_files.py", FILES)
    result = run(script, folder, tmp_path / "out", models=["diabetes:1"], workspace=workspace, mini_batch_size=10,
                 input_format="files", error_threshold=5, append_row_file_name="scores.txt", processes=2)
    assert (result.items, result.succeeded, result.failed_items, result.failed_batches) == (25, 23, 2, 0)
    lines = (tmp_path / "out" / "scores.txt").read_text().splitlines()
    names = sorted(p.name for p in folder.iterdir() if "skip" not in p.name)
    assert [line.split(":")[0] for line in lines] == names
    assert {f.batch for f in result.failures} == {0, 1}
    assert all("returned 9 results for 10 inputs" in f.error for f in result.failures)


def test_error_threshold_stops_the_job_and_names_the_failed_inputs(tmp_path, workspace, model, table_csv):
    script = write(tmp_path, "score_rows.py", TABULAR)
    with pytest.raises(BatchFailed) as info:
        run(script, table_csv, tmp_path / "out", models=[model], workspace=workspace, mini_batch_size=100,
            error_threshold=50, run_max_try=2, processes=2, environment_variables={"BATCH_TEST_BAD_ID": "1234"})
    result = info.value.result
    assert result.state == "Failed"
    assert "100 failed inputs > error_threshold=50" in str(info.value)
    assert "rows 1201-1300" in str(info.value) and "cannot score row id 1234" in str(info.value)
    assert [f.batch for f in result.failures] == [12]
    assert "failed 2 tries" in result.failures[0].error  # run_max_try honoured
    # below the threshold the same failure is tolerated, and the output simply lacks that mini-batch's rows
    result = run(script, table_csv, tmp_path / "out2", models=[model], workspace=workspace, mini_batch_size=100,
                 error_threshold=100, run_max_try=1, processes=2, environment_variables={"BATCH_TEST_BAD_ID": "1234"})
    assert (result.state, result.failed_items, result.failed_batches) == ("Succeeded", 100, 1)
    ids = read_output(result.output_file)["id"].tolist()
    assert ids == [i for i in range(3000) if not 1200 <= i < 1300]


def test_init_failure_fails_the_job_with_the_traceback(tmp_path, workspace, table_csv):
    script = write(tmp_path, "broken.py", "def init():\n    raise RuntimeError('no model here')\n\ndef run(mini_batch):\n    return mini_batch\n")
    with pytest.raises(BatchFailed, match="no model here"):
        run(script, table_csv, tmp_path / "out", workspace=workspace, mini_batch_size=1000, processes=1)


def test_run_invocation_timeout_kills_and_retries(tmp_path, workspace, model, table_csv):
    script = write(tmp_path, "score_rows.py", TABULAR)
    with pytest.raises(BatchFailed) as info:
        run(script, table_csv, tmp_path / "out", models=[model], workspace=workspace, mini_batch_size=3000,
            run_invocation_timeout=1, run_max_try=2, processes=1, environment_variables={"BATCH_TEST_DELAY": "30"})
    assert "run_invocation_timeout=1s" in info.value.result.failures[0].error


def _journal_entries(out: Path) -> int:
    path = out / STATE_DIR / JOURNAL
    return max(0, len(path.read_bytes().splitlines()) - 1) if path.exists() else 0


def _start_cli(tmp_path: Path, workspace, out: Path, table_csv: Path, delay: str) -> subprocess.Popen[bytes]:
    script = write(tmp_path, "score_rows.py", TABULAR)
    argv = cli("batch", "run", "-e", str(script), "-i", str(table_csv), "-o", str(out), "-m", "diabetes:1",
               "--mini-batch-size", "100", "--processes", "2", "--env-var", f"BATCH_TEST_DELAY={delay}")
    return subprocess.Popen(argv, env=cli_env(workspace), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_entries(out: Path, count: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while _journal_entries(out) < count:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.05)


def _reference_output(tmp_path, workspace, model, table_csv) -> bytes:
    script = write(tmp_path, "score_rows.py", TABULAR)
    result = run(script, table_csv, tmp_path / "reference", models=[model], workspace=workspace, mini_batch_size=100, processes=2)
    return result.output_file.read_bytes()


def _worker_pids(out: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
                env = (proc / "environ").read_bytes()
            except OSError:
                continue
            if b"nbdeploy.batch.worker" in cmd and str(out).encode() in env:
                pids.append(int(proc.name))
    return pids


def test_sigkilled_job_resumes_with_no_duplicates_and_no_gaps(tmp_path, workspace, model, table_csv):
    reference = _reference_output(tmp_path, workspace, model, table_csv)
    out = tmp_path / "out"
    proc = _start_cli(tmp_path, workspace, out, table_csv, delay="0.15")
    _wait_for_entries(out, 8, proc)
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait()
    done_before = _journal_entries(out)
    assert 8 <= done_before < 30
    deadline = time.monotonic() + 10
    while _worker_pids(out) and time.monotonic() < deadline:  # workers die with their runner
        time.sleep(0.1)
    assert _worker_pids(out) == []
    again = subprocess.run(cli("batch", "run", "-e", str(tmp_path / "score_rows.py"), "-i", str(table_csv), "-o", str(out),
                               "-m", "diabetes:1", "--mini-batch-size", "100", "--processes", "2"),
                           env=cli_env(workspace), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"resumed: {done_before} mini-batches were already done" in again.stdout
    assert (out / "parallel_run_step.txt").read_bytes() == reference


def test_sigint_stops_cleanly_and_the_rerun_resumes(tmp_path, workspace, model, table_csv):
    reference = _reference_output(tmp_path, workspace, model, table_csv)
    out = tmp_path / "out"
    proc = _start_cli(tmp_path, workspace, out, table_csv, delay="0.15")
    _wait_for_entries(out, 5, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr.decode()
    assert b"run it again with the same inputs and output to resume" in stderr
    lines = (out / STATE_DIR / JOURNAL).read_bytes().splitlines()
    entries = [json.loads(line) for line in lines[1:]]
    assert [e["i"] for e in entries] == list(range(len(entries)))  # a clean, contiguous journal
    assert (out / "parallel_run_step.txt").stat().st_size == entries[-1]["end"]  # output ends where the journal does
    assert _worker_pids(out) == []
    result = run(tmp_path / "score_rows.py", table_csv, out, models=[model], workspace=workspace, mini_batch_size=100, processes=2)
    assert result.resumed == len(entries)
    assert result.output_file.read_bytes() == reference


def test_rerunning_a_finished_job_does_nothing_and_changed_inputs_are_refused(tmp_path, workspace, model, table_csv):
    script = write(tmp_path, "score_rows.py", TABULAR)
    first = run(script, table_csv, tmp_path / "out", models=[model], workspace=workspace, mini_batch_size=500, processes=1)
    data = first.output_file.read_bytes()
    second = run(script, table_csv, tmp_path / "out", models=[model], workspace=workspace, mini_batch_size=500, processes=1)
    assert (second.resumed, second.mini_batches_done) == (6, 6)
    assert second.output_file.read_bytes() == data
    with pytest.raises(nbdeploy.errors.Conflict, match="another job"):
        run(script, table_csv, tmp_path / "out", models=[model], workspace=workspace, mini_batch_size=400, processes=1)


def test_shards_concatenated_in_order_equal_the_whole_job(tmp_path, workspace, model, table_csv):
    """What each pod of the Indexed Job runs (``--shard I/N``), checked locally."""
    script = write(tmp_path, "score_rows.py", TABULAR)
    whole = run(script, table_csv, tmp_path / "whole", models=[model], workspace=workspace, mini_batch_size=400, processes=1)
    parts = []
    for index in range(3):
        part = run(script, table_csv, tmp_path / "sharded", models=[model], workspace=workspace, mini_batch_size=400,
                   processes=1, shard=(index, 3))
        assert part.output_file == tmp_path / "sharded" / f"shard-{index}" / "parallel_run_step.txt"
        parts.append(part.output_file.read_bytes())
    assert b"".join(parts) == whole.output_file.read_bytes()


def test_a_worker_killed_mid_run_is_replaced_and_its_mini_batch_retried(tmp_path, workspace, model, table_csv, caplog):
    caplog.set_level("INFO", logger="nbdeploy.batch.runner")
    script = write(tmp_path, "score_rows.py", TABULAR.replace("def run(mini_batch):", '''def run(mini_batch):
    marker = os.path.join(os.environ["MARKER_DIR"], "killed")
    if (mini_batch["id"] == 1500).any() and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), 9)  # as the OOM killer would''', 1))
    result = run(script, table_csv, tmp_path / "out", models=[model], workspace=workspace, mini_batch_size=300,
                 processes=2, environment_variables={"MARKER_DIR": str(tmp_path)})
    assert (result.state, result.succeeded, result.failed_items) == ("Succeeded", 3000, 0)
    assert read_output(result.output_file)["id"].tolist() == list(range(3000))
    assert (tmp_path / "killed").exists()
    assert "mini-batch 5 try 1 failed; retrying: the worker process was killed by SIGKILL" in caplog.text
