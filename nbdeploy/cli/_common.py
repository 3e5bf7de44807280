"""Helpers shared by the CLI modules: the workspace from the root group, key=value options, output."""

from __future__ import annotations

import json
from typing import Any

import click

from nbdeploy.registry.names import parse_assignment, printable
from nbdeploy.workspace import Workspace, as_workspace


def workspace_from(ctx: click.Context) -> Workspace:
    """The workspace named by ``--workspace`` / ``NBDEPLOY_WORKSPACE``, else the default."""
    root = ctx.find_root()
    obj = root.obj or {}
    if root.get_parameter_source("workspace") == click.core.ParameterSource.ENVIRONMENT:
        return as_workspace(None)  # resolves NBDEPLOY_WORKSPACE itself, and says so in `workspace show`
    return as_workspace(obj.get("workspace"))


def pairs(kind: str, values: tuple[str, ...]) -> dict[str, str]:
    """``('a=1', 'b=2')`` -> ``{'a': '1', 'b': '2'}`` (InvalidInput on a malformed item)."""
    return dict(parse_assignment(kind, v) for v in values)


def error_line(exc: BaseException) -> str:
    """``Error: <reason>``, printable on any terminal (bytes that are not UTF-8 shown as \\xNN)."""
    return "Error: " + printable(str(exc))


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain left-aligned text table."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows]
    return "\n".join(lines)
