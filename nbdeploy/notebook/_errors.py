"""How magics report failures.

A user mistake (bad option, unknown model, missing file) becomes :class:`~IPython.core.error.UsageError`: one
line with the fix, no traceback. A deployment, build or scoring failure keeps its nbdeploy type (so
``papermill`` and ``except DeploymentFailed`` still see it) but renders as a short block: state, reason
and the log tail instead of a traceback, through IPython's ``_render_traceback_`` hook.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


def short_report(exc: NbdeployError) -> list[str]:
    """The lines shown for a failure: type and message (state, reason, log tail) without a traceback."""
    head, _, rest = str(exc).partition("\n")
    lines = [f"{RED}{BOLD}{type(exc).__name__}{RESET}: {head}"]
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
def reported() -> Iterator[None]:
    """Translate nbdeploy errors raised inside the block for the notebook (see module docstring)."""
    try:
        yield
    except _USER_MISTAKES as exc:
        raise UsageError(str(exc)) from None
    except (DeployError, BuildError, ScoringError) as exc:
        lines = short_report(exc)
        exc._render_traceback_ = lambda: lines  # type: ignore[attr-defined]
        raise
