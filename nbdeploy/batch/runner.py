"""The job loop shared by local workers and service scoring: dispatch, retry, commit in order, thresholds, Ctrl-C.

Mini-batches are dispatched in input order to an :class:`Executor` (at most ``window`` ahead of the first
uncommitted one, so finished-but-waiting output stays bounded), retried up to ``run_max_try`` times, and
committed to the journal strictly in input order, several at a time (group commit every ``commit_interval_s``).
"""

from __future__ import annotations

import heapq
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from nbdeploy.batch.errors import BatchFailed, BatchStopped
from nbdeploy.batch.journal import Entry, Journal
from nbdeploy.batch.plan import MiniBatch, Plan
from nbdeploy.batch.pool import InitFailed, Outcome
from nbdeploy.batch.progress import BatchProgress, Snapshot
from nbdeploy.batch.result import FAILED, STOPPED, SUCCEEDED, BatchResult, Failure

log = logging.getLogger(__name__)


class Executor(Protocol):
    """Runs mini-batches somewhere (worker processes, a web service)."""

    capacity: int

    def start(self) -> None: ...

    @property
    def idle(self) -> int: ...

    def submit(self, batch: MiniBatch) -> None: ...

    def poll(self, timeout: float) -> list[Outcome]: ...

    def close(self, kill: bool = False) -> None: ...


@dataclass(frozen=True)
class Limits:
    """When failures stop a job (v1's three thresholds) and how often a mini-batch is tried."""

    error_threshold: int = 0
    allowed_failed_count: int | None = None
    allowed_failed_percent: float | None = None
    run_max_try: int = 3

    def exceeded(self, failed_items: int, failed_batches: int, batches: int, all_dispatched: bool) -> str:
        """Why the job must stop now ('' while within limits)."""
        if self.error_threshold != -1 and failed_items > self.error_threshold:
            return f"{failed_items} failed inputs > error_threshold={self.error_threshold}"
        if self.allowed_failed_count not in (None, -1) and failed_batches > self.allowed_failed_count:
            return f"{failed_batches} failed mini-batches > allowed_failed_count={self.allowed_failed_count}"
        pct = self.allowed_failed_percent
        if pct is not None and all_dispatched and batches and failed_batches * 100.0 / batches > pct:
            return f"{failed_batches * 100.0 / batches:.1f}% failed mini-batches > allowed_failed_percent={pct:g}"
        return ""


