"""Garbage collection: blobs no model version refers to, stale files in ``tmp/``, deploy copies no bundle
uses; and blobs still hard-linked from bundles laid out by an older nbdeploy get their own inode back."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nbdeploy.errors import WorkspaceError
from nbdeploy.registry import store
from nbdeploy.registry.blobs import BlobStore, copy_verified
from nbdeploy.registry.copies import COPIES_DIR
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
    copies_removed: int = 0
    """Deploy copies (``cache/model-files``) that no bundle links any more."""
    blobs_detached: int = 0
    """Blobs that were hard-linked from elsewhere (bundles of an older nbdeploy): replaced by a verified copy."""
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
                if path.stat().st_nlink > 1:
                    report.blobs_detached += 1
                    if not dry_run:
                        _detach(blobs, digest, path)
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
        _remove_unused_copies(ws, report, dry_run)
        if not dry_run:
            for sub in blobs.root.iterdir() if blobs.root.is_dir() else ():
                try:
                    sub.rmdir()  # only empty fan-out folders
                except OSError:
                    pass
    return report


def _detach(blobs: BlobStore, digest: str, path: Path) -> None:
    """Give a hard-linked blob its own inode (a verified copy renamed over it); the other links keep theirs."""
    fd, tmp_name = tempfile.mkstemp(prefix="detach-", dir=blobs.tmp)
    tmp = Path(tmp_name)
    try:
        try:
            intact = copy_verified(path, fd, digest)
            os.fsync(fd)
        finally:
            os.close(fd)
        if not intact:
            log.warning("gc: blob %s is hard-linked and was changed on disk; `nbdeploy verify` lists it", digest)
            return
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)
        log.info("gc: blob %s no longer shares its inode with other files", digest)
    finally:
        tmp.unlink(missing_ok=True)


def _remove_unused_copies(ws: Workspace, report: GcReport, dry_run: bool) -> None:
    """Deploy copies no bundle links (link count 1), and temporary files of killed copiers."""
    folder = ws.cache_dir / COPIES_DIR
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.suffix == ".json" and not entry.name.startswith("."):
            continue
        st = entry.lstat()
        if not entry.name.startswith(".") and st.st_nlink > 1:
            continue  # a bundle links it
        report.copies_removed += 1
        report.bytes_freed += st.st_size
        if not dry_run:
            entry.unlink(missing_ok=True)
            entry.with_name(entry.name + ".json").unlink(missing_ok=True)
