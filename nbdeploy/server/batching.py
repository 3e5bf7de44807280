"""Opt-in adaptive batching: concurrent requests merged into one ``run()`` call.

A script opts in by decorating ``run`` (``from nbdeploy_batching import nbdeploy_batch``; the server
registers that module name when it loads the script) or with ``NBDEPLOY_BATCH_MAX_SIZE``. A batched
``run`` takes a *list* of inputs (the body strings) and returns a list of results of the same length.

``Batcher`` runs ``run()`` inline on the event loop: while one batch runs, new requests wait in the
kernel's socket buffers; afterwards the loop reads them all in one pass, they all enqueue, and the next
batch takes them together. Under light load a request is dispatched at once (no added latency);
``max_latency_ms`` bounds how long a batch may wait to fill while requests keep arriving.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

ATTR = "__nbdeploy_batch__"


def nbdeploy_batch(max_batch_size: int = 32, max_latency_ms: float = 0.0) -> Callable[[Callable], Callable]:
    """Mark ``run(inputs: list) -> list`` as batchable."""

    def mark(func: Callable) -> Callable:
        setattr(func, ATTR, {"max_batch_size": int(max_batch_size), "max_latency_ms": float(max_latency_ms)})
        return func

    return mark


class BatchSizeError(Exception):
    """``run()`` returned a result whose length differs from the batch's."""


class Batcher:
    """Collects submitted inputs and calls ``call(list) -> list`` with them, routing results back."""

    def __init__(self, call: Callable[[list[Any]], list[Any]], max_batch_size: int, max_latency_ms: float) -> None:
        self._call = call
        self.max_batch_size = max(1, max_batch_size)
        self.max_latency = max(0.0, max_latency_ms) / 1000.0
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._last_size = 0
        self.batches = 0
        self.items = 0

    def submit(self, item: Any) -> asyncio.Future:
        """Queue ``item``; the future resolves to its result (or the exception ``run()`` raised)."""
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._loop())
        fut = loop.create_future()
        self._pending.append((item, fut))
        self._wakeup.set()  # type: ignore[union-attr]
        return fut

    async def _fill(self) -> None:
        await asyncio.sleep(0)  # let requests already read in this loop pass enqueue
        if self.max_latency <= 0 or self._last_size <= 1:
            return
        deadline = time.monotonic() + self.max_latency
        while len(self._pending) < self.max_batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()  # type: ignore[union-attr]
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)  # type: ignore[union-attr]
            except asyncio.TimeoutError:
                return

    async def _loop(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                await self._fill()
                batch = self._pending[: self.max_batch_size]
                del self._pending[: self.max_batch_size]
                batch = [(item, fut) for item, fut in batch if not fut.cancelled()]
                if not batch:
                    continue
                self._last_size = len(batch)
                self.batches += 1
                self.items += len(batch)
                try:
                    results = self._call([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise BatchSizeError(f"run() returned {len(results)} results for {len(batch)} inputs")
                except BaseException as exc:  # noqa: BLE001 - routed to every caller
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), result in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(result)
                await asyncio.sleep(0)
