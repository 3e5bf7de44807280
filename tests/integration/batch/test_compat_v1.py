"""The v1 spelling: ParallelRunConfig / ParallelRunStep from nbdeploy.compat.azureml.pipeline.steps."""

from __future__ import annotations

import pandas as pd
import pytest

from nbdeploy.compat.azureml.pipeline.steps import ParallelRunConfig, ParallelRunStep
from nbdeploy.errors import InvalidSpec

from .conftest import write

pytestmark = pytest.mark.slow

# Azure ML's iris example shape: argparse for the model name, Model.get_model_path, EntryScript logger.
V1_SCRIPT = """
import argparse
import joblib
from azureml.core.model import Model
from azureml_user.parallel_run import EntryScript

def init():
    global model
    parser = argparse.ArgumentParser(description="diabetes batch scoring")
    parser.add_argument("--model_name", dest="model_name", required=True)
    args, unknown_args = parser.parse_known_args()
    model = joblib.load(Model.get_model_path(args.model_name))
    EntryScript().logger.info("init() is called.")

def run(input_data):
    num_rows, num_cols = input_data.shape
    pred = model.predict(input_data.drop(columns=["id"])).reshape((num_rows, 1))
    result = input_data[["id"]].copy()
    result["prediction"] = pred
    return result
"""


def test_v1_step_runs_unchanged_script_with_v1_byte_sizes(tmp_path, workspace, model, table_csv):
    write(tmp_path, "batch_score.py", V1_SCRIPT)
    config = ParallelRunConfig(environment=None, entry_script="batch_score.py", source_directory=str(tmp_path),
                               error_threshold=10, output_action="append_row", compute_target="cpu-cluster",
                               node_count=1, process_count_per_node=2, mini_batch_size=40000)
    step = ParallelRunStep(name="diabetes-batch", parallel_run_config=config, inputs=[str(table_csv)],
                           output=str(tmp_path / "scores"), arguments=["--model_name", "diabetes"])
    result = step.run(workspace=workspace, models=["diabetes:1"])
    assert result.state == "Succeeded" and result.succeeded == 3000
    size = table_csv.stat().st_size
    assert result.mini_batches in (size // 40000, size // 40000 + 1)  # a bare number is bytes for tables, as in v1
    out = pd.read_csv(tmp_path / "scores" / "parallel_run_step.txt", delimiter=" ", header=None)
    assert out[0].tolist() == list(range(3000))


def test_v1_config_is_checked_on_creation():
    with pytest.raises(InvalidSpec, match="output_action"):
        ParallelRunConfig(None, "s.py", 0, "append", "local", 1)
    with pytest.raises(InvalidSpec, match="partition_keys"):
        ParallelRunConfig(None, "s.py", 0, "append_row", "local", 1, mini_batch_size=5, partition_keys=["a"])
