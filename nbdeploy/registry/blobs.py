"""Content-addressed blob store: ``blobs/sha256/<2 hex>/<62 hex>``, written through ``tmp/`` atomically.

A blob is written by streaming its source in chunks to a temporary file in ``tmp/`` while hashing it,
fsync-ed, then renamed into place. Content stored already is stored once (deduplication): the fresh copy
replaces the stored one, so re-registering the pristine file of a blob changed on disk repairs it. Blobs
are read-only (0444) and never handed out as links: :func:`clone_file` gives readers their own copy (a
reflink where the filesystem shares extents). Callers hold :meth:`Workspace.writer_lock` from the first
write until the database refers to the blob, so gc never removes it in between.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from nbdeploy.errors import InvalidInput
from nbdeploy.workspace import Workspace, storage_error

log = logging.getLogger(__name__)

CHUNK_SIZE = 4 << 20
COPY_CHUNK = 64 << 20
WRITEBACK_BYTES = 16 << 20
ALGORITHM = "sha256"

#: ioctl number of FICLONE (Linux): make the destination share the source's extents (btrfs, XFS, bcachefs, ...).
FICLONE = 0x40049409
#: errno values meaning "this filesystem (pair) cannot do that", not a failure of the copy itself
_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EBADF})
#: errno values of the workspace's disk refusing a write (full, read-only, no permission, quota)
WRITE_REFUSED = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})

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
    """Copy ``src`` into ``fd`` and hash it; the kernel copies while this thread hashes, when it can."""
    if hasattr(os, "copy_file_range"):
        try:
            return _kernel_copy_hashing(src, fd, tmp_path)
        except _NoKernelCopy:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
    return _user_copy_hashing(src, fd, tmp_path)


class _NoKernelCopy(Exception):
    """copy_file_range is refused for this pair of files (old kernel, some filesystems)."""


def _kernel_copy_hashing(src: Path, fd: int, tmp_path: Path) -> tuple[str, int]:
    """``copy_file_range`` in a helper thread (no copy through user space) while this thread hashes ``src``.

    Both read the source from the page cache, and sha256 and the copy run on two cores. The source's size
    and modification time are compared before and after, so a file changed meanwhile is refused rather
    than stored under a digest that does not match its content.
    """
    with open(src, "rb", buffering=0) as f:
        before = os.fstat(f.fileno())
        failure: list[BaseException] = []
        advise = getattr(os, "posix_fadvise", None)

        def copy() -> None:
            offset = 0
            try:
                while offset < before.st_size:
                    n = os.copy_file_range(f.fileno(), fd, min(COPY_CHUNK, before.st_size - offset), offset, offset)
                    if n == 0:
                        break
                    if advise is not None:
                        advise(fd, offset, n, os.POSIX_FADV_DONTNEED)  # starts writeback early: a short final fsync
                    offset += n
                    if _after_chunk is not None:
                        _after_chunk(tmp_path, offset)
                if offset != before.st_size:
                    failure.append(InvalidInput(f"{src} shrank while it was being registered; register it again."))
            except OSError as exc:
                failure.append(
                    _NoKernelCopy()
                    if offset == 0 and exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)
                    else exc
                )

        copier = threading.Thread(target=copy, name="nbdeploy-copy", daemon=True)
        copier.start()
        hasher = hashlib.sha256()
        buf = bytearray(CHUNK_SIZE)
        size = 0
        with open(src, "rb", buffering=0) as reader:
            while n := reader.readinto(buf):
                hasher.update(memoryview(buf)[:n])
                size += n
        copier.join()
        after = os.fstat(f.fileno())
    if failure:
        raise failure[0]
    if size != before.st_size or (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise InvalidInput(f"{src} changed while it was being registered; register it again once it is complete.")
    return hasher.hexdigest(), size


def _user_copy_hashing(src: Path, fd: int, tmp_path: Path) -> tuple[str, int]:
    """Read and write in chunks, hashing each chunk (what is hashed is exactly what is written)."""
    hasher = hashlib.sha256()
    buffers = [bytearray(CHUNK_SIZE), bytearray(CHUNK_SIZE)]
    pending: Future[None] | None = None
    size = flushed = 0
    advise = getattr(os, "posix_fadvise", None)
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbdeploy-hash") as pool,
        open(src, "rb", buffering=0) as f,
    ):
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


def clone_file(src: Path, dst_fd: int) -> str:
    """Fill the empty file ``dst_fd`` with the content of ``src``, as cheaply as the filesystem allows.

    Returns how: ``"reflink"`` (FICLONE: shared extents, copy-on-write, instant), ``"kernel copy"``
    (``copy_file_range``: no copy through user space; a reflink too on filesystems that do it implicitly)
    or ``"copy"``. Either way the destination is a separate file: writing it never changes ``src``.
    """
    with open(src, "rb", buffering=0) as f:
        try:
            import fcntl

            fcntl.ioctl(dst_fd, FICLONE, f.fileno())
            return "reflink"
        except ImportError:  # pragma: no cover - Windows
            pass
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise
        size = os.fstat(f.fileno()).st_size
        offset = 0
        if hasattr(os, "copy_file_range"):
            try:
                while offset < size:
                    n = os.copy_file_range(f.fileno(), dst_fd, min(COPY_CHUNK, size - offset), offset, offset)
                    if n == 0:
                        break
                    offset += n
                return "kernel copy"
            except OSError as exc:
                if offset or exc.errno not in _UNSUPPORTED:
                    raise
        os.lseek(dst_fd, 0, os.SEEK_SET)
        while chunk := f.read(CHUNK_SIZE):
            view, written = memoryview(chunk), 0
            while written < len(chunk):
                written += os.write(dst_fd, view[written:])
        return "copy"


def copy_verified(src: Path, dst_fd: int, digest: str) -> bool:
    """Copy ``src`` into the empty file ``dst_fd`` while hashing it; whether its sha256 is ``digest``."""
    got, _ = _copy_hashing(src, dst_fd, Path(f"/proc/self/fd/{dst_fd}"))
    return got == digest


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    hasher = hashlib.sha256()
    buf = bytearray(CHUNK_SIZE)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            hasher.update(memoryview(buf)[:n])
    return hasher.hexdigest()


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

        The kernel copies (``copy_file_range``) while this thread hashes, with a flat memory profile, and
        writeback starts early so the final fsync is short; a source that changes meanwhile is refused.
        Where the kernel copy is refused, chunks are read, hashed and written from user space instead.

        OS errors of the workspace's disk (full, read-only) raise :class:`WorkspaceError`; errors reading
        ``src`` raise :class:`InvalidInput` naming it. Content stored already replaces the stored blob (its
        own pristine copy, just written and hashed): a blob changed on disk is repaired.
        """
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix="blob-", dir=self.tmp)
        except OSError as exc:
            raise storage_error(self.workspace.path, f"store a copy of {_shown(src)}", exc) from exc
        tmp_path = Path(tmp_name)
        try:
            digest, size = _copy_hashing(src, fd, tmp_path)
            os.fsync(fd)
        except BaseException as exc:
            os.close(fd)
            tmp_path.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                if exc.errno in WRITE_REFUSED and exc.filename is None:  # the write side: src errors name src
                    raise storage_error(self.workspace.path, f"store a copy of {_shown(src)}", exc) from exc
                raise InvalidInput(f"Cannot read {_shown(src)}: {exc.strerror or exc}.") from exc
            raise
        os.close(fd)
        final = self.path(digest)
        try:
            if final.is_file():
                stored = final.stat().st_size
                if stored != size:
                    log.warning(
                        "blob %s had %d bytes instead of %d: it was changed on disk; repaired from %s",
                        digest,
                        stored,
                        size,
                        _shown(src),
                    )
                else:
                    log.debug("blob %s already stored; replaced by the fresh copy", digest)
            os.chmod(tmp_path, 0o444)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_path, final)
            _fsync_dir(final.parent)
        except OSError as exc:
            tmp_path.unlink(missing_ok=True)
            raise storage_error(self.workspace.path, f"store a copy of {_shown(src)}", exc) from exc
        return digest, size

    def verify(self, digest: str, size: int | None = None, quick: bool = False) -> str | None:
        """What is wrong with a stored blob (missing, other size, other content), or None when it is intact.

        ``quick`` compares sizes only (no read).
        """
        p = self.path(digest)
        try:
            actual = p.stat().st_size
        except FileNotFoundError:
            return "missing"
        if size is not None and actual != size:
            return f"{actual} bytes instead of {size}"
        if quick:
            return None
        got = file_sha256(p)
        return None if got == digest else f"content changed (sha256 {got[:12]}...)"

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


def _shown(path: Path) -> str:
    """A path as text that prints anywhere (undecodable bytes as \\xNN)."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")
