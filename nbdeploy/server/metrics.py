"""Prometheus text metrics kept in plain dicts (one worker's view; each worker answers for itself)."""

from __future__ import annotations

import bisect
import os

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """Cumulative-on-export histogram."""

    __slots__ = ("count", "counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        out, running = [], 0
        sep = "," if labels else ""
        for bound, n in zip(BUCKETS, self.counts[:-1], strict=True):  # the last count is +Inf
            running += n
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound}"}} {running}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        lab = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{lab} {self.total:.6f}")
        out.append(f"{name}_count{lab} {self.count}")
        return out


class Metrics:
    """Requests by route and status, request latency, in-flight requests, ``run()`` time, batches."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.run_time = Histogram()
        self.in_flight = 0
        self.run_failures = 0
        self.timeouts = 0
        self.batch_sizes = Histogram()

    def observe(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(route)
        if hist is None:
            hist = self.latency[route] = Histogram()
        hist.observe(seconds)

    def render(self) -> bytes:
        pid = os.getpid()
        lines = [
            "# HELP nbdeploy_requests_total HTTP requests answered, by route and status.",
            "# TYPE nbdeploy_requests_total counter",
        ]
        for (route, status), n in sorted(self.requests.items()):
            lines.append(f'nbdeploy_requests_total{{route="{route}",status="{status}"}} {n}')
        lines += [
            "# HELP nbdeploy_request_duration_seconds Time to answer a request.",
            "# TYPE nbdeploy_request_duration_seconds histogram",
        ]
        for route, hist in sorted(self.latency.items()):
            lines += hist.lines("nbdeploy_request_duration_seconds", f'route="{route}"')
        lines += [
            "# HELP nbdeploy_run_duration_seconds Time spent in the entry script's run().",
            "# TYPE nbdeploy_run_duration_seconds histogram",
        ]
        lines += self.run_time.lines("nbdeploy_run_duration_seconds")
        lines += [
            "# HELP nbdeploy_requests_in_flight Requests being answered now.",
            "# TYPE nbdeploy_requests_in_flight gauge",
            f"nbdeploy_requests_in_flight {self.in_flight}",
            "# HELP nbdeploy_run_failures_total run() calls that raised.",
            "# TYPE nbdeploy_run_failures_total counter",
            f"nbdeploy_run_failures_total {self.run_failures}",
            "# HELP nbdeploy_scoring_timeouts_total run() calls stopped by the scoring timeout.",
            "# TYPE nbdeploy_scoring_timeouts_total counter",
            f"nbdeploy_scoring_timeouts_total {self.timeouts}",
            "# HELP nbdeploy_worker_pid The worker process that answered this scrape.",
            "# TYPE nbdeploy_worker_pid gauge",
            f"nbdeploy_worker_pid {pid}",
        ]
        if self.batch_sizes.count:
            lines += [
                "# HELP nbdeploy_batch_size Inputs per batched run() call.",
                "# TYPE nbdeploy_batch_size histogram",
            ]
            lines += self.batch_sizes.lines("nbdeploy_batch_size")
        return ("\n".join(lines) + "\n").encode()
