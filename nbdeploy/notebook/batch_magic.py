"""The body of the ``%batch`` line magic: the options of ``nbdeploy batch run|score``, progress in the notebook.

::

    %batch run -e batch_score.py -i data/*.csv -o outputs/ --mini-batch-size 10MB -m diabetes:1
    %batch score -s diabetes-svc -i data/features.csv -o scored/ --concurrency 4

Progress shows in a live progress widget with a widget frontend and as plain lines elsewhere (papermill). A job that
passes its error threshold (or is interrupted) raises, so papermill stops there; the message is the job's
summary (failed inputs and their errors), not a traceback. Registered by ``NbdeployMagics``::

    @line_magic
    def batch(self, line: str) -> Any:
        return batch_magic(line, workspace=self.session.workspace())
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from nbdeploy.notebook._errors import reported

if TYPE_CHECKING:
    from nbdeploy.batch.result import BatchResult
    from nbdeploy.workspace import Workspace

USAGE = (
    "Usage: %batch run -e SCRIPT -i INPUT -o OUTPUT [options]  |  %batch score -s SERVICE -i INPUT -o OUTPUT [options]"
)


def batch_magic(line: str, workspace: Workspace | None = None) -> BatchResult:
    """Run ``%batch run ...`` / ``%batch score ...``; returns the :class:`~nbdeploy.batch.BatchResult`."""
    import click

    from nbdeploy.cli.batch import parse_args, run_kwargs, score_kwargs

    argv = shlex.split(line)
    if not argv or argv[0] in ("-h", "--help"):
        raise UsageError(USAGE + "\nOptions: nbdeploy batch run --help / nbdeploy batch score --help")
    command = argv[0]
    try:
        params = parse_args(command, argv[1:])
    except click.exceptions.Exit:  # --help printed the options
        raise UsageError(USAGE) from None
    except click.ClickException as exc:
        raise UsageError(exc.format_message()) from None
    kwargs = run_kwargs(params) if command == "run" else score_kwargs(params)
    progress = None if params["quiet"] else notebook_progress(workspace)
    return _call(command, kwargs, workspace, progress)


def notebook_progress(workspace: Workspace | None, display: bool = True) -> Any:
    """A live progress widget with a widget frontend, else plain lines every few seconds (papermill)."""
    from nbdeploy.batch.progress import SinkProgress
    from nbdeploy.notebook._frontend import widget_frontend_present
    from nbdeploy.progress import PlainSink

    if widget_frontend_present():
        return BatchProgressWidget(display=display)
    return SinkProgress(PlainSink(), interval_s=5.0)


class BatchProgressWidget:
    """A progress bar and one status line (stock ipywidgets), updated at most every ``interval_s``."""

    def __init__(self, display: bool = True, interval_s: float = 0.3) -> None:
        import ipywidgets as w

        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, bar_style="info", layout=w.Layout(width="50%"))
        self.label = w.HTML("starting workers")
        self.box = w.VBox([w.HBox([self.bar]), self.label])
        self.interval_s, self._last = interval_s, float("-inf")
        if display:
            from IPython.display import display as show

            show(self.box)

    def _render(self, snap: Any, state: str = "Running", reason: str = "") -> None:
        from html import escape

        self.bar.value = min(1.0, snap.done / snap.total) if snap.total else 1.0
        text = f"<b>{escape(snap.job)}</b> {escape(state)}: {escape(snap.text())}"
        self.label.value = text + (f"<br><small>{escape(reason)}</small>" if reason else "")

    def update(self, snap: Any) -> None:
        import time

        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            self._render(snap)

    def finish(self, snap: Any, state: str, reason: str = "") -> None:
        self.bar.bar_style = {"Succeeded": "success", "Stopped": "warning"}.get(state, "danger")
        self._render(snap, state, reason)


def _call(command: str, kwargs: dict[str, Any], workspace: Workspace | None, progress: Any) -> BatchResult:
    from nbdeploy.batch import run as run_batch
    from nbdeploy.batch import score
    from nbdeploy.batch.errors import BatchError

    try:
        with reported():
            if command == "run":
                result = run_batch(workspace=workspace, progress=progress, **kwargs)
            else:
                result = score(workspace=workspace, progress=progress, **kwargs)
    except BatchError as exc:
        lines = [
            f"\x1b[31m\x1b[1m{type(exc).__name__}\x1b[0m: {str(exc).splitlines()[0]}",
            *exc.result.summary().splitlines(),
        ]
        exc._render_traceback_ = lambda: lines  # type: ignore[attr-defined]
        raise
    print(result.summary())
    return result
