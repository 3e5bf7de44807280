"""``ParallelRunConfig``: how a batch job runs, with Azure ML v1's parameter names and checks.

Differences from v1 (documented in docs/batch.md):

- ``mini_batch_size`` given as an int means *files* for file inputs and *rows* for tables; a size with a
  unit (``"10MB"``, ``"512KB"``, ``"1024B"``) means bytes of a table. (v1 read a bare number as bytes for
  tables; the v1 spelling in ``nbdeploy.compat.azureml`` keeps that meaning.)
- ``error_threshold`` defaults to 0 (the first failed input stops the job) instead of being required.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from nbdeploy.errors import InvalidSpec

APPEND_ROW, SUMMARY_ONLY = "append_row", "summary_only"
OUTPUT_ACTIONS = (APPEND_ROW, SUMMARY_ONLY)
DEFAULT_APPEND_ROW_FILE = "parallel_run_step.txt"
DEFAULT_FILES_PER_BATCH = 10
DEFAULT_TABLE_BATCH_BYTES = 1 << 20  # v1: 1MB for tabular inputs
LOGGING_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMG]?B)\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


@dataclass(frozen=True)
class BatchSize:
    """A mini-batch size: ``count`` files/rows, or ``nbytes`` of a table."""

    count: int | None = None
    nbytes: int | None = None

    def __str__(self) -> str:
        return f"{self.count}" if self.count is not None else f"{self.nbytes}B"


def parse_mini_batch_size(value: int | str | None) -> BatchSize | None:
    """``10`` / ``"10"`` -> 10 files or rows; ``"10MB"`` -> 10 MiB of a table; None -> the default."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidSpec("mini_batch_size", f"expected a number or a size such as '10MB', got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    elif isinstance(value, str) and (match := _SIZE_RE.match(value)):
        nbytes = int(match.group(1)) * _UNITS[match.group(2).upper()]
        if nbytes <= 0:
            raise InvalidSpec("mini_batch_size", f"{value!r} is not a positive size")
        return BatchSize(nbytes=nbytes)
    else:
        raise InvalidSpec("mini_batch_size", f"expected a number of files/rows or a size such as '10MB', got {value!r}")
    if number <= 0:
        raise InvalidSpec("mini_batch_size", f"must be at least 1, got {number}")
    return BatchSize(count=number)


