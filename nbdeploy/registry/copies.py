"""Deploy copies: the workspace's own copy of a blob, which bundles hard-link instead of the blob.

A deployment may write its model files (a root ``init()`` can write a 0444 file), so it never gets a link
to a blob. Laying out a full copy for every bundle would make each code-only update of a big model pay for
the copy again, so each ``(blob, mode)`` has one deploy copy under ``cache/model-files/`` (a reflink of
the blob where the filesystem shares extents, else a copy) shared by the bundles. Its size, inode and
modification time are recorded beside it; a copy changed since (a deployment wrote it) is replaced by a
fresh one for the next bundle, and the registry's blob is never touched either way.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from nbdeploy.registry.blobs import BlobStore, clone_file
from nbdeploy.workspace import Workspace, storage_error

log = logging.getLogger(__name__)

COPIES_DIR = "model-files"


def fingerprint(path: Path) -> list[int]:
    """``[size, inode, mtime_ns]``: changes when the file is written (hard links do not change it)."""
    st = path.stat()
    return [st.st_size, st.st_ino, st.st_mtime_ns]


def deploy_copy(workspace: Workspace, digest: str, mode: int) -> Path:
    """The intact deploy copy of blob ``digest`` with file mode ``mode``, made (or remade) when needed."""
    folder = workspace.cache_dir / COPIES_DIR
    path = folder / f"{digest}-{mode:o}"
    record = folder / f"{digest}-{mode:o}.json"
    try:
        if path.is_file() and json.loads(record.read_text()) == fingerprint(path):
            return path
    except (OSError, ValueError):
        pass
    if path.exists():
        log.warning("deploy copy %s was changed by a deployment; laying out a fresh one", path.name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".copy-", dir=folder)
        tmp = Path(tmp_name)
        try:
            clone_file(BlobStore(workspace).path(digest), fd)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp_record = folder / f".{record.name}.{os.getpid()}"
        tmp_record.write_text(json.dumps(fingerprint(path)))
        os.replace(tmp_record, record)
    except OSError as exc:
        raise storage_error(workspace.path, f"lay out model file {digest[:12]} for a deployment", exc) from exc
    return path


__all__ = ["deploy_copy", "fingerprint"]
