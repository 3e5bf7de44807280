"""Deployment records in the workspace database: services, their revision history, and model usage.

Only :mod:`nbdeploy.service` writes here. The schema is migration 2 of :data:`nbdeploy.workspace.MIGRATIONS`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from nbdeploy.errors import AlreadyExists, ServiceNotFound
from nbdeploy.registry.store import add_usage, remove_usage
from nbdeploy.workspace import Workspace

# Revision outcomes
STARTING, SERVING, REPLACED, FAILED, DELETING = "starting", "serving", "replaced", "failed", "deleting"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class RevisionRecord:
    service: str
    revision: int
    outcome: str
    spec: dict[str, Any]
    handle: dict[str, Any] | None
    state: str | None
    reason: str | None
    evidence: str | None
    created_time: str
    finished_time: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> RevisionRecord:
        return cls(
            row["service"], row["revision"], row["outcome"], json.loads(row["spec"]),
            json.loads(row["handle"]) if row["handle"] else None, row["state"], row["reason"], row["evidence"],
            row["created_time"], row["finished_time"],
        )


@dataclass
class ServiceRecord:
    name: str
    target: str
    current_revision: int | None
    tags: dict[str, str]
    properties: dict[str, str]
    description: str | None
    keys: tuple[str, str] | None
    created_time: str
    updated_time: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ServiceRecord:
        keys = json.loads(row["keys"]) if row["keys"] else None
        return cls(
            row["name"], row["target"], row["current_revision"], json.loads(row["tags"]), json.loads(row["properties"]),
            row["description"], tuple(keys) if keys else None, row["created_time"], row["updated_time"],
        )


def without_secrets(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` without the auth keys a deployment config may carry: the current keys live only in the
    service row (replaced by ``regen_key``), so the revision history never keeps superseded ones."""
    dc = spec.get("deployment_config")
    if not isinstance(dc, dict) or "keys" not in dc:
        return spec
    return {**spec, "deployment_config": {k: v for k, v in dc.items() if k != "keys"}}


class ServiceStore:
    """Reads and writes deployment records of one workspace. Revision specs are stored without auth keys."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    # -- services --------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return [r[0] for r in self.workspace.db(create=False).execute("SELECT name FROM services ORDER BY name")]

    def get(self, name: str) -> ServiceRecord:
        row = self.workspace.db(create=False).execute("SELECT * FROM services WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ServiceNotFound(name, self.names(), hint="List services with `nbdeploy service list` or Webservice.list().")
        return ServiceRecord.from_row(row)

    def list(self) -> list[ServiceRecord]:
        rows = self.workspace.db(create=False).execute("SELECT * FROM services ORDER BY name").fetchall()
        return [ServiceRecord.from_row(r) for r in rows]

    def create(self, name: str, target: str, spec: dict[str, Any], model_ids: list[str], tags: dict[str, str],
               properties: dict[str, str], description: str | None, keys: tuple[str, str] | None) -> None:
        """Insert the service with revision 1 (starting) and its model usage, atomically."""
        stamp = now()
        try:
            with self.workspace.transaction() as conn:
                conn.execute(
                    "INSERT INTO services(name, target, current_revision, tags, properties, description, keys, created_time, updated_time)"
                    " VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)",
                    (name, target, json.dumps(tags), json.dumps(properties), description, json.dumps(keys) if keys else None, stamp, stamp),
                )
                conn.execute(
                    "INSERT INTO service_revisions(service, revision, outcome, spec, created_time) VALUES (?, 1, ?, ?, ?)",
                    (name, STARTING, json.dumps(without_secrets(spec)), stamp),
                )
                for model_id in model_ids:
                    add_usage(conn, model_id, name)
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(f"A service named {name!r} exists already; pass overwrite=True (--overwrite) or choose another name.") from exc

    def delete(self, name: str) -> None:
        with self.workspace.transaction() as conn:
            remove_usage(conn, name)
            conn.execute("DELETE FROM services WHERE name = ?", (name,))

    def set_keys(self, name: str, keys: tuple[str, str] | None) -> None:
        with self.workspace.transaction() as conn:
            conn.execute("UPDATE services SET keys = ?, updated_time = ? WHERE name = ?", (json.dumps(keys) if keys else None, now(), name))

    def set_metadata(self, name: str, tags: dict[str, str], properties: dict[str, str], description: str | None) -> None:
        with self.workspace.transaction() as conn:
            conn.execute(
                "UPDATE services SET tags = ?, properties = ?, description = ?, updated_time = ? WHERE name = ?",
                (json.dumps(tags), json.dumps(properties), description, now(), name),
            )

    # -- revisions -------------------------------------------------------------------------------
    def revisions(self, name: str) -> list[RevisionRecord]:
        rows = self.workspace.db(create=False).execute(
            "SELECT * FROM service_revisions WHERE service = ? ORDER BY revision", (name,)
        ).fetchall()
        return [RevisionRecord.from_row(r) for r in rows]

    def revision(self, name: str, revision: int) -> RevisionRecord:
        row = self.workspace.db(create=False).execute(
            "SELECT * FROM service_revisions WHERE service = ? AND revision = ?", (name, revision)
        ).fetchone()
        if row is None:
            raise ServiceNotFound(f"{name} (revision {revision})")
        return RevisionRecord.from_row(row)

    def add_revision(self, name: str, spec: dict[str, Any]) -> int:
        with self.workspace.transaction() as conn:
            latest = conn.execute("SELECT MAX(revision) FROM service_revisions WHERE service = ?", (name,)).fetchone()[0] or 0
            conn.execute(
                "INSERT INTO service_revisions(service, revision, outcome, spec, created_time) VALUES (?, ?, ?, ?, ?)",
                (name, latest + 1, STARTING, json.dumps(without_secrets(spec)), now()),
            )
            return int(latest + 1)

    def set_handle(self, name: str, revision: int, handle: dict[str, Any]) -> None:
        with self.workspace.transaction() as conn:
            conn.execute("UPDATE service_revisions SET handle = ? WHERE service = ? AND revision = ?", (json.dumps(handle), name, revision))

    def finish_revision(self, name: str, revision: int, outcome: str, state: str, reason: str = "", evidence: str = "") -> None:
        with self.workspace.transaction() as conn:
            conn.execute(
                "UPDATE service_revisions SET outcome = ?, state = ?, reason = ?, evidence = ?, finished_time = ?"
                " WHERE service = ? AND revision = ?",
                (outcome, state, reason, evidence[-20000:], now(), name, revision),
            )

    def switch(self, name: str, new_revision: int, old_revision: int | None, model_ids: list[str]) -> None:
        """Make ``new_revision`` the serving one (and its models the used ones), atomically."""
        stamp = now()
        with self.workspace.transaction() as conn:
            conn.execute("UPDATE services SET current_revision = ?, updated_time = ? WHERE name = ?", (new_revision, stamp, name))
            conn.execute("UPDATE service_revisions SET outcome = ?, finished_time = COALESCE(finished_time, ?) WHERE service = ? AND revision = ?",
                         (SERVING, stamp, name, new_revision))
            if old_revision is not None and old_revision != new_revision:
                conn.execute("UPDATE service_revisions SET outcome = ? WHERE service = ? AND revision = ?", (REPLACED, name, old_revision))
            remove_usage(conn, name)
            for model_id in model_ids:
                add_usage(conn, model_id, name)
