"""What a batch job did: counts, failures (which inputs, which error), where the output is."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SUCCEEDED, FAILED, STOPPED, RUNNING = "Succeeded", "Failed", "Stopped", "Running"


@dataclass(frozen=True)
class Failure:
    """Inputs of one mini-batch that produced no result, and why."""

    batch: int
    inputs: str
    count: int
    error: str

    def short(self) -> str:
        last = self.error.strip().splitlines()[-1] if self.error.strip() else "unknown error"
        return f"mini-batch {self.batch} ({self.inputs}): {self.count} failed: {last}"


@dataclass
class BatchResult:
    """The outcome of :func:`nbdeploy.batch.run` / :func:`nbdeploy.batch.score`."""

    state: str
    output_dir: Path
    output_file: Path | None
    mini_batches: int
    mini_batches_done: int
    items: int
    succeeded: int
    failed_items: int
    failed_batches: int
    elapsed_s: float
    resumed: int = 0
    """Mini-batches that an earlier run of the same job had committed (skipped this time)."""
    failures: list[Failure] = field(default_factory=list)
    log_dir: Path | None = None
    reason: str = ""

    @property
    def rate(self) -> float:
        """Items per second this run (resumed mini-batches excluded)."""
        return self.items / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self, max_failures: int = 10) -> str:
        """A few lines for people: state, counts, output, and the first failures with their errors."""
        lines = [
            f"{self.state}: {self.mini_batches_done}/{self.mini_batches} mini-batches, {self.succeeded} succeeded, "
            f"{self.failed_items} failed ({self.failed_batches} mini-batches failed)"
            + (f" - {self.reason}" if self.reason else ""),
        ]
        if self.resumed:
            lines.append(f"resumed: {self.resumed} mini-batches were already done")
        if self.output_file is not None:
            lines.append(f"output: {self.output_file}")
        else:
            lines.append(f"output folder: {self.output_dir} (summary_only)")
        for failure in self.failures[:max_failures]:
            lines.append("  " + failure.short())
        if len(self.failures) > max_failures:
            lines.append(f"  ... and {len(self.failures) - max_failures} more")
        if self.failures and self.log_dir is not None:
            lines.append(f"worker logs: {self.log_dir}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
