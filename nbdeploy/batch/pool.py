"""A pool of batch worker processes: start them, hand out mini-batches, watch for timeouts and crashes.

Each worker is its own session (Ctrl-C in a terminal reaches only the runner) and dies with the runner. A
worker that crashes or overruns ``run_invocation_timeout`` is killed with its process group and replaced
(the replacement calls ``init()`` again); the mini-batch it held comes back as a failed try.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from nbdeploy.batch.plan import MiniBatch

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What became of one try of one mini-batch."""

    index: int
    ok: bool
    items: int
    results: int = 0
    text: bytes = b""
    error: str = ""


class InitFailed(Exception):
    """A worker's ``init()`` raised, or the worker died before it was ready."""

    def __init__(self, worker: int, detail: str, log_path: Path) -> None:
        super().__init__(detail)
        self.worker, self.detail, self.log_path = worker, detail, log_path


@dataclass
class _Worker:
    number: int
    proc: subprocess.Popen[bytes]
    conn: Connection
    log_path: Path
    ready: bool = False
    batch: MiniBatch | None = None
    started: float = 0.0
    deadline: float = field(default=float("inf"))


class WorkerPool:
    """``size`` workers running the entry script; :meth:`submit` to an idle one, :meth:`poll` for outcomes."""

    def __init__(
        self, size: int, setup: dict[str, Any], env: dict[str, str], cwd: str, log_dir: Path, run_timeout: float
    ) -> None:
        self.size, self.setup, self.env, self.cwd = size, setup, env, cwd
        self.capacity = size
        self.log_dir, self.run_timeout = log_dir, run_timeout
        self._workers: list[_Worker] = []
        self._spawned = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for number in range(self.size):
            self._workers.append(self._spawn(number))

    def _spawn(self, number: int) -> _Worker:
        parent_end, child_end = socket.socketpair()
        log_path = self.log_dir / f"worker-{number}.log"
        env = {**self.env, "NBDEPLOY_BATCH_WORKER": str(number)}
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "nbdeploy.batch.worker", "--fd", str(child_end.fileno())],
                pass_fds=[child_end.fileno()],
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child_end.close()
        conn = Connection(parent_end.detach())
        try:
            conn.send(self.setup)
        except OSError:  # it died at once: poll() reads the EOF and reports why
            pass
        self._spawned += 1
        log.debug("batch worker %d: pid %d", number, proc.pid)
        return _Worker(number, proc, conn, log_path)

    def close(self, kill: bool = False, grace_s: float = 5.0) -> None:
        """Stop every worker: politely (finish, then ``shutdown()``), or at once with ``kill=True``."""
        for worker in self._workers:
            if (
                kill or worker.batch is not None or not worker.ready
            ):  # a replacement still in init() has nothing to finish
                _kill(worker.proc)
            else:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
        deadline = time.monotonic() + grace_s
        for worker in self._workers:
            try:
                worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill(worker.proc)
                worker.proc.wait()
            worker.conn.close()
        self._workers = []

    # -- work ------------------------------------------------------------------------------------
    @property
    def idle(self) -> int:
        return sum(1 for w in self._workers if w.ready and w.batch is None)

    @property
    def busy(self) -> int:
        return sum(1 for w in self._workers if w.batch is not None)

    def submit(self, batch: MiniBatch) -> None:
        worker = next(w for w in self._workers if w.ready and w.batch is None)
        worker.batch, worker.started = batch, time.monotonic()
        worker.deadline = worker.started + self.run_timeout
        try:
            worker.conn.send((batch.index, batch))
        except OSError:  # the worker died meanwhile: poll() reads the EOF and fails this try
            pass

    def poll(self, timeout: float) -> list[Outcome]:
        """Outcomes that arrived within ``timeout`` seconds (raises :class:`InitFailed`)."""
        now = time.monotonic()
        next_deadline = min((w.deadline for w in self._workers if w.batch is not None), default=float("inf"))
        ready = wait([w.conn for w in self._workers], timeout=max(0.0, min(timeout, next_deadline - now)))
        outcomes: list[Outcome] = []
        for conn in ready:
            worker = next(w for w in self._workers if w.conn is conn)
            try:
                message: Any = worker.conn.recv()
            except (EOFError, OSError):
                outcomes += self._replace(worker, self._death_reason(worker))
                continue
            kind = message[0]
            if kind == "ready":
                worker.ready = True
            elif kind == "init_failed":
                raise InitFailed(worker.number, message[1], worker.log_path)
            else:
                _, index, items, *rest = message
                worker.batch, worker.deadline = None, float("inf")
                if kind == "done":
                    outcomes.append(Outcome(index, True, items, results=rest[0], text=rest[1]))
                else:
                    outcomes.append(Outcome(index, False, items, error=rest[0]))
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.batch is not None and now > worker.deadline:
                reason = (
                    f"run() did not return within run_invocation_timeout={self.run_timeout:g}s; the worker was killed"
                )
                outcomes += self._replace(worker, reason)
        return outcomes

    def _death_reason(self, worker: _Worker) -> str:
        try:
            code = worker.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _kill(worker.proc)
            code = worker.proc.wait()
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory?)" if -code == signal.SIGKILL else ""
            return f"the worker process was killed by {name}{hint}"
        return f"the worker process exited with code {code}"

    def _replace(self, worker: _Worker, reason: str) -> list[Outcome]:
        """Kill ``worker``, start another in its place; its mini-batch (if any) failed this try."""
        _kill(worker.proc)
        worker.proc.wait()
        worker.conn.close()
        if not worker.ready and worker.batch is None:
            raise InitFailed(worker.number, f"{reason} before init() finished", worker.log_path)
        tail = _tail(worker.log_path)
        error = (f"Worker log tail:\n{tail}\n" if tail else "") + reason  # the last line says what happened
        outcome = [Outcome(worker.batch.index, False, worker.batch.items, error=error)] if worker.batch else []
        self._workers[self._workers.index(worker)] = self._spawn(worker.number)
        return outcome


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover
        proc.kill()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        data = path.read_bytes()[-8192:]
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