@dataclass(frozen=True)
class ParallelRunConfig:
    """How to run an entry script over inputs: v1's ``ParallelRunConfig`` parameters, checked on creation.

    ``entry_script`` defines ``init()`` (called once per worker process) and ``run(mini_batch)`` (a list of file
    paths, or a pandas DataFrame for tables) returning a list or DataFrame with one element per input that succeeded.
    """

    entry_script: str
    source_directory: str | None = None
    error_threshold: int = 0
    """Failed inputs (rows or files) tolerated; one more stops the job. -1 tolerates any number."""
    output_action: str = APPEND_ROW
    mini_batch_size: int | str | None = None
    node_count: int = 1
    process_count_per_node: int | None = None
    """Worker processes per node (default: the number of CPUs)."""
    run_invocation_timeout: float = 60
    run_max_try: int = 3
    append_row_file_name: str | None = None
    allowed_failed_count: int | None = None
    """Failed mini-batches tolerated (-1: any)."""
    allowed_failed_percent: float | None = None
    """Failed mini-batches tolerated, in percent of all mini-batches (checked once all are dispatched)."""
    partition_keys: tuple[str, ...] | str | None = None  # a single column name is accepted (stored as a tuple)
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    arguments: tuple[str, ...] | str = ()  # one string is one argument (stored as a tuple)
    """Command-line arguments the entry script sees in ``sys.argv`` (v1 ``ParallelRunStep(arguments=...)``)."""
    environment: Any = None
    logging_level: str = "INFO"
    description: str | None = None

    def __post_init__(self) -> None:
        if not self.entry_script or not isinstance(self.entry_script, (str, os.PathLike)):
            raise InvalidSpec(
                "entry_script", "is required: the path of the script that defines init() and run(mini_batch)"
            )
        object.__setattr__(self, "entry_script", os.fspath(self.entry_script))
        if self.source_directory is not None:
            object.__setattr__(self, "source_directory", os.fspath(self.source_directory))
        _check_int("error_threshold", self.error_threshold, minimum=-1)
        if self.output_action not in OUTPUT_ACTIONS:
            raise InvalidSpec(
                "output_action", f"{self.output_action!r} is not an output action", allowed=OUTPUT_ACTIONS
            )
        size = parse_mini_batch_size(self.mini_batch_size)
        _check_int("node_count", self.node_count, minimum=1)
        if self.process_count_per_node is not None:
            _check_int("process_count_per_node", self.process_count_per_node, minimum=1)
        if (
            isinstance(self.run_invocation_timeout, bool)
            or not isinstance(self.run_invocation_timeout, (int, float))
            or self.run_invocation_timeout <= 0
        ):
            raise InvalidSpec(
                "run_invocation_timeout", f"must be a positive number of seconds, got {self.run_invocation_timeout!r}"
            )
        _check_int("run_max_try", self.run_max_try, minimum=1)
        name = self.append_row_file_name
        if name is not None:
            if self.output_action != APPEND_ROW:
                raise InvalidSpec("append_row_file_name", "applies only to output_action='append_row'")
            if (
                not isinstance(name, str)
                or not name
                or "/" in name
                or os.sep in name
                or name in (".", "..")
                or name.startswith(".")
            ):
                raise InvalidSpec("append_row_file_name", f"{name!r} must be a plain file name such as 'scores.txt'")
        if self.allowed_failed_count is not None:
            _check_int("allowed_failed_count", self.allowed_failed_count, minimum=-1)
        pct = self.allowed_failed_percent
        if pct is not None and (isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 <= pct <= 100):
            raise InvalidSpec("allowed_failed_percent", f"must be a number from 0 to 100, got {pct!r}")
        if self.partition_keys is not None:
            keys = [self.partition_keys] if isinstance(self.partition_keys, str) else list(self.partition_keys)
            if not keys or not all(isinstance(k, str) and k for k in keys):
                raise InvalidSpec("partition_keys", "must be a non-empty list of column names")
            if size is not None:
                raise InvalidSpec(
                    "partition_keys", "cannot be combined with mini_batch_size (v1 refuses both too); drop one"
                )
            object.__setattr__(self, "partition_keys", tuple(keys))
        env = dict(self.environment_variables or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise InvalidSpec("environment_variables", "must map names to string values")
        object.__setattr__(self, "environment_variables", env)
        args = [self.arguments] if isinstance(self.arguments, str) else list(self.arguments or ())
        object.__setattr__(self, "arguments", tuple(str(a) for a in args))
        if str(self.logging_level).upper() not in LOGGING_LEVELS:
            raise InvalidSpec("logging_level", f"{self.logging_level!r} is not a level", allowed=LOGGING_LEVELS)
        object.__setattr__(self, "logging_level", str(self.logging_level).upper())

    @property
    def batch_size(self) -> BatchSize | None:
        """The parsed ``mini_batch_size`` (None: the default for the input kind)."""
        return parse_mini_batch_size(self.mini_batch_size)

    @property
    def output_file_name(self) -> str | None:
        """The append_row file name, None for summary_only."""
        if self.output_action != APPEND_ROW:
            return None
        return self.append_row_file_name or DEFAULT_APPEND_ROW_FILE

    @property
    def workers(self) -> int:
        """Worker processes in all: ``node_count x process_count_per_node``."""
        return self.node_count * (self.process_count_per_node or os.cpu_count() or 1)

    def with_changes(self, **changes: Any) -> ParallelRunConfig:
        """A copy with some fields changed (checked again)."""
        return replace(self, **changes)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> ParallelRunConfig:
        """Build from keyword arguments, naming an unknown one (with close matches) instead of a TypeError."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(kwargs) - known)
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
            raise InvalidSpec(
                unknown[0], "is not a ParallelRunConfig parameter" + (f"; did you mean {close[0]!r}?" if close else "")
            )
        return cls(**kwargs)


def _check_int(key: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidSpec(key, f"must be an integer >= {minimum}, got {value!r}")


def as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"a"`` -> ``("a",)``; a sequence -> a tuple; None -> ``()``."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)
