"""``WidgetSink``: the ProgressSink that feeds a DeploymentPanel (created and displayed on first use)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbdeploy.notebook.widgets.deployment_panel import DeploymentPanel
    from nbdeploy.workspace import Workspace


class WidgetSink:
    """Reports progress into ``panel``; without one, makes a panel for the service and displays it.

    The operation's steps go to the panel's operation line (with the time spent in the current step), not to
    its state badge: the badge shows the serving revision, which the panel observes itself, so an update's
    new revision never makes the badge flip. Once the panel is closed, reports are dropped: the operation
    itself goes on.
    """

    def __init__(
        self, panel: DeploymentPanel | None = None, workspace: Workspace | str | None = None, display: bool = True
    ) -> None:
        self.panel = panel
        self.workspace = workspace
        self.display = display
        self._last: tuple[str, str] | None = None
        self._since = time.monotonic()

    def _panel(self, service: str) -> DeploymentPanel | None:
        if self.panel is None:
            from nbdeploy.notebook.widgets.deployment_panel import DeploymentPanel

            self.panel = DeploymentPanel(service, workspace=self.workspace)
            if self.display:
                from IPython.display import display

                display(self.panel)
        return None if self.panel.closed else self.panel

    def state(self, service: str, state: str, reason: str = "") -> None:
        panel = self._panel(service)
        if panel is None:
            return
        if (state, reason) != self._last:
            self._last, self._since = (state, reason), time.monotonic()
            panel.add_line(state + (f": {reason}" if reason else ""))
        if not panel.state:  # nothing observed yet (a first deploy): the operation's state is the service's
            panel.set_state(state, reason)
        elapsed = time.monotonic() - self._since
        panel.set_operation(
            f"{state}" + (f": {reason}" if reason else "") + (f" ({elapsed:.0f} s)" if elapsed >= 1 else "")
        )

    def line(self, service: str, text: str) -> None:
        panel = self._panel(service)
        if panel is not None:
            panel.add_line(text)

    def finish(self, service: str, state: str, reason: str = "", scoring_uri: str | None = None) -> None:
        panel = self._panel(service)
        if panel is None:
            return
        if (state, reason) != self._last:
            panel.add_line(
                f"{state}" + (f": {reason}" if reason else "") + (f" - scoring at {scoring_uri}" if scoring_uri else "")
            )
        self._last = (state, reason)
        if state == "Healthy":
            panel.set_operation("")
        else:
            panel.set_operation(f"ended {state}" + (f": {reason}" if reason else ""), failed=True)
        panel.refresh()  # the badge: what serves now
