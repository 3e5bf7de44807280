"""``ServicesBoard``: every service of the workspace with its live state; select one to open its panel."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from traitlets import Dict, List, Unicode

from nbdeploy.notebook.widgets._html import badge, link
from nbdeploy.notebook.widgets._poller import Poller

if TYPE_CHECKING:
    from nbdeploy.notebook.widgets.deployment_panel import DeploymentPanel
    from nbdeploy.workspace import Workspace


class ServicesBoard(w.VBox):
    """A table of services refreshed by a poller; :meth:`open_panel` shows one service's DeploymentPanel."""

    names = List(Unicode(), help="Service names, in table order.")
    states = Dict(help="Service name -> last observed state.")

    def __init__(
        self, workspace: Workspace | str | None = None, poll_interval: float = 3.0, poll: bool = True, **kwargs: Any
    ) -> None:
        self._workspace = workspace
        self._closed = False
        self.table = w.HTML()
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.chooser = w.Dropdown(description="Service", options=[])
        self.open_button = w.Button(description="Open panel", icon="external-link")
        self.detail = w.VBox()
        self.panel: DeploymentPanel | None = None
        self.refresh_button.on_click(lambda _: self.refresh())
        self.open_button.on_click(lambda _: self.chooser.value and self.open_panel(self.chooser.value))
        super().__init__(
            [
                w.HTML("<b>nbdeploy services</b>"),
                self.table,
                w.HBox([self.refresh_button, self.chooser, self.open_button]),
                self.detail,
            ],
            **kwargs,
        )
        self.add_class("nbdeploy-services-board")
        self.refresh()
        self.poller = Poller(self.refresh, poll_interval, name="nbdeploy-services-board")
        if poll:
            self.poller.start()

    def refresh(self) -> None:
        """Re-read the services and their states."""
        if self._closed:
            return
        from nbdeploy.errors import NbdeployError
        from nbdeploy.service import Webservice

        rows, states = [], {}
        for svc in Webservice.list(self._workspace):
            try:
                status = svc.status()
                state, reason, uri = str(status.state), status.reason, status.scoring_uri or svc.scoring_uri
            except NbdeployError as exc:  # deleted meanwhile
                state, reason, uri = "Deleting", str(exc), None
            states[svc.name] = state
            rows.append(
                f"<tr><td><b>{escape(svc.name)}</b></td><td>{escape(svc.target)}</td><td>{badge(state)}</td>"
                f"<td>{svc.revision}</td><td>{escape(', '.join(svc.models))}</td><td>{link(uri)}</td>"
                f"<td><small>{escape(reason)}</small></td></tr>"
            )
        self.states = states
        self.names = list(states)
        if list(self.chooser.options) != self.names:
            current = self.chooser.value
            self.chooser.options = self.names
            self.chooser.value = current if current in self.names else (self.names[0] if self.names else None)
        head = "".join(
            f"<th style='text-align:left;padding:2px 10px'>{h}</th>"
            for h in ("name", "target", "state", "rev", "models", "scoring uri", "reason")
        )
        style = "<style>.nbdeploy-services-board td{padding:2px 10px;vertical-align:top}</style>"
        self.table.value = (
            f"{style}<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            if rows
            else "<i>No services yet; deploy one with %deploy.</i>"
        )

    def open_panel(self, name: str) -> DeploymentPanel:
        """Show ``name``'s DeploymentPanel under the table (closing the previous one)."""
        from nbdeploy.notebook.widgets.deployment_panel import DeploymentPanel

        if self.panel is not None:
            self.panel.close()
        self.panel = DeploymentPanel(name, workspace=self._workspace)
        self.panel.refresh()
        self.detail.children = [self.panel]
        return self.panel

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop polling (and the open panel's poller) and close the widgets."""
        self._closed = True
        self.poller.stop()
        if self.panel is not None:
            self.panel.close()
        for child in self.children:
            child.close()
        super().close()

    def __repr__(self) -> str:
        return f"ServicesBoard({len(self.names)} services)"
