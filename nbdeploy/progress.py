"""Progress sinks: where long operations (deploy, update, build) report what they are doing.

Library calls never print; they report to a sink. The default sink logs. ``show_output=True`` picks the
plain-text sink, which prints one readable line per change (what papermill and terminals show). The
notebook layer installs a factory that returns the live widget panel when a widget frontend is present.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

log = logging.getLogger("nbdeploy.progress")


class ProgressSink(Protocol):
    """Receives progress of one operation on one service."""

    def state(self, service: str, state: str, reason: str = "") -> None:
        """The service's state changed (or its reason did)."""

    def line(self, service: str, text: str) -> None:
        """A log or build line worth showing."""

    def finish(self, service: str, state: str, reason: str = "", scoring_uri: str | None = None) -> None:
        """The operation ended in ``state``."""


class LoggingSink:
    """Reports through the ``nbdeploy.progress`` logger (the default for library calls)."""

    def state(self, service: str, state: str, reason: str = "") -> None:
        log.info("%s: %s%s", service, state, f" ({reason})" if reason else "")

    def line(self, service: str, text: str) -> None:
        log.debug("%s: %s", service, text)

    def finish(self, service: str, state: str, reason: str = "", scoring_uri: str | None = None) -> None:
        log.info("%s: finished %s%s", service, state, f" ({reason})" if reason else "")


class PlainSink:
    """One line per change, with elapsed seconds: for terminals, papermill and frontends without widgets.

    While a state lasts (a long ``init()``), a reminder line follows every ``heartbeat_s`` seconds, so a
    notebook run in CI never sits silent (v1 printed dots).
    """

    def __init__(self, stream: TextIO | None = None, heartbeat_s: float = 5.0) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.heartbeat_s = heartbeat_s
        self._last: tuple[str, str] | None = None
        self._since = self._last_write = self.started

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stdout
        now = time.monotonic()
        self._last_write = now
        stream.write(f"[{now - self.started:6.1f}s] {text}\n")
        stream.flush()

    def state(self, service: str, state: str, reason: str = "") -> None:
        now = time.monotonic()
        if (state, reason) != self._last:
            self._last, self._since = (state, reason), now
            self._write(f"{service}: {state}" + (f" - {reason}" if reason else ""))
        elif now - self._last_write >= self.heartbeat_s:
            self._write(
                f"{service}: still {state}" + (f" - {reason}" if reason else "") + f" ({now - self._since:.0f} s)"
            )

    def line(self, service: str, text: str) -> None:
        self._write(f"{service} | {text}")

    def finish(self, service: str, state: str, reason: str = "", scoring_uri: str | None = None) -> None:
        if state == "Healthy":
            self._write(f"{service}: Healthy" + (f", scoring at {scoring_uri}" if scoring_uri else ""))
        else:
            self._write(f"{service}: ended {state}" + (f" - {reason}" if reason else ""))


SinkFactory = Callable[..., ProgressSink]
"""``factory(show_output, workspace=None) -> sink``; ``workspace`` is where the service lives."""


def _default_factory(show_output: bool, workspace: Any = None) -> ProgressSink:
    return PlainSink() if show_output else LoggingSink()


_factory: SinkFactory = _default_factory


def set_sink_factory(factory: SinkFactory | None) -> None:
    """Install the function that makes sinks (None restores the default)."""
    global _factory
    _factory = factory or _default_factory


def make_sink(show_output: bool, workspace: Any = None) -> ProgressSink:
    """A sink for one operation on a service of ``workspace``."""
    return _factory(show_output, workspace=workspace)
