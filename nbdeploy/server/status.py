"""The ``--status-file``: JSON rewritten atomically (temp file + rename) whenever something in it changes.

Keys (all always present):

- ``pid``: the master's pid; ``state``: ``loading|ready|serving|failed|stopping``; ``error``: why it failed.
- ``admin_port``, ``public_port``: the ports actually bound (a port given as 0 is the one picked).
- ``exit_code``: the master's exit status, written just before it exits (``null`` while it runs, and
  when it was killed, e.g. by SIGKILL, since it cannot write then).
- ``stop_signal``: ``"SIGTERM"``/``"SIGINT"`` when a signal made the server drain and exit, else ``null``.
- ``last_worker_exit``: the latest worker that ended other than by a drain, ``null`` if none:
  ``{"worker", "pid", "exit_code", "signal", "reason", "time"}`` (``exit_code`` for a normal exit,
  ``signal`` such as ``"SIGKILL"`` when a signal ended it, ``reason`` one of ``crashed``, ``hung``
  (killed by the hang watchdog), ``init failed``, ``bind failed``; ``time`` in Unix seconds).
- ``worker_restarts``: how many workers were replaced.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any


def signal_name(number: int) -> str:
    """``SIGKILL`` for 9, ``SIG42`` for a number without a name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


class StatusFile:
    """Keeps the status and writes it to ``path`` on every change; a no-op without a path."""

    def __init__(self, path: str | None, admin_port: int | None, public_port: int) -> None:
        self.path = path
        self.data: dict[str, Any] = {
            "pid": os.getpid(),
            "state": None,
            "admin_port": admin_port,
            "public_port": public_port,
            "error": None,
            "exit_code": None,
            "stop_signal": None,
            "last_worker_exit": None,
            "worker_restarts": 0,
        }

    def set(self, state: str, error: str | None = None) -> None:
        if self.data["state"] == state and self.data["error"] == error:
            return
        self.update(state=state, error=error)

    def update(self, **fields: Any) -> None:
        """Change some keys and rewrite the file."""
        self.data.update(fields)
        if not self.path:
            return
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump(self.data, fh)
        os.replace(tmp, self.path)
