"""``nbdeploy.batch.score``: send mini-batches to a deployed service, with the journal and output of ``run``.

Tables: one request per mini-batch, ``{"data": [[row values], ...]}`` (``payload_key`` renames ``data``); the
service answers a JSON list with one result per row. Files: one request per file, the file's bytes as the body;
each answer is one output line. Requests run ``concurrency`` at a time; 5xx answers and connection errors are
retried with exponential backoff, up to ``max_tries`` tries; other errors fail the mini-batch at once.

All HTTP goes through :func:`post`, which uses the public :meth:`nbdeploy.Webservice.run`.
"""

from __future__ import annotations

import json
import os
import queue
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdeploy.batch.config import (
    APPEND_ROW,
    DEFAULT_APPEND_ROW_FILE,
    OUTPUT_ACTIONS,
    parse_mini_batch_size,
)
from nbdeploy.batch.journal import Journal
from nbdeploy.batch.plan import FILES, MiniBatch, make_plan, resolve_inputs
from nbdeploy.batch.pool import Outcome
from nbdeploy.batch.progress import BatchProgress, default_progress
from nbdeploy.batch.result import BatchResult
from nbdeploy.batch.runner import Limits, run_plan
from nbdeploy.errors import DeployError, InvalidSpec, ScoringError

if TYPE_CHECKING:
    from nbdeploy.service import Webservice

RETRY_STATUSES = frozenset({500, 502, 503, 504})


class _Retryable(Exception):
    pass


def post(service: Webservice, body: str | bytes, timeout: float) -> Any:
    """The one HTTP call: score ``body`` on ``service``; raises :class:`_Retryable` for 5xx and connection errors."""
    try:
        return service.run(body, timeout=timeout)
    except ScoringError as exc:
        if exc.status in RETRY_STATUSES:
            raise _Retryable(f"HTTP {exc.status}: {exc.body[:500]}") from exc
        raise
    except DeployError as exc:  # the service could not be reached
        raise _Retryable(exc.reason) from exc


class ServiceExecutor:
    """Mini-batches -> requests to a service, ``concurrency`` at a time."""

    def __init__(
        self,
        service: Webservice,
        concurrency: int,
        timeout: float,
        max_tries: int,
        payload_key: str,
        append: bool,
        backoff_s: float = 0.2,
    ) -> None:
        self.service, self.capacity, self.timeout = service, concurrency, timeout
        self.max_tries, self.payload_key, self.append, self.backoff_s = max_tries, payload_key, append, backoff_s
        self._threads: ThreadPoolExecutor | None = None
        self._done: queue.Queue[Outcome] = queue.Queue()
        self._in_flight = 0
        self._cancel = threading.Event()
        self._local = threading.local()

    def _service(self) -> Webservice:
        """One Webservice handle per thread (each has its own HTTP client)."""
        svc = getattr(self._local, "service", None)
        if svc is None:
            from nbdeploy.service import Webservice

            svc = self._local.service = Webservice(self.service.name, self.service.workspace)
        return svc

    def start(self) -> None:
        self._threads = ThreadPoolExecutor(self.capacity, thread_name_prefix="nbdeploy-batch-score")

    @property
    def idle(self) -> int:
        return self.capacity - self._in_flight

    def submit(self, batch: MiniBatch) -> None:
        assert self._threads is not None
        self._in_flight += 1
        self._threads.submit(self._score_safely, batch)

    def poll(self, timeout: float) -> list[Outcome]:
        outcomes = []
        try:
            outcomes.append(self._done.get(timeout=timeout))
            while True:
                outcomes.append(self._done.get_nowait())
        except queue.Empty:
            pass
        self._in_flight -= len(outcomes)
        return outcomes

    def close(self, kill: bool = False) -> None:
        if kill:
            self._cancel.set()
        if self._threads is not None:
            self._threads.shutdown(wait=not kill, cancel_futures=True)

    # -- one mini-batch --------------------------------------------------------------------------
    def _score_safely(self, batch: MiniBatch) -> None:
        try:
            outcome = self._score(batch)
        except BaseException as exc:  # noqa: BLE001 - becomes the mini-batch's error
            outcome = Outcome(batch.index, False, batch.items, error=f"{type(exc).__name__}: {exc}")
        self._done.put(outcome)

    def _score(self, batch: MiniBatch) -> Outcome:
        from nbdeploy.batch.formatting import format_results
        from nbdeploy.batch.readers import load_batch

        data = load_batch(batch)
        if batch.kind == FILES:
            answers = [self._call(Path(path).read_bytes()) for path in data]
            results: list[Any] = [a if isinstance(a, str) else json.dumps(a) for a in answers]
        else:
            body = json.dumps({self.payload_key: data.values.tolist()})
            answer = _unwrap(self._call(body))
            if not isinstance(answer, list):
                raise ValueError(
                    f"the service answered {type(answer).__name__}; batch score needs a JSON list with one result per row"
                )
            results = answer
        count, text = format_results(results) if self.append else (len(results), b"")
        return Outcome(batch.index, True, len(data), results=count, text=text)

    def _call(self, body: str | bytes) -> Any:
        for attempt in range(1, self.max_tries + 1):
            if self._cancel.is_set():
                raise RuntimeError("cancelled")
            try:
                return post(self._service(), body, self.timeout)
            except _Retryable as exc:
                if attempt == self.max_tries:
                    raise RuntimeError(f"{exc} (after {attempt} tries)") from exc
                time.sleep(min(10.0, self.backoff_s * 2 ** (attempt - 1)) * (0.5 + random.random()))
        raise AssertionError("unreachable")  # pragma: no cover


