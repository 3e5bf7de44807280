"""The ``--status-file``: JSON rewritten atomically (temp file + rename) whenever the state changes."""

from __future__ import annotations

import json
import os
from typing import Any


class StatusFile:
    """Writes ``{"pid", "state", "admin_port", "public_port", "error"}``; a no-op without a path."""

    def __init__(self, path: str | None, admin_port: int | None, public_port: int) -> None:
        self.path = path
        self.data: dict[str, Any] = {"pid": os.getpid(), "state": None, "admin_port": admin_port,
                                     "public_port": public_port, "error": None}

    def set(self, state: str, error: str | None = None) -> None:
        if self.data["state"] == state and self.data["error"] == error:
            return
        self.data.update(state=state, error=error)
        if not self.path:
            return
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump(self.data, fh)
        os.replace(tmp, self.path)
