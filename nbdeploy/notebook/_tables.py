"""Tables for ``%services`` and ``%models``: HTML in a notebook, aligned text in terminals and papermill."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbdeploy.registry import Model
    from nbdeploy.service import Webservice

STATE_COLORS = {"Healthy": "#1a7f37", "Transitioning": "#9a6700", "Deleting": "#57606a", "Deleted": "#57606a"}


def state_color(state: str) -> str:
    return STATE_COLORS.get(state, "#cf222e")


class Table:
    """Rows of strings with a header; ``repr`` is the text form, ``_repr_html_`` the HTML one."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[str]], empty: str = "(none)") -> None:
        self.columns = list(columns)
        self.rows = [[str(c) for c in row] for row in rows]
        self.empty = empty

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        if not self.rows:
            return self.empty
        widths = [max(len(r[i]) for r in [self.columns, *self.rows]) for i in range(len(self.columns))]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*self.columns), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*row) for row in self.rows]
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<i>{escape(self.empty)}</i>"
        head = "".join(f"<th style='text-align:left'>{escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(self._cell(c, v) for c, v in zip(self.columns, row, strict=False)) + "</tr>"
            for row in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    @staticmethod
    def _cell(column: str, value: str) -> str:
        if column == "state":
            return f"<td><b style='color:{state_color(value)}'>{escape(value)}</b></td>"
        return f"<td style='text-align:left'>{escape(value)}</td>"


def services_table(services: Sequence[Webservice]) -> Table:
    rows = []
    for svc in services:
        status = svc.status()
        rows.append(
            [
                svc.name,
                svc.target,
                str(status.state),
                str(svc.revision),
                ", ".join(svc.models),
                svc.scoring_uri or "-",
                status.reason,
            ]
        )
    return Table(
        ["name", "target", "state", "revision", "models", "scoring uri", "reason"],
        rows,
        empty="No services in this workspace; create one with %deploy.",
    )


def models_table(models: Sequence[Model]) -> Table:
    from nbdeploy.registry.model import human_size

    rows = [
        [
            m.name,
            str(m.version),
            human_size(m.size),
            ", ".join(f"{k}={v}" for k, v in m.tags.items()),
            m.created_time.strftime("%Y-%m-%d %H:%M"),
            ", ".join(m.used_by()) or "-",
        ]
        for m in models
    ]
    return Table(
        ["name", "version", "size", "tags", "created", "used by"],
        rows,
        empty="No models registered; register one with %register_model PATH --name NAME.",
    )
