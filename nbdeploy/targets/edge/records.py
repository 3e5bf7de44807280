"""The per-device records of one revision, kept in a JSON file in the service's folder.

The handle names the file and carries the records as they were when ``start`` returned; later observations
(a device going Offline, a reconcile) rewrite the file atomically, so every process sees the same fleet.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nbdeploy.targets.base import Handle
from nbdeploy.targets.edge.policy import DeviceRecord


def load_records(handle: Handle) -> dict[str, DeviceRecord]:
    """The newest records: the fleet file when it exists, else those in the handle."""
    path = handle.get("records_file")
    docs = handle.get("devices") or {}
    if path and Path(path).is_file():
        try:
            docs = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            pass
    return {name: DeviceRecord.from_dict(doc) for name, doc in docs.items()}


def save_records(handle: Handle, records: dict[str, DeviceRecord]) -> Handle:
    """Write ``records`` to the fleet file and return the handle carrying them."""
    docs = {name: record.to_dict() for name, record in records.items()}
    path = handle.get("records_file")
    if path:
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(docs, indent=1))
        os.replace(tmp, file)
    return {**handle, "devices": docs}