def _unwrap(answer: Any) -> Any:
    """A v1 run() that returned ``json.dumps(...)`` is answered as a JSON string: decode it once more."""
    if isinstance(answer, str):
        try:
            return json.loads(answer)
        except ValueError:
            return answer
    return answer


def score(
    service: str | Webservice,
    input: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],  # noqa: A002 - like run()
    output: str | os.PathLike[str],
    *,
    workspace: Any = None,
    input_format: str | None = None,
    mini_batch_size: int | str | None = None,
    output_action: str = APPEND_ROW,
    append_row_file_name: str | None = None,
    error_threshold: int = 0,
    allowed_failed_count: int | None = None,
    allowed_failed_percent: float | None = None,
    partition_keys: Sequence[str] | None = None,
    concurrency: int = 4,
    timeout: float = 60.0,
    max_tries: int = 3,
    payload_key: str = "data",
    overwrite: bool = False,
    journal: bool = True,
    show_output: bool = False,
    progress: BatchProgress | None = None,
    stop: threading.Event | None = None,
) -> BatchResult:
    """Score ``input`` through the deployed ``service``; output and resuming as :func:`nbdeploy.batch.run`."""
    from nbdeploy.service import Webservice

    if output_action not in OUTPUT_ACTIONS:
        raise InvalidSpec("output_action", f"{output_action!r} is not an output action", allowed=OUTPUT_ACTIONS)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidSpec("concurrency", f"must be an integer >= 1, got {concurrency!r}")
    if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
        raise InvalidSpec("max_tries", f"must be an integer >= 1, got {max_tries!r}")
    svc = service if isinstance(service, Webservice) else Webservice(service, workspace)
    out = Path(output).resolve()
    paths = [p for p in resolve_inputs(input) if not Path(p).resolve().is_relative_to(out)]
    plan = make_plan(paths, input_format, parse_mini_batch_size(mini_batch_size), partition_keys)
    out_name = (append_row_file_name or DEFAULT_APPEND_ROW_FILE) if output_action == APPEND_ROW else None
    identity = {
        "plan": plan.digest,
        "batches": len(plan),
        "input_format": plan.input_format,
        "output_action": output_action,
        "output": out_name,
        "service": svc.name,
    }
    book = Journal.open(out, out_name, identity, overwrite=overwrite, enabled=journal)
    executor = ServiceExecutor(svc, concurrency, timeout, max_tries, payload_key, output_action == APPEND_ROW)
    limits = Limits(error_threshold, allowed_failed_count, allowed_failed_percent, run_max_try=1)
    unit = "files" if plan.input_format == FILES else "rows"
    return run_plan(svc.name, plan, book, executor, limits, progress or default_progress(show_output), unit, stop=stop)
