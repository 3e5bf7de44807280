"""The journal of committed mini-batches: what makes a batch job resumable with no duplicates and no gaps.

``<output>/.nbdeploy-batch/journal.jsonl`` is append-only JSON lines: a header naming the job (a digest of its
inputs and mini-batch plan), then one line per committed mini-batch, in input order, with the size of the
output file after its rows were appended. A commit appends rows to the output file, fsyncs it, then appends
and fsyncs the journal lines. On open, a torn last line is dropped and the output file is cut back to the
size the last journal line names, so rows written after the last commit (a crash between the two fsyncs)
disappear instead of being written twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbdeploy.errors import Conflict

STATE_DIR = ".nbdeploy-batch"
JOURNAL = "journal.jsonl"
VERSION = 1


@dataclass
class Entry:
    """One committed mini-batch."""

    index: int
    end: int
    items: int
    results: int
    failed: int = 0
    inputs: str = ""
    error: str = ""
    batch_failed: bool = False

    def to_json(self) -> str:
        doc: dict[str, Any] = {"i": self.index, "end": self.end, "items": self.items, "results": self.results}
        if self.failed:
            doc.update(failed=self.failed, inputs=self.inputs, error=self.error, batch_failed=self.batch_failed)
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Entry:
        return cls(
            doc["i"],
            doc["end"],
            doc["items"],
            doc["results"],
            doc.get("failed", 0),
            doc.get("inputs", ""),
            doc.get("error", ""),
            doc.get("batch_failed", False),
        )


@dataclass
class Journal:
    """Committed mini-batches of one job in one output folder; :meth:`commit` appends more."""

    output_dir: Path
    output_file: Path | None
    enabled: bool = True
    entries: list[Entry] = field(default_factory=list)
    _out_fd: int | None = None
    _journal_fd: int | None = None
    _size: int = 0
    _lock_fd: int | None = None

    @property
    def state_dir(self) -> Path:
        return self.output_dir / STATE_DIR

    @property
    def path(self) -> Path:
        return self.state_dir / JOURNAL

    @classmethod
    def open(
        cls,
        output_dir: Path,
        output_name: str | None,
        job: dict[str, Any],
        overwrite: bool = False,
        enabled: bool = True,
    ) -> Journal:
        """Open (resume) or start the journal for ``job`` in ``output_dir``."""
        output_dir.mkdir(parents=True, exist_ok=True)
        journal = cls(output_dir, output_dir / output_name if output_name else None, enabled)
        journal.state_dir.mkdir(exist_ok=True)
        journal._lock()
        try:
            if overwrite:
                journal.path.unlink(missing_ok=True)
                if journal.output_file is not None:
                    journal.output_file.unlink(missing_ok=True)
            if enabled and journal.path.exists():
                journal._recover(job)
            else:
                if (
                    journal.output_file is not None
                    and journal.output_file.exists()
                    and journal.output_file.stat().st_size
                ):
                    raise Conflict(
                        f"{journal.output_file} exists and no journal says which job wrote it; "
                        "choose another output folder or pass overwrite=True (--overwrite)."
                    )
                if enabled:
                    journal._journal_fd = os.open(journal.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                    header = {
                        "nbdeploy_batch": VERSION,
                        "job": job,
                        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    }
                    os.write(journal._journal_fd, (json.dumps(header, sort_keys=True) + "\n").encode())
                    os.fsync(journal._journal_fd)
            if journal.output_file is not None:
                journal._out_fd = os.open(journal.output_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                journal._size = os.fstat(journal._out_fd).st_size
        except BaseException:
            journal.close()  # releases the lock
            raise
        return journal

    def _lock(self) -> None:
        """Hold ``<state>/lock`` while the job runs: two runs appending to one output would interleave."""
        fd = os.open(self.state_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Conflict(
                f"another batch job is writing to {self.output_dir} right now; wait for it or choose another output folder."
            ) from None
        self._lock_fd = fd

    def _recover(self, job: dict[str, Any]) -> None:
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        try:
            header = json.loads(lines[0])
        except (ValueError, IndexError):
            raise Conflict(
                f"{self.path} is not a batch journal; choose another output folder or pass overwrite=True (--overwrite)."
            ) from None
        if header.get("job") != job:
            changed = sorted(
                k for k in set(job) | set(header.get("job", {})) if job.get(k) != header.get("job", {}).get(k)
            )
            raise Conflict(
                f"{self.output_dir} holds another job's journal ({', '.join(changed)} differ: the inputs, "
                "mini_batch_size or output changed); choose another output folder or pass overwrite=True (--overwrite)."
            )
        valid = len(lines[0]) + 1
        for line in lines[1:]:
            if not line.endswith(b"}"):
                break  # a torn line (the process died while writing it), or the final empty piece
            try:
                entry = Entry.from_json(json.loads(line))
            except (ValueError, KeyError):
                break
            if entry.index != len(self.entries):
                break
            self.entries.append(entry)
            valid += len(line) + 1
        valid = min(valid, len(raw))
        self._journal_fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        if valid < len(raw):
            os.ftruncate(self._journal_fd, valid)
            os.fsync(self._journal_fd)
        if self.output_file is not None:
            end = self.entries[-1].end if self.entries else 0
            size = self.output_file.stat().st_size if self.output_file.exists() else 0
            if size < end:
                raise Conflict(
                    f"{self.output_file} is shorter than its journal says ({size} < {end} bytes): it was changed "
                    "after the job wrote it; pass overwrite=True (--overwrite) to start again."
                )
            if size > end:
                with open(self.output_file, "r+b") as fh:
                    fh.truncate(end)
                    os.fsync(fh.fileno())

    @property
    def done(self) -> int:
        """Mini-batches committed (they are the first ``done`` of the plan)."""
        return len(self.entries)

    def commit(self, batch: list[tuple[Entry, bytes]]) -> None:
        """Append the rows of consecutive mini-batches, then their journal lines (each step fsynced)."""
        if not batch:
            return
        if self._out_fd is not None:
            for entry, text in batch:
                view = memoryview(text)
                while view:
                    written = os.write(self._out_fd, view)
                    view = view[written:]
                self._size += len(text)
                entry.end = self._size
            if self.enabled:
                os.fsync(self._out_fd)
        if self.enabled and self._journal_fd is not None:
            os.write(self._journal_fd, "".join(e.to_json() + "\n" for e, _ in batch).encode())
            os.fsync(self._journal_fd)
        self.entries += [e for e, _ in batch]

    def close(self) -> None:
        for fd in (self._out_fd, self._journal_fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._out_fd = self._journal_fd = self._lock_fd = None
