"""``azureml_user.parallel_run.EntryScript`` for v1 batch scripts (``EntryScript().logger``, ``.output_dir``).

Registered in each worker when no real ``azureml_user`` package is importable.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import types
from typing import Any

ENV_OUTPUT_DIR = "NBDEPLOY_BATCH_OUTPUT_DIR"
ENV_LOG_DIR = "NBDEPLOY_BATCH_LOG_DIR"
ENV_WORKER = "NBDEPLOY_BATCH_WORKER"


class EntryScript:
    """v1's per-process singleton giving the entry script a logger and the job's folders."""

    _instance: EntryScript | None = None

    def __new__(cls) -> EntryScript:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    @property
    def logger(self) -> logging.Logger:
        """Logs to the worker's log file (``<output>/.nbdeploy-batch/logs/worker-N.log``)."""
        return logging.getLogger("nbdeploy.batch.user")

    @property
    def output_dir(self) -> str:
        """The job's output folder (for summary_only scripts that write their own files)."""
        return os.environ.get(ENV_OUTPUT_DIR, os.getcwd())

    @property
    def working_dir(self) -> str:
        return os.getcwd()

    @property
    def log_dir(self) -> str:
        return os.environ.get(ENV_LOG_DIR, os.getcwd())

    @property
    def agent_name(self) -> str:
        return f"worker-{os.environ.get(ENV_WORKER, '0')}"

    @property
    def node_id(self) -> str:
        return os.environ.get("NBDEPLOY_BATCH_NODE", "0")

    @property
    def process_name(self) -> str:
        return self.agent_name

    def __repr__(self) -> str:
        return f"EntryScript(output_dir={self.output_dir!r})"


def register() -> list[str]:
    """Put ``azureml_user.parallel_run`` in ``sys.modules`` unless a real package provides it."""
    try:
        if importlib.util.find_spec("azureml_user") is not None:
            return []
    except (ImportError, ValueError):
        pass
    package = types.ModuleType("azureml_user")
    package.__path__ = []
    module: Any = types.ModuleType("azureml_user.parallel_run")
    module.EntryScript = EntryScript
    package.parallel_run = module  # type: ignore[attr-defined]
    sys.modules["azureml_user"] = package
    sys.modules["azureml_user.parallel_run"] = module
    return ["azureml_user.parallel_run"]
