"""The master process: forks N workers, replaces crashed or hung ones, keeps the status file, relays
SIGTERM (drain) and SIGUSR1 (bind the public port), and exits 3 when a worker's ``init()`` fails."""

from __future__ import annotations

import errno
import logging
import mmap
import os
import select
import signal
import struct
import sys
import time
from typing import Any

from . import logs, sockets
from .status import StatusFile, signal_name

log = logging.getLogger("nbdeploy.server")


class Master:
    """Supervises the worker processes of one server."""

    def __init__(self, settings: Any) -> None:
        self.s = settings
        self.children: dict[int, int] = {}  # pid -> worker index
        self.states: dict[int, str] = {}  # index -> loading|ready|serving|failed
        self.stopping = False
        self.released = not settings.hold_public
        self.hang_after = (settings.scoring_timeout_ms + settings.hang_grace_ms) / 1000.0
        self.shm = mmap.mmap(-1, 8 * settings.workers)
        self._reserved = None
        self._reserved_public = None
        if settings.port == 0:
            # pick the public port here, once, and hold it (bound, not listening, SO_REUSEPORT) so that every
            # worker binds the same number and nobody else can take it in between
            self._reserved_public = sockets.bind(settings.host, 0, reuse_port=True, listen=False)
            settings.port = self._reserved_public.getsockname()[1]
            settings.port_reserved = True
        if settings.admin_port is not None:
            # reserve the number (bound, not listening) so every worker can bind it with SO_REUSEPORT
            self._reserved = sockets.bind(settings.admin_host, settings.admin_port, reuse_port=True, listen=False)
            settings.admin_port = self._reserved.getsockname()[1]
        self.status = StatusFile(settings.status_file, settings.admin_port, settings.port)
        self.rfd, self.wfd = os.pipe()
        self._signals: list[int] = []
        self._hung: set[int] = set()  # pids the watchdog killed

    # -- workers -------------------------------------------------------------------------------------
    def spawn(self, index: int) -> None:
        from . import worker  # imported before fork: children share the pages

        struct.pack_into("d", self.shm, index * 8, 0.0)
        self.states[index] = "loading"
        master_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            _die_with(master_pid)
            try:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                signal.set_wakeup_fd(-1)
                os.close(self.rfd)
                wfd = self.wfd

                def report(state: str, error: str) -> None:
                    line = f"{index}\t{state}\t{error.replace(chr(10), ' ')[:400]}\n".encode()
                    try:
                        os.write(wfd, line)
                    except OSError:
                        pass

                code = worker.run(self.s, index, report, self.shm)
            except BaseException:
                log.exception("Worker %d crashed", index)
            finally:
                os._exit(code)
        self.children[pid] = index
        log.info("Booting worker %d with pid %d", index, pid)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals.append(signum)

    def _aggregate(self) -> None:
        if self.stopping:
            return
        states = set(self.states.values())
        if states == {"serving"}:
            self.status.set("serving")
        elif states <= {"ready", "serving"} and not self.released:
            self.status.set("ready")
        elif self.status.data["state"] in (None, "loading"):
            self.status.set("loading")

    def _read_reports(self) -> None:
        try:
            data = os.read(self.rfd, 65536)
        except BlockingIOError:
            return
        for line in data.decode(errors="replace").splitlines():
            index_s, _, rest = line.partition("\t")
            state, _, error = rest.partition("\t")
            self.states[int(index_s)] = state
            if state == "failed":
                self.status.set("failed", error or None)
        self._aggregate()

    def _reap(self) -> int | None:
        """Collect exited workers; returns an exit code when the whole server must stop."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return 0 if self.stopping else None
            if pid == 0:
                return None
            index = self.children.pop(pid, None)
            if index is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                if not self.children:
                    return 0
                continue
            self._record_exit(index, pid, code)
            if code in (3, 4):
                log.error("Worker %d failed to boot (exit code %d); stopping the server", index, code)
                self.status.set("failed", self.status.data["error"] or f"worker exit code {code}")
                self.stop_children(signal.SIGTERM)
                self._wait_children(10.0)
                return code if code == 3 else 1
            if code < 0:
                log.error("Worker %d (pid %d) was killed by %s; starting a new one", index, pid, signal_name(-code))
            else:
                log.error("Worker %d (pid %d) exited with code %s; starting a new one", index, pid, code)
            self.status.update(worker_restarts=self.status.data["worker_restarts"] + 1)
            self.spawn(index)  # it binds the public port itself once released

    def _record_exit(self, index: int, pid: int, code: int) -> None:
        """Put a worker's end (exit code or signal, and why) in the status file."""
        if pid in self._hung:
            self._hung.discard(pid)
            reason = "hung"
        else:
            reason = {3: "init failed", 4: "bind failed"}.get(code, "crashed")
        self.status.update(
            last_worker_exit={
                "worker": index,
                "pid": pid,
                "exit_code": code if code >= 0 else None,
                "signal": signal_name(-code) if code < 0 else None,
                "reason": reason,
                "time": round(time.time(), 3),
            }
        )

    def _watchdog(self) -> None:
        now = time.monotonic()  # workers write time.monotonic() (one clock for every process)
        for pid, index in list(self.children.items()):
            started = struct.unpack_from("d", self.shm, index * 8)[0]
            if started and now - started > self.hang_after:
                log.error(
                    "Worker %d (pid %d) has been in run() for %.1f s (scoring timeout %d ms); replacing it",
                    index,
                    pid,
                    now - started,
                    self.s.scoring_timeout_ms,
                )
                struct.pack_into("d", self.shm, index * 8, 0.0)
                self._hung.add(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def stop_children(self, sig: int) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def _wait_children(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.children and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                self.children.pop(pid, None)
            else:
                time.sleep(0.05)
        self.stop_children(signal.SIGKILL)

    # -- main loop -----------------------------------------------------------------------------------
    def run(self) -> int:
        os.set_blocking(self.rfd, False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGCHLD):
            signal.signal(sig, self._on_signal)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        self.status.set("loading")
        for index in range(self.s.workers):
            self.spawn(index)
        drain_deadline = None
        while True:
            try:
                ready, _, _ = select.select([self.rfd, wake_r], [], [], 0.5)
            except InterruptedError:
                ready = []
            except OSError as exc:
                if exc.errno != errno.EINTR:
                    raise
                ready = []
            if wake_r in ready:
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    pass
            if self.rfd in ready:
                self._read_reports()
            while self._signals:
                signum = self._signals.pop(0)
                if signum in (signal.SIGTERM, signal.SIGINT) and not self.stopping:
                    log.info("Draining: finishing in-flight requests, then exiting")
                    self.stopping = True
                    self.status.update(stop_signal=signal_name(signum))
                    self.status.set("stopping")
                    self.stop_children(signal.SIGTERM)
                    drain_deadline = time.monotonic() + self.s.graceful_timeout_s + 5
                elif signum == signal.SIGUSR1 and not self.released and not self.stopping:
                    log.info("SIGUSR1: binding the public port %d", self.s.port)
                    self.released = True
                    self.s.hold_public = False  # workers started from now on (replacements) bind it at once
                    self.stop_children(signal.SIGUSR1)
            code = self._reap()
            if code is not None:
                if self.stopping:
                    self.status.set("stopping")
                return code
            if drain_deadline and time.monotonic() > drain_deadline:
                self.stop_children(signal.SIGKILL)
            if not self.stopping:
                self._watchdog()


def serve(settings: Any) -> int:
    """Run the server (master + workers) until it stops; returns the exit code (also in the status file)."""
    logs.setup(settings.log_format)
    settings.export_env()
    if not settings.hold_public and not settings.reuse_port and settings.port != 0:
        try:  # fail early, and clearly, when someone else holds the public port
            sockets.bind(settings.host, settings.port, reuse_port=False, listen=False).close()
        except OSError as exc:
            log.error("Cannot bind %s:%d: %s", settings.host, settings.port, exc)
            StatusFile(settings.status_file, settings.admin_port, settings.port).update(
                state="failed", error=str(exc), exit_code=1
            )
            return 1
    try:
        master = Master(settings)
    except OSError as exc:  # the port 0 or admin port reservation
        log.error("Cannot bind %s: %s", settings.host, exc)
        StatusFile(settings.status_file, settings.admin_port, settings.port).update(
            state="failed", error=f"cannot bind: {exc}", exit_code=1
        )
        return 1
    log.info(
        "nbdeploy scoring server: entry script %s, model dir %s, %d worker(s), %s:%d",
        settings.entry_path or "main.py",
        settings.model_dir,
        settings.workers,
        settings.host,
        settings.port,
    )
    code = 1
    try:
        code = master.run()
    finally:
        master.status.update(exit_code=code)
    return code


def _die_with(master_pid: int) -> None:
    """In a worker: get SIGTERM (drain, then exit) when the master dies, so no orphan keeps serving its port.

    Linux's PR_SET_PDEATHSIG; elsewhere nothing (the process target's stop reaps the group). A master that died
    between fork() and here is caught by the parent check.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            return
    if os.getppid() != master_pid:
        os._exit(1)
