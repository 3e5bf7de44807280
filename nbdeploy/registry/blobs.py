"""Content-addressed blob store: ``blobs/sha256/<2 hex>/<62 hex>``, written through ``tmp/`` atomically.

A blob is written by streaming its source in chunks to a temporary file in ``tmp/`` while hashing it,
fsync-ed, then renamed into place (or dropped if that content is stored already: deduplication). Blobs are
read-only (0444). Callers hold :meth:`Workspace.writer_lock` from the first write until the database
refers to the blob, so gc never removes it in between.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from nbdeploy.workspace import Workspace

log = logging.getLogger(__name__)

CHUNK_SIZE = 4 << 20
WRITEBACK_BYTES = 16 << 20
ALGORITHM = "sha256"

#: Test seam: called after each chunk is written with (temporary file, bytes written so far).
_after_chunk: Callable[[Path, int], None] | None = None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _copy_hashing(src: Path, fd: int, tmp_path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    buffers = [bytearray(CHUNK_SIZE), bytearray(CHUNK_SIZE)]
    pending: Future[None] | None = None
    size = flushed = 0
    advise = getattr(os, "posix_fadvise", None)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbdeploy-hash") as pool, \
            open(src, "rb", buffering=0) as f:
        i = 0
        while True:
            buf = buffers[i % 2]  # its previous chunk is hashed (awaited below) and written
            n = f.readinto(buf)
            if not n:
                break
            chunk = memoryview(buf)[:n]
            if pending is not None:
                pending.result()  # keep the hash updates in order
            pending = pool.submit(hasher.update, chunk)
            written = 0
            while written < n:
                written += os.write(fd, chunk[written:])
            size += n
            i += 1
            if advise is not None and size - flushed >= WRITEBACK_BYTES:
                advise(fd, flushed, size - flushed, os.POSIX_FADV_DONTNEED)  # starts writeback early
                flushed = size
            if _after_chunk is not None:
                _after_chunk(tmp_path, size)
        if pending is not None:
            pending.result()
    return hasher.hexdigest(), size


class BlobStore:
    """The blob store of one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.root = workspace.blobs_dir / ALGORITHM
        self.tmp = workspace.tmp_dir

    def path(self, digest: str) -> Path:
        """Where the blob with this hex digest lives."""
        return self.root / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put_file(self, src: Path) -> tuple[str, int]:
        """Store the content of file ``src``; return ``(hex digest, size)``.

        Streams in chunks (two buffers: memory stays flat), hashing each chunk in a helper thread while
        the next is written, and asks the kernel to start writing back every few MiB so the final fsync
        is short. What is hashed is exactly what is written, even if ``src`` changes meanwhile.
        """
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix="blob-", dir=self.tmp)
        tmp_path = Path(tmp_name)
        try:
            digest, size = _copy_hashing(src, fd, tmp_path)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp_path.unlink(missing_ok=True)
            raise
        os.close(fd)
        final = self.path(digest)
        if final.is_file():
            tmp_path.unlink()
            log.debug("blob %s already stored", digest)
            return digest, size
        os.chmod(tmp_path, 0o444)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_path, final)
        _fsync_dir(final.parent)
        return digest, size

    def remove(self, digest: str) -> int:
        """Delete a blob; return the bytes freed (0 if it was not there)."""
        p = self.path(digest)
        try:
            size = p.stat().st_size
            p.unlink()
        except FileNotFoundError:
            return 0
        return size

    def iter_blobs(self) -> Iterator[tuple[str, Path]]:
        """Every stored ``(digest, path)``."""
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if not sub.is_dir() or len(sub.name) != 2:
                continue
            for f in sorted(sub.iterdir()):
                yield sub.name + f.name, f
