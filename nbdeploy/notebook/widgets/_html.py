"""Small HTML fragments shared by the panels."""

from __future__ import annotations

from html import escape

from nbdeploy.notebook._tables import state_color


def badge(state: str) -> str:
    color = state_color(state) if state else "#57606a"
    return (
        f"<span class='nbdeploy-state' data-state='{escape(state)}' style='background:{color};color:white;"
        f"padding:2px 8px;border-radius:10px;font-weight:600'>{escape(state or 'unknown')}</span>"
    )


def link(url: str | None) -> str:
    return f"<code>{escape(url)}</code>" if url else "<i>-</i>"
