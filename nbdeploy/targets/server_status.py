"""Reading the scoring server's status file (``--status-file``): what every target that runs it needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_status_file(path: str | Path | None) -> dict[str, Any]:
    """The server's last status (``{"pid", "state", "admin_port", "public_port", "error"}``); {} when unknown."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def failure_reason(info: dict[str, Any], exit_code: int | None) -> str:
    """Why a server failed or is gone, from its status and exit code (3 means init() failed)."""
    error = info.get("error") or ""
    if exit_code == 3 or info.get("state") == "failed":
        return "init() failed" + (f": {error}" if error else "") + " (the server exits with code 3)"
    return (
        "the scoring server exited"
        + (f" with code {exit_code}" if exit_code is not None else "")
        + (f": {error}" if error else "")
    )
