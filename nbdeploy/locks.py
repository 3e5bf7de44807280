"""One lifecycle operation at a time per service, across processes.

:func:`service_lock` takes an exclusive ``flock`` on ``<workspace>/locks/services/<name>.lock``: the kernel
releases it when the holder exits, however it dies (SIGKILL included), so a lock is never left behind. The
holder writes who it is (pid, operation, since when) into the file; a second caller waits up to
``wait_s`` seconds, telling ``progress`` once who holds it, then is refused with :class:`~nbdeploy.errors.Conflict`.

The lock files live outside ``services/<name>/`` because ``delete`` removes that folder while holding the
lock. The lock is re-entrant within one thread (``deploy(overwrite=True)`` deletes the old service under
its own lock).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdeploy.errors import Conflict

if TYPE_CHECKING:
    from nbdeploy.workspace import Workspace

LOCK_WAIT_S = 60.0
"""How long a second operation waits for the first (``NBDEPLOY_LOCK_WAIT_S`` overrides it)."""

_held: dict[tuple[str, int], tuple[int, int, str]] = {}
"""(path, thread) -> (fd, depth, operation) of locks held here: re-entrant within a thread; another thread
opens its own file description, which ``flock`` treats like another process."""
_guard = threading.RLock()


def lock_path(workspace: Workspace, name: str) -> Path:
    """The lock file of service ``name``."""
    return Path(workspace.path) / "locks" / "services" / f"{name}.lock"


def default_wait() -> float:
    try:
        return float(os.environ.get("NBDEPLOY_LOCK_WAIT_S", LOCK_WAIT_S))
    except ValueError:
        return LOCK_WAIT_S


def holder(workspace: Workspace, name: str) -> dict[str, Any]:
    """Who holds (or last held) the lock of ``name``: ``{"pid", "operation", "since"}``; {} when unknown."""
    try:
        data = json.loads(lock_path(workspace, name).read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def service_lock(
    workspace: Workspace,
    name: str,
    operation: str,
    wait_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the lifecycle lock of service ``name`` for ``operation`` (``update``, ``delete``, ...).

    Raises :class:`Conflict` naming the holder (pid, operation) when it is still held after ``wait_s``.
    Without ``fcntl`` (Windows) this is a no-op.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = lock_path(workspace, name)
    key = (str(path), threading.get_ident())
    with _guard:
        if key in _held:  # re-entrant: this process holds it already
            fd, depth, outer = _held[key]
            _held[key] = (fd, depth + 1, outer)
            try:
                yield
            finally:
                fd, depth, outer = _held[key]
                if depth > 1:
                    _held[key] = (fd, depth - 1, outer)
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        _acquire(fcntl, fd, workspace, name, operation, default_wait() if wait_s is None else wait_s, progress)
        info = {
            "pid": os.getpid(),
            "operation": operation,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        with _guard:
            _held[key] = (fd, 1, operation)
        try:
            yield
        finally:
            with _guard:
                _held.pop(key, None)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(
    fcntl: Any,
    fd: int,
    workspace: Workspace,
    name: str,
    operation: str,
    wait_s: float,
    progress: Callable[[str], None] | None,
) -> None:
    deadline = time.monotonic() + max(wait_s, 0.0)
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        who = _describe(holder(workspace, name))
        if time.monotonic() >= deadline:
            raise Conflict(
                f"Service {name!r} is busy: {who} is running; {operation} waited {wait_s:.0f}s. "
                "Try again when it has finished (or stop that process)."
            )
        if not told and progress is not None:
            progress(f"waiting for {who} on {name} to finish (up to {wait_s:.0f}s)")
            told = True
        time.sleep(0.1)


def _describe(info: dict[str, Any]) -> str:
    if not info.get("pid"):
        return "another operation"
    since = f" since {info['since']}" if info.get("since") else ""
    return f"{info.get('operation', 'an operation')} (pid {info['pid']}{since})"