@contextmanager
def _sigint_sets(flag: threading.Event) -> Iterator[None]:
    """In the main thread, the first Ctrl-C sets ``flag`` (a clean stop); a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_plan(
    name: str,
    plan: Plan,
    journal: Journal,
    executor: Executor,
    limits: Limits,
    progress: BatchProgress,
    unit: str,
    log_dir: object = None,
    commit_interval_s: float = 0.25,
    stop: threading.Event | None = None,
) -> BatchResult:
    """Run the mini-batches of ``plan`` that ``journal`` has not committed; return or raise with the result."""
    started = time.monotonic()
    total = len(plan)
    entries = journal.entries
    resumed = journal.done
    items = sum(e.items for e in entries)
    succeeded = sum(e.results for e in entries)
    failed_items = sum(e.failed for e in entries)
    failed_batches = sum(1 for e in entries if e.batch_failed)
    failures = [Failure(e.index, e.inputs, e.failed, e.error) for e in entries if e.failed]
    resumed_items = items
    pending = list(range(resumed, total))
    tries: dict[int, int] = {}
    ready: dict[int, tuple[Entry, bytes]] = {}
    next_commit = resumed
    window = executor.capacity * 4 + 4
    state, reason = SUCCEEDED, ""
    stop = stop or threading.Event()
    last_commit = time.monotonic()

    def snapshot() -> Snapshot:
        return Snapshot(
            name,
            unit,
            items,
            max(plan.total_items, items),
            failed_items,
            journal.done,
            total,
            time.monotonic() - started,
            resumed_items,
        )

    def commit(force: bool) -> None:
        nonlocal next_commit, last_commit
        if next_commit not in ready or not (force or time.monotonic() - last_commit >= commit_interval_s):
            return
        group = []
        while next_commit in ready:
            group.append(ready.pop(next_commit))
            next_commit += 1
        journal.commit(group)
        last_commit = time.monotonic()

    with _sigint_sets(stop):
        try:
            if pending:
                executor.start()
            while next_commit < total:
                if stop.is_set():
                    state, reason = STOPPED, "stopped on request (Ctrl-C); run the same job again to resume"
                    break
                while pending and pending[0] < next_commit + window and executor.idle:
                    index = heapq.heappop(pending)
                    tries[index] = tries.get(index, 0) + 1
                    executor.submit(plan.batches[index])
                for outcome in executor.poll(0.1):
                    batch = plan.batches[outcome.index]
                    if not outcome.ok and tries[outcome.index] < limits.run_max_try:
                        log.info(
                            "%s: mini-batch %d try %d failed; retrying: %s",
                            name,
                            outcome.index,
                            tries[outcome.index],
                            outcome.error.strip().splitlines()[-1] if outcome.error.strip() else "",
                        )
                        heapq.heappush(pending, outcome.index)
                        continue
                    entry = _entry(batch, outcome, tries[outcome.index])
                    items += entry.items
                    succeeded += entry.results
                    failed_items += entry.failed
                    failed_batches += entry.batch_failed
                    if entry.failed:
                        failures.append(Failure(entry.index, entry.inputs, entry.failed, entry.error))
                    ready[outcome.index] = (entry, outcome.text)
                commit(force=len(ready) >= window or (not pending and executor.idle == executor.capacity))
                reason = limits.exceeded(failed_items, failed_batches, total, all_dispatched=not pending)
                if reason:
                    state = FAILED
                    break
                progress.update(snapshot())
        except KeyboardInterrupt:
            state, reason = STOPPED, "interrupted (Ctrl-C twice); run the same job again to resume"
        except InitFailed as exc:
            state, reason = (
                FAILED,
                f"init() failed in worker {exc.worker}:\n{exc.detail.rstrip()}\nWorker log: {exc.log_path}",
            )
        finally:
            executor.close(kill=state != SUCCEEDED)
            commit(force=True)
            journal.close()
    failures.sort(key=lambda f: f.batch)
    result = BatchResult(
        state=state,
        output_dir=journal.output_dir,
        output_file=journal.output_file,
        mini_batches=total,
        mini_batches_done=journal.done,
        items=items,
        succeeded=succeeded,
        failed_items=failed_items,
        failed_batches=failed_batches,
        elapsed_s=time.monotonic() - started,
        resumed=resumed,
        failures=failures,
        log_dir=log_dir,  # type: ignore[arg-type]
        reason=reason,
    )
    progress.finish(snapshot(), state, reason.splitlines()[0] if reason else "")
    if state == FAILED:
        raise BatchFailed(f"Batch job {name} failed: {reason}\n{result.summary()}", result)
    if state == STOPPED:
        raise BatchStopped(
            f"Batch job {name} stopped after {journal.done}/{total} mini-batches; "
            f"run it again with the same inputs and output to resume.",
            result,
        )
    return result


def _entry(batch: MiniBatch, outcome: Outcome, tries: int) -> Entry:
    if outcome.ok:
        missing = max(0, outcome.items - outcome.results)
        error = f"run() returned {outcome.results} results for {outcome.items} inputs" if missing else ""
        return Entry(
            batch.index, 0, outcome.items, outcome.results, missing, batch.describe() if missing else "", error
        )
    error = (f"failed {tries} tries; the last one:\n" if tries > 1 else "") + outcome.error.rstrip()
    return Entry(batch.index, 0, outcome.items, 0, outcome.items, batch.describe(), error, batch_failed=True)
