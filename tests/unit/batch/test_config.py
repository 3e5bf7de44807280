"""ParallelRunConfig: v1 names, checks with clear errors."""

from __future__ import annotations

import pytest

from nbdeploy.batch.config import BatchSize, ParallelRunConfig, parse_mini_batch_size
from nbdeploy.errors import InvalidSpec


def test_defaults_follow_v1():
    config = ParallelRunConfig("score.py")
    assert config.output_file_name == "parallel_run_step.txt"
    assert (config.run_invocation_timeout, config.run_max_try, config.node_count) == (60, 3, 1)
    assert config.with_changes(output_action="summary_only").output_file_name is None
    assert ParallelRunConfig("s.py", append_row_file_name="scores.txt").output_file_name == "scores.txt"
    assert ParallelRunConfig("s.py", node_count=2, process_count_per_node=3).workers == 6


@pytest.mark.parametrize("value, expected", [
    (10, BatchSize(count=10)), ("25", BatchSize(count=25)), ("10MB", BatchSize(nbytes=10 << 20)),
    ("512 kb", BatchSize(nbytes=512 << 10)), ("1GB", BatchSize(nbytes=1 << 30)), ("100B", BatchSize(nbytes=100)), (None, None),
])
def test_mini_batch_sizes(value, expected):
    assert parse_mini_batch_size(value) == expected


@pytest.mark.parametrize("kwargs, key", [
    ({"mini_batch_size": 0}, "mini_batch_size"),
    ({"mini_batch_size": "ten"}, "mini_batch_size"),
    ({"mini_batch_size": True}, "mini_batch_size"),
    ({"error_threshold": -2}, "error_threshold"),
    ({"output_action": "append_rows"}, "output_action"),
    ({"run_invocation_timeout": 0}, "run_invocation_timeout"),
    ({"run_max_try": 0}, "run_max_try"),
    ({"node_count": 0}, "node_count"),
    ({"process_count_per_node": 0}, "process_count_per_node"),
    ({"allowed_failed_percent": 101}, "allowed_failed_percent"),
    ({"allowed_failed_count": -3}, "allowed_failed_count"),
    ({"append_row_file_name": "../x.txt"}, "append_row_file_name"),
    ({"append_row_file_name": "x.txt", "output_action": "summary_only"}, "append_row_file_name"),
    ({"partition_keys": ["store"], "mini_batch_size": 10}, "partition_keys"),
    ({"partition_keys": []}, "partition_keys"),
    ({"logging_level": "LOUD"}, "logging_level"),
    ({"environment_variables": {"A": 1}}, "environment_variables"),
])
def test_bad_values_name_the_parameter(kwargs, key):
    with pytest.raises(InvalidSpec) as info:
        ParallelRunConfig("score.py", **kwargs)
    assert info.value.key == key
    assert "\n" not in str(info.value)


def test_unknown_parameter_suggests_the_v1_name():
    with pytest.raises(InvalidSpec, match="did you mean 'error_threshold'"):
        ParallelRunConfig.from_kwargs(entry_script="s.py", error_treshold=3)


def test_output_action_error_lists_allowed_values():
    with pytest.raises(InvalidSpec, match="allowed: append_row, summary_only"):
        ParallelRunConfig("s.py", output_action="rows")
