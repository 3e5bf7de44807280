"""Workspace-wide integrity check: the database is this workspace's own and intact, and every blob a model
version refers to is present with its recorded size and sha256."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from nbdeploy.errors import WorkspaceError
from nbdeploy.registry.blobs import BlobStore
from nbdeploy.workspace import PathLike, Workspace, as_workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlobProblem:
    """A blob that is missing or does not hold what the registry says."""

    digest: str
    problem: str
    models: tuple[str, ...]
    """``name:version`` of every model version with a file in this blob."""


@dataclass
class VerifyReport:
    """What :func:`verify` checked and found."""

    blobs_checked: int = 0
    bytes_checked: int = 0
    orphans: int = 0
    """Blobs no model refers to (``gc`` removes them)."""
    database_problem: str | None = None
    problems: list[BlobProblem] = field(default_factory=list)
    quick: bool = False

    @property
    def ok(self) -> bool:
        return self.database_problem is None and not self.problems


def verify(workspace: Workspace | PathLike | None = None, quick: bool = False) -> VerifyReport:
    """Check the database (identity, schema, ``quick_check``) and every referenced blob's size and sha256.

    ``quick`` compares sizes only. A damaged blob is repaired by registering its original file again.
    """
    ws = as_workspace(workspace)
    report = VerifyReport(quick=quick)
    conn = ws.db(create=False)
    if not ws.exists():
        return report
    try:
        ws.check_intact()
    except WorkspaceError as exc:
        report.database_problem = str(exc)
    rows = conn.execute(
        "SELECT f.blob, MAX(f.size), group_concat(DISTINCT m.name || ':' || m.version) "
        "FROM model_files f JOIN models m ON m.id = f.model GROUP BY f.blob ORDER BY f.blob"
    ).fetchall()
    blobs = BlobStore(ws)
    referenced = set()
    for digest, size, models in rows:
        referenced.add(digest)
        problem = blobs.verify(digest, size, quick=quick)
        report.blobs_checked += 1
        report.bytes_checked += size if problem is None or not quick else 0
        if problem is not None:
            names = tuple(sorted(models.split(","))) if models else ()
            report.problems.append(BlobProblem(digest, problem, names))
            log.warning("blob %s (%s): %s", digest, ", ".join(names), problem)
    report.orphans = sum(1 for digest, _ in blobs.iter_blobs() if digest not in referenced)
    return report


__all__ = ["BlobProblem", "VerifyReport", "verify"]
