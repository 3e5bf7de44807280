"""A background thread that calls a refresh function every few seconds until stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Poller:
    """Calls ``tick()`` every ``interval`` seconds on a daemon thread; :meth:`stop` ends it promptly."""

    def __init__(self, tick: Callable[[], object], interval: float = 2.0, name: str = "nbdeploy-poller") -> None:
        self.tick = tick
        self.interval = interval
        self.ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> Poller:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end and wait for it (never from the thread itself)."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
                self.ticks += 1
            except Exception:
                log.debug("poller tick failed", exc_info=True)
