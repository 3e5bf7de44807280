"""Batch progress: snapshots of a running job, rendered as a terminal bar, plain lines, or any ProgressSink.

The runner reports :class:`Snapshot` objects to a :class:`BatchProgress`. :class:`SinkProgress` turns them into
``state(job, "Running", "12,000/200,000 rows ...")`` calls on an :class:`nbdeploy.progress.ProgressSink`, which
is how the notebook layer's live panel (or the plain-line sink under papermill) receives them.
:class:`TerminalBar` redraws one line on a TTY.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Protocol, TextIO

from nbdeploy.progress import ProgressSink, make_sink


@dataclass(frozen=True)
class Snapshot:
    """Where a job stands."""

    job: str
    unit: str
    """"rows" or "files"."""
    done: int
    total: int
    failed: int
    batches_done: int
    batches: int
    elapsed_s: float
    resumed_items: int = 0

    @property
    def rate(self) -> float:
        return (self.done - self.resumed_items) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        if rate <= 0 or self.total <= 0:
            return None
        return max(0.0, (self.total - self.done) / rate)

    def text(self) -> str:
        eta = self.eta_s
        parts = [
            f"{self.done:,}/{self.total:,} {self.unit}",
            f"{self.batches_done}/{self.batches} mini-batches",
            f"{self.rate:,.0f} {self.unit}/s",
        ]
        if eta is not None and self.done < self.total:
            parts.append(f"ETA {_duration(eta)}")
        parts.append(f"{self.failed:,} failed")
        return ", ".join(parts)


class BatchProgress(Protocol):
    """Receives snapshots of one job (throttling is the receiver's business)."""

    def update(self, snap: Snapshot) -> None: ...

    def finish(self, snap: Snapshot, state: str, reason: str = "") -> None: ...


class SinkProgress:
    """Snapshots -> a :class:`~nbdeploy.progress.ProgressSink` (``state`` at most every ``interval_s``)."""

    def __init__(self, sink: ProgressSink, interval_s: float = 5.0) -> None:
        self.sink, self.interval_s = sink, interval_s
        self._last = float("-inf")

    def update(self, snap: Snapshot) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            self.sink.state(snap.job, "Running", snap.text())

    def finish(self, snap: Snapshot, state: str, reason: str = "") -> None:
        self.sink.finish(snap.job, state, f"{snap.text()}" + (f"; {reason}" if reason else ""))


class TerminalBar:
    """One redrawn line on a terminal: bar, counts, rate, ETA, failures."""

    def __init__(self, stream: TextIO | None = None, width: int = 24, interval_s: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.width, self.interval_s = width, interval_s
        self._last = float("-inf")

    def _draw(self, snap: Snapshot, end: str = "") -> None:
        frac = snap.done / snap.total if snap.total else 1.0
        filled = round(self.width * min(1.0, frac))
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{snap.job} [{bar}] {frac * 100:5.1f}% {snap.text()}\x1b[K{end}")
        self.stream.flush()

    def update(self, snap: Snapshot) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            self._draw(snap)

    def finish(self, snap: Snapshot, state: str, reason: str = "") -> None:
        self._draw(snap, end="\n")
        self.stream.write(f"{snap.job}: {state}" + (f" - {reason}" if reason else "") + "\n")
        self.stream.flush()


class Silent:
    """No progress at all."""

    def update(self, snap: Snapshot) -> None:
        pass

    def finish(self, snap: Snapshot, state: str, reason: str = "") -> None:
        pass


def default_progress(show_output: bool, stream: TextIO | None = None) -> BatchProgress:
    """A bar on a TTY, plain lines every few seconds otherwise (papermill, CI), the logging sink when quiet.

    With ``show_output`` off, the notebook layer's sink factory still decides (it may show a live panel).
    """
    if show_output:
        out = stream or sys.stderr
        if getattr(out, "isatty", lambda: False)():
            return TerminalBar(out)
        from nbdeploy.progress import PlainSink

        return SinkProgress(PlainSink(out))
    return SinkProgress(make_sink(False))


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
