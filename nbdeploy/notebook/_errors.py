"""How magics report failures.

A user mistake (bad option, unknown model, missing file) becomes :class:`~IPython.core.error.UsageError`: one
line with the fix, no traceback. A deployment, build or scoring failure keeps its nbdeploy type (so
``papermill`` and ``except DeploymentFailed`` still see it) but renders as a short block: state, reason
and the log tail instead of a traceback, through IPython's ``_render_traceback_`` hook.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from IPython.core.error import UsageError

from nbdeploy.errors import (
    BuildError,
    Conflict,
    DeployError,
    EngineUnavailable,
    InvalidInput,
    NbdeployError,
    NotFound,
    ScoringError,
    TargetNotAvailable,
    WorkspaceError,
)

_USER_MISTAKES = (InvalidInput, NotFound, Conflict, TargetNotAvailable, WorkspaceError, EngineUnavailable)
RED, BOLD, RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"


def last_traceback(log_text: str) -> list[str]:
    """The last Python traceback in a service log (the exception run() raised), or []."""
    lines = log_text.splitlines()
    starts = [i for i, line in enumerate(lines) if "Traceback (most recent call last):" in line]
    if not starts:
        return []
    block = [lines[starts[-1]]]
    for line in lines[starts[-1] + 1 :]:
        block.append(line)
        if line and not line.startswith((" ", "\t")) and "Traceback" not in line:
            break  # the exception line ends the traceback
    return block


def short_report(exc: NbdeployError, service: Any = None) -> list[str]:
    """The lines shown for a failure: type and message (state, reason, log tail) without a traceback."""
    head, _, rest = str(exc).partition("\n")
    lines = [f"{RED}{BOLD}{type(exc).__name__}{RESET}: {head}"]
    if isinstance(exc, ScoringError):
        lines = [f"{RED}{BOLD}ScoringError{RESET}: {exc.service} answered {exc.status}: {exc.body[:500]}"]
        try:
            raised = last_traceback(service.get_logs(200)) if service is not None else []
        except NbdeployError:
            raised = []
        if raised:
            lines.append("  run() raised (from the service log):")
            lines.extend("    " + line for line in raised[-25:])
        lines.append(f"More: %logs {exc.service} -n 200")
        return lines
    if isinstance(exc, DeployError):
        lines.append(f"  state:  {exc.state}")
        lines.append(f"  reason: {exc.reason}")
        if exc.logs:
            lines.append("  log tail:")
            lines.extend("    " + line for line in exc.logs.rstrip().splitlines()[-40:])
        hint = f"More: %logs {exc.service} -n 200"
        lines.append(hint)
    elif rest:
        lines.extend(rest.splitlines())
    return lines


@contextlib.contextmanager
def reported(service: Any = None) -> Iterator[None]:
    """Translate nbdeploy errors raised inside the block for the notebook (see module docstring); with the
    ``service`` being scored, a scoring error shows the exception run() raised, from the service's log."""
    try:
        yield
    except _USER_MISTAKES as exc:
        raise UsageError(str(exc)) from None
    except (DeployError, BuildError, ScoringError) as exc:
        lines = short_report(exc, service)
        exc._render_traceback_ = lambda: lines  # type: ignore[union-attr]  # IPython reads this hook
        raise
