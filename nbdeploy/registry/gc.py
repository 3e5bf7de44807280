"""Garbage collection: blobs no model version refers to, and stale files in ``tmp/``."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass

from nbdeploy.errors import WorkspaceError
from nbdeploy.registry import store
from nbdeploy.registry.blobs import BlobStore
from nbdeploy.workspace import HAVE_FLOCK, PathLike, Workspace, as_workspace

log = logging.getLogger(__name__)

#: Without flock (Windows) only tmp entries older than this are treated as stale.
TMP_GRACE_S = 3600.0


@dataclass
class GcReport:
    """What :func:`gc` removed (or would remove, with ``dry_run``)."""

    blobs_removed: int = 0
    bytes_freed: int = 0
    tmp_removed: int = 0
    blobs_kept: int = 0
    dry_run: bool = False


def gc(workspace: Workspace | PathLike | None = None, dry_run: bool = False) -> GcReport:
    """Remove orphaned blobs and stale ``tmp/`` entries.

    Waits for in-flight registrations (they hold the workspace's writer lock), so whatever is in ``tmp/``
    afterwards was left by a process that died, and an unreferenced blob is an orphan. Nothing is removed
    unless the database is provably this workspace's own and intact (:meth:`Workspace.check_intact`).
    """
    ws = as_workspace(workspace)
    report = GcReport(dry_run=dry_run)
    if not ws.exists():
        ws.db(create=False)  # refuses a workspace whose database is missing but whose blobs are not
        return report
    blobs = BlobStore(ws)
    ws.db()
    if ws.read_only and not dry_run:
        raise WorkspaceError(f"Workspace {ws.path} is read-only here: gc cannot remove anything.")
    with ws.gc_lock(blocking=True):
        ws.check_intact()
        referenced = store.referenced_blobs(ws.db())
        for digest, path in blobs.iter_blobs():
            if digest in referenced:
                report.blobs_kept += 1
                continue
            report.blobs_removed += 1
            report.bytes_freed += path.stat().st_size
            if not dry_run:
                path.unlink(missing_ok=True)
                log.info("gc: removed orphaned blob %s", digest)
        if ws.tmp_dir.is_dir():
            cutoff = time.time() - TMP_GRACE_S
            for entry in ws.tmp_dir.iterdir():
                if not HAVE_FLOCK and entry.lstat().st_mtime > cutoff:  # pragma: no cover - Windows
                    continue
                report.tmp_removed += 1
                if not dry_run:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
                    log.info("gc: removed stale %s", entry)
        if not dry_run:
            for sub in blobs.root.iterdir() if blobs.root.is_dir() else ():
                try:
                    sub.rmdir()  # only empty fan-out folders
                except OSError:
                    pass
    return report
