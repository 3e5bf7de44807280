"""Batch inference with the Azure ML v1 ``ParallelRunStep`` entry-script contract.

``nbdeploy.batch.run(entry_script, input, output, mini_batch_size=..., ...)`` runs a v1 batch script
(``init()`` once per worker, ``run(mini_batch)`` per mini-batch) over files or tables with local worker
processes; ``nbdeploy.batch.score(service, input, output, ...)`` sends the same mini-batches to a deployed
service. Both write v1's ``parallel_run_step.txt`` in input order and resume from their journal.

Modules: ``config`` (ParallelRunConfig), ``plan`` + ``scan`` (inputs -> mini-batches), ``readers`` and
``formatting`` (worker side), ``worker`` + ``pool`` (processes), ``journal`` (resumability), ``runner`` (the job
loop), ``local`` (``run``), ``service_scoring`` (``score``), ``progress``, ``result``, ``errors``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "run": "nbdeploy.batch.local",
    "score": "nbdeploy.batch.service_scoring",
    "ParallelRunConfig": "nbdeploy.batch.config",
    "BatchResult": "nbdeploy.batch.result",
    "Failure": "nbdeploy.batch.result",
    "BatchError": "nbdeploy.batch.errors",
    "BatchFailed": "nbdeploy.batch.errors",
    "BatchStopped": "nbdeploy.batch.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nbdeploy.batch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover
    from nbdeploy.batch.config import ParallelRunConfig as ParallelRunConfig
    from nbdeploy.batch.errors import BatchError as BatchError
    from nbdeploy.batch.errors import BatchFailed as BatchFailed
    from nbdeploy.batch.errors import BatchStopped as BatchStopped
    from nbdeploy.batch.local import run as run
    from nbdeploy.batch.result import BatchResult as BatchResult
    from nbdeploy.batch.result import Failure as Failure
    from nbdeploy.batch.service_scoring import score as score
