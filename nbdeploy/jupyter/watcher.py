"""One watcher per workspace: notices changes and pushes them to the side panels that listen.

A thread checks the workspace database's ``PRAGMA data_version`` every ``check_s`` (it changes when any
other connection, in any process, commits: a deploy from a notebook, the CLI, the panel itself). Only
then does it re-read the service records, and it re-observes (asks the target) only the services whose
records changed. Services that are Transitioning or Deleting, or have an update in flight, are observed
every ``fast_poll_s``; every service every ``slow_poll_s`` (a crash writes nothing to the database).
Differences go to subscribers as events::

    {"type": "snapshot", "services": [...]}   first scan, and on subscribe when one is known
    {"type": "service", "service": {...}}     a service appeared or its summary changed
    {"type": "removed", "name": "..."}        a service is gone
    {"type": "models"}                        the model registry changed (refetch /models)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbdeploy.errors import NbdeployError
from nbdeploy.jupyter import api
from nbdeploy.service import Webservice
from nbdeploy.service_records import ServiceStore
from nbdeploy.workspace import Workspace

log = logging.getLogger(__name__)

Event = dict[str, Any]
Subscriber = Callable[[Event], None]
BUSY_STATES = ("Transitioning", "Deleting", "Unknown")


@dataclass
class _Entry:
    service: Webservice
    fingerprint: tuple[Any, ...]
    doc: dict[str, Any]
    started: bool = True
    """Whether a target runs the serving revision; a record not started yet changes only by a database write."""


class WorkspaceWatcher:
    """Watches one workspace in a daemon thread; see the module docstring."""

    def __init__(
        self,
        workspace: Workspace,
        check_s: float = 0.1,
        fast_poll_s: float = 0.5,
        slow_poll_s: float = 10.0,
        linger_s: float = 300.0,
    ) -> None:
        self.workspace = workspace
        self.check_s, self.fast_poll_s, self.slow_poll_s, self.linger_s = check_s, fast_poll_s, slow_poll_s, linger_s
        self._entries: dict[str, _Entry] = {}
        self._models_fingerprint: tuple[Any, ...] | None = None
        self._scanned = threading.Event()
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._idle_since: float | None = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_exit: Callable[[WorkspaceWatcher], None] | None = None
        self.scans = 0
        """How many times the records were re-read (for tests and the benchmark)."""

    # -- life cycle --------------------------------------------------------------------------------
    def start(self) -> WorkspaceWatcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"nbdeploy-watch {self.workspace.path}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- subscribers -------------------------------------------------------------------------------
    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` (from the watcher thread) for every change; returns the unsubscribe function.

        When a first scan is known, ``callback`` gets a snapshot event at once, before any later event.
        """
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError("this watcher has stopped; use subscribe_to()")
            self._subscribers.append(callback)
            self._idle_since = None
            if self._scanned.is_set():
                callback({"type": "snapshot", "services": [e.doc for e in self._entries.values()]})

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)
                if not self._subscribers:
                    self._idle_since = time.monotonic()

        return unsubscribe

    def snapshot(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """The summaries as last observed (waits for the first scan)."""
        if not self._scanned.wait(timeout):
            raise NbdeployError(
                f"the workspace watcher of {self.workspace.path} did not finish its first scan in {timeout:.0f}s"
            )
        with self._lock:
            return sorted((e.doc for e in self._entries.values()), key=lambda d: d["name"])

    def _emit(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # a broken subscriber never stops the watcher
                log.exception("nbdeploy watcher: subscriber failed")

    # -- the loop ----------------------------------------------------------------------------------
    def _run(self) -> None:
        version: int | None = None
        next_fast = next_slow = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                with self._lock:  # no subscriber for a while: stop (subscribe() sees _stop under the same lock)
                    if self._idle_since is not None and now - self._idle_since > self.linger_s:
                        self._stop.set()
                        break
                current = self._data_version()
                if current != version or not self._scanned.is_set():
                    version = current
                    self._rescan()
                    next_slow = now + self.slow_poll_s
                elif now >= next_slow:
                    self._observe(list(self._entries))
                    next_slow = now + self.slow_poll_s
                elif now >= next_fast:
                    self._observe([n for n, e in self._entries.items() if _busy(e)])
                    next_fast = now + self.fast_poll_s
                self._stop.wait(self.check_s)
        except Exception:
            log.exception("nbdeploy watcher of %s stopped", self.workspace.path)
        finally:
            self.workspace.close()
            if self.on_exit is not None:
                self.on_exit(self)

    def _data_version(self) -> int | None:
        """Changes whenever another connection commits; None while the workspace does not exist."""
        if not self.workspace.exists():
            return None
        return int(self.workspace.db(create=False).execute("PRAGMA data_version").fetchone()[0])

    def _rescan(self) -> None:
        self.scans += 1
        first = not self._scanned.is_set()
        seen: set[str] = set()
        changed: list[dict[str, Any]] = []
        for svc in Webservice.list(self.workspace) if self.workspace.exists() else []:
            try:
                revisions = svc.revisions()
                started = ServiceStore(self.workspace).revision(svc.name, svc.revision).handle is not None
                fingerprint = (*api.service_fingerprint(svc, revisions), started)
                seen.add(svc.name)
                old = self._entries.get(svc.name)
                if old is not None and old.fingerprint == fingerprint:
                    continue
                doc = api.service_summary(svc, revisions)
            except NbdeployError:  # deleted between the list and the read: the next scan drops it
                continue
            with self._lock:
                self._entries[svc.name] = _Entry(svc, fingerprint, doc, started)
            if old is None or old.doc != doc:
                changed.append(doc)
        gone = [name for name in self._entries if name not in seen]
        with self._lock:
            for name in gone:
                del self._entries[name]
        models = api.registry_fingerprint(self.workspace)
        models_changed = self._models_fingerprint is not None and models != self._models_fingerprint
        self._models_fingerprint = models
        if first:
            with self._lock:
                self._scanned.set()
                docs = [e.doc for e in self._entries.values()]
            self._emit({"type": "snapshot", "services": docs})
            return
        for doc in changed:
            self._emit({"type": "service", "service": doc})
        for name in gone:
            self._emit({"type": "removed", "name": name})
        if models_changed:
            self._emit({"type": "models"})

    def _observe(self, names: list[str]) -> None:
        for name in names:
            entry = self._entries.get(name)
            if entry is None:
                continue
            fresh = api.observe_state(entry.service)
            doc = {**entry.doc, **fresh}
            if doc != entry.doc:
                with self._lock:
                    entry.doc = doc
                self._emit({"type": "service", "service": doc})


def _busy(entry: _Entry) -> bool:
    """Worth observing often: changing without a database write (a revision starting up, a delete stopping)."""
    doc = entry.doc
    return (doc.get("state") in BUSY_STATES or doc.get("inFlight") is not None) and entry.started


_WATCHERS: dict[str, WorkspaceWatcher] = {}
_WATCHERS_LOCK = threading.Lock()


def watcher_for(workspace: Workspace, **options: float) -> WorkspaceWatcher:
    """The running watcher of ``workspace`` (started on first use; it stops itself a while after its last subscriber)."""
    key = str(workspace.path)
    with _WATCHERS_LOCK:
        watcher = _WATCHERS.get(key)
        if watcher is None or not watcher.running or watcher._stop.is_set():
            watcher = WorkspaceWatcher(workspace, **options)
            watcher.on_exit = _forget
            _WATCHERS[key] = watcher
            watcher.start()
        return watcher


def subscribe_to(workspace: Workspace, callback: Subscriber, **options: float) -> Callable[[], None]:
    """Subscribe ``callback`` to the workspace's watcher (starting one when none runs); returns the unsubscribe function."""
    while True:
        watcher = watcher_for(workspace, **options)
        try:
            return watcher.subscribe(callback)
        except RuntimeError:  # it stopped for idleness just now: the next call starts a fresh one
            _forget(watcher)


def _forget(watcher: WorkspaceWatcher) -> None:
    with _WATCHERS_LOCK:
        if _WATCHERS.get(str(watcher.workspace.path)) is watcher:
            del _WATCHERS[str(watcher.workspace.path)]


def stop_all() -> None:
    """Stop every watcher (server shutdown, tests)."""
    with _WATCHERS_LOCK:
        watchers = list(_WATCHERS.values())
        _WATCHERS.clear()
    for watcher in watchers:
        watcher.stop()
