"""Batch errors, in nbdeploy's one exception tree (candidates to move into ``nbdeploy/errors.py``)::

NbdeployError
└── BatchError                 a batch job did not complete
    ├── BatchFailed            the error threshold was passed, or init() failed; carries the result
    └── BatchStopped           Ctrl-C (or a cancel) stopped it; rerun the same job to resume
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbdeploy.errors import NbdeployError

if TYPE_CHECKING:
    from nbdeploy.batch.result import BatchResult


class BatchError(NbdeployError):
    """A batch job did not complete; ``result`` holds its counts and failures so far."""

    status_code = 500

    def __init__(self, message: str, result: BatchResult) -> None:
        super().__init__(message)
        self.result = result


class BatchFailed(BatchError):
    """The job stopped: failures passed a threshold, or the entry script's init() failed."""


class BatchStopped(BatchError):
    """The job was stopped on request (Ctrl-C); its journal lets the same job resume."""
