"""v1's ``Model.profile``: run the scoring server on sample requests (process target) and measure it.

The service runs under a temporary name on the ``process`` target, every sample request is sent (cycled until
``num_requests``), and the latency percentiles, the server's peak resident memory and its CPU use are
reported. Nothing is recommended: the numbers are what was measured on this machine.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import statistics
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from nbdeploy.errors import DeployError, InvalidInput
from nbdeploy.progress import make_sink
from nbdeploy.specs import InferenceConfig, deployment_config_class
from nbdeploy.workspace import Workspace, as_workspace

log = logging.getLogger(__name__)
DEFAULT_REQUESTS = 50


def _samples(input_dataset: Any) -> list[str | bytes]:
    """Request bodies from a list of bodies (str, bytes, dict, list), a file (one body per line) or one body."""
    if isinstance(input_dataset, (str, os.PathLike)) and Path(input_dataset).is_file():
        lines = [line for line in Path(input_dataset).read_text().splitlines() if line.strip()]
        return list(lines)
    if isinstance(input_dataset, (str, bytes)):
        return [input_dataset]
    if isinstance(input_dataset, dict):
        return [json.dumps(input_dataset)]
    if isinstance(input_dataset, Sequence):
        return [s if isinstance(s, (str, bytes)) else json.dumps(s) for s in input_dataset]
    raise InvalidInput(
        "Model.profile: input_dataset must be request bodies (a list of str/bytes/dict), a file with one "
        f"body per line, or one body; got {type(input_dataset).__name__} (Azure datasets are not supported)"
    )


def _proc_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                pass
    return pids


def _peak_rss_bytes(pid: int) -> int | None:
    """Sum of the peak resident set (VmHWM) of the server and its children (Linux; None elsewhere)."""
    total, seen = 0, False
    for p in _proc_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
                    seen = True
        except OSError:
            continue
    return total if seen else None


def _cpu_seconds(pid: int) -> float | None:
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, seen = 0.0, False
    for p in _proc_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            seen = True
        except (OSError, IndexError, ValueError):
            continue
    return total if seen else None


def _percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return 0.0
    k = min(len(sorted_ms) - 1, max(0, round(q / 100 * (len(sorted_ms) - 1))))
    return sorted_ms[k]


class ModelProfile:
    """v1's ``ModelProfile``: ``wait_for_completion(show_output)``, ``get_details()``, ``serialize()``."""

    def __init__(self, workspace: Workspace, name: str, details: dict[str, Any]) -> None:
        self.workspace = workspace
        self.name = name
        self._details = details

    @property
    def state(self) -> str:
        return str(self._details["state"])

    def wait_for_completion(self, show_output: bool = False) -> None:
        """The profile ran in ``Model.profile``; with ``show_output`` its summary is shown."""
        d = self._details
        sink = make_sink(show_output, workspace=self.workspace)
        memory, cores = d["maxUtilizedMemoryInGB"], d["maxUtilizedCpu"]
        memory_text = "n/a" if memory is None else f"{memory * 1024:.0f} MiB"
        cpu_text = "n/a" if cores is None else f"{cores:.2f} cores"
        sink.finish(
            self.name,
            self.state,
            (
                f"{d['successQueries']}/{d['totalQueries']} requests ok, "
                f"latency p50 {d['latencyPercentile50InMs']:.1f} ms, "
                f"p90 {d['latencyPercentile90InMs']:.1f} ms, p99 {d['latencyPercentile99InMs']:.1f} ms; "
                f"peak memory {memory_text}, cpu {cpu_text}"
            ),
        )

    def get_details(self) -> dict[str, Any]:
        return dict(self._details)

    def serialize(self) -> dict[str, Any]:
        return self.get_details()

    def __repr__(self) -> str:
        return f"ModelProfile(name={self.name!r}, state={self.state!r})"


def profile(
    workspace: Workspace | None,
    profile_name: str,
    models: Sequence[Any],
    inference_config: InferenceConfig,
    input_dataset: Any = None,
    cpu: float | None = None,
    memory_in_gb: float | None = None,
    description: str | None = None,
    num_requests: int | None = None,
) -> ModelProfile:
    """Deploy on the process target under a temporary name, send the samples, measure, delete."""
    from nbdeploy import service as _service

    if input_dataset is None:
        raise InvalidInput("Model.profile needs input_dataset: sample request bodies to send.")
    samples = _samples(input_dataset)
    if not samples:
        raise InvalidInput("Model.profile: input_dataset holds no request bodies.")
    ws = as_workspace(workspace)
    slug = re.sub(r"[^a-z0-9-]+", "-", profile_name.lower()).strip("-")[:20] or "profile"
    name = f"prof-{slug}-{secrets.token_hex(2)}".replace("--", "-")
    if not name[0].isalpha():
        name = "p" + name
    count = max(num_requests or DEFAULT_REQUESTS, len(samples))
    svc = _service.deploy(name, list(models), inference_config, deployment_config_class("process")(), workspace=ws)
    latencies: list[float] = []
    ok = 0
    try:
        svc.wait_for_deployment()
        uri, handle = svc.scoring_uri, svc._current()[0]
        if uri is None or handle is None:
            raise DeployError(name, svc.state, "the profiling service has no scoring URI after deploying")
        pid = int(handle["pid"])  # the process target's handle
        cpu0, t0 = _cpu_seconds(pid), time.perf_counter()
        with httpx.Client(trust_env=False, timeout=60) as client:
            for i in range(count):
                body = samples[i % len(samples)]
                start = time.perf_counter()
                answer = client.post(uri, content=body, headers={"Content-Type": "application/json"})
                latencies.append((time.perf_counter() - start) * 1000)
                ok += answer.status_code == 200
        wall = time.perf_counter() - t0
        cpu1 = _cpu_seconds(pid)
        peak = _peak_rss_bytes(pid)
    finally:
        svc.delete()
    ordered = sorted(latencies)
    details = {
        "name": profile_name,
        "description": description,
        "state": "Succeeded" if ok == count else "CompletedWithErrors",
        "createdTime": datetime.now(timezone.utc).isoformat(),
        "requestedCpu": cpu,
        "requestedMemoryInGB": memory_in_gb,
        "totalQueries": count,
        "successQueries": ok,
        "successRate": ok / count,
        "averageLatencyInMs": statistics.fmean(ordered),
        "latencyPercentile50InMs": _percentile(ordered, 50),
        "latencyPercentile90InMs": _percentile(ordered, 90),
        "latencyPercentile95InMs": _percentile(ordered, 95),
        "latencyPercentile99InMs": _percentile(ordered, 99),
        "measuredQueriesPerSecond": count / wall if wall else None,
        "maxUtilizedMemoryInGB": None if peak is None else peak / 2**30,
        "maxUtilizedCpu": None if cpu0 is None or cpu1 is None or not wall else (cpu1 - cpu0) / wall,
        "target": "process",
    }
    log.info("profile %s: %s", profile_name, details)
    return ModelProfile(ws, profile_name, details)
