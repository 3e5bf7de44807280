"""Which service uses which model version (``model_usage``), for the deploy layer.

Inside a larger transaction of your own, call :func:`nbdeploy.registry.store.add_usage` /
``remove_usage`` with your connection instead.
"""

from __future__ import annotations

from nbdeploy.registry import store
from nbdeploy.workspace import PathLike, Workspace, as_workspace


def record_usage(service: str, model_ids: list[str], workspace: Workspace | PathLike | None = None) -> None:
    """Record that ``service`` uses each ``name:version`` in ``model_ids`` (idempotent)."""
    ws = as_workspace(workspace)
    with ws.transaction() as conn:
        for model_id in model_ids:
            store.add_usage(conn, model_id, service)


def release_usage(
    service: str, model_ids: list[str] | None = None, workspace: Workspace | PathLike | None = None
) -> None:
    """Forget the usage rows of ``service`` (only ``model_ids`` when given)."""
    ws = as_workspace(workspace)
    with ws.transaction() as conn:
        if model_ids is None:
            store.remove_usage(conn, service)
        else:
            for model_id in model_ids:
                store.remove_usage(conn, service, model_id)


def usage(workspace: Workspace | PathLike | None = None) -> dict[str, list[str]]:
    """``{model_id: [service, ...]}`` for every recorded usage."""
    ws = as_workspace(workspace)
    out: dict[str, list[str]] = {}
    for model_id, service in ws.db(create=False).execute(
        "SELECT model_id, service FROM model_usage ORDER BY model_id, service"
    ):
        out.setdefault(model_id, []).append(service)
    return out
