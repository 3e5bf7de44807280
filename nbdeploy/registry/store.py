"""SQL over the registry tables (created by migration 1 in :mod:`nbdeploy.workspace`).

Every function takes a connection; writers are called inside ``Workspace.transaction()``.

File names are Linux file names: any bytes but NUL and '/'. In Python they are ``str`` with undecodable
bytes as surrogates (``os.fsdecode``); a name that is valid UTF-8 is stored as TEXT, any other as the
BLOB of its bytes, so every file can be registered and laid out again byte for byte.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbdeploy.registry.names import Filter


def name_to_db(name: str) -> str | bytes:
    """A file name as stored: TEXT when it is valid UTF-8, else the BLOB of its bytes."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return os.fsencode(name)


def name_from_db(value: str | bytes) -> str:
    """The inverse of :func:`name_to_db` (undecodable bytes come back as surrogates)."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


@dataclass(frozen=True)
class FileEntry:
    """One file of a model version: its path as laid out by ``download``, blob digest, size and mode."""

    path: str
    digest: str
    size: int
    mode: int


@dataclass
class ModelRecord:
    """A model version as stored. Tags and properties may arrive as JSON text, decoded on first use."""

    name: str
    version: int
    created_time: str
    created_by: str | None
    description: str | None
    framework: str | None
    framework_version: str | None
    kind: str
    root: str
    size: int
    digest: str
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    rowid: int | None = None

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if name in ("tags", "properties") and isinstance(value, str):
            value = json.loads(value)
            object.__setattr__(self, name, value)
        return value


_COLUMNS = (
    "m.id, m.name, m.version, m.created_time, m.created_by, m.description, m.framework, "
    "m.framework_version, m.kind, m.root, m.size, m.digest, "
    "(SELECT json_group_object(key, value) FROM model_tags WHERE model = m.id) AS tags, "
    "(SELECT json_group_object(key, value) FROM model_properties WHERE model = m.id) AS properties"
)


def _record(row: Sequence[Any]) -> ModelRecord:
    """A record from a row of ``_COLUMNS`` (a tuple or sqlite3.Row, by position); tags stay JSON until used."""
    return ModelRecord(
        rowid=row[0],
        name=row[1],
        version=row[2],
        created_time=row[3],
        created_by=row[4],
        description=row[5],
        framework=row[6],
        framework_version=row[7],
        kind=row[8],
        root=name_from_db(row[9]),
        size=row[10],
        digest=row[11],
        tags=row[12] or {},
        properties=row[13] or {},  # JSON text, decoded lazily
    )


def insert_model(conn: sqlite3.Connection, rec: ModelRecord, files: Sequence[FileEntry]) -> ModelRecord:
    """Give ``rec`` the next version of its name and insert it with its files, tags and properties."""
    conn.execute(
        "INSERT INTO model_names(name, last_version) VALUES (?, 1) "
        "ON CONFLICT(name) DO UPDATE SET last_version = last_version + 1",
        (rec.name,),
    )
    rec.version = conn.execute("SELECT last_version FROM model_names WHERE name = ?", (rec.name,)).fetchone()[0]
    cur = conn.execute(
        "INSERT INTO models(name, version, created_time, created_by, description, framework, framework_version,"
        " kind, root, size, digest) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            rec.name,
            rec.version,
            rec.created_time,
            rec.created_by,
            rec.description,
            rec.framework,
            rec.framework_version,
            rec.kind,
            name_to_db(rec.root),
            rec.size,
            rec.digest,
        ),
    )
    rec.rowid = cur.lastrowid
    conn.executemany(
        "INSERT INTO model_files(model, path, blob, size, mode) VALUES (?,?,?,?,?)",
        [(rec.rowid, name_to_db(f.path), f.digest, f.size, f.mode) for f in files],
    )
    conn.executemany(
        "INSERT INTO model_tags(model, key, value) VALUES (?,?,?)", [(rec.rowid, k, v) for k, v in rec.tags.items()]
    )
    conn.executemany(
        "INSERT INTO model_properties(model, key, value) VALUES (?,?,?)",
        [(rec.rowid, k, v) for k, v in rec.properties.items()],
    )
    return rec


def get(conn: sqlite3.Connection, name: str, version: int | None) -> ModelRecord | None:
    """One version, or the latest when ``version`` is None."""
    if version is None:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM models m WHERE m.name = ? ORDER BY m.version DESC LIMIT 1", (name,)
        ).fetchone()
    else:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM models m WHERE m.name = ? AND m.version = ?", (name, version)
        ).fetchone()
    return _record(row) if row is not None else None


def versions(conn: sqlite3.Connection, name: str) -> list[int]:
    return [r[0] for r in conn.execute("SELECT version FROM models WHERE name = ? ORDER BY version", (name,))]


def names(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT name FROM models ORDER BY name")]


def _filter_sql(table: str, filters: Sequence[Filter], where: list[str], args: list[Any]) -> None:
    for key, value in filters:
        if value is None:
            where.append(f"EXISTS (SELECT 1 FROM {table} x WHERE x.model = m.id AND x.key = ?)")
            args.append(key)
        else:
            where.append(f"EXISTS (SELECT 1 FROM {table} x WHERE x.model = m.id AND x.key = ? AND x.value = ?)")
            args.extend((key, value))


def query(
    conn: sqlite3.Connection,
    name: str | None = None,
    tags: Sequence[Filter] = (),
    properties: Sequence[Filter] = (),
    framework: str | None = None,
    latest: bool = False,
) -> list[ModelRecord]:
    """Versions matching every filter, by name then version. ``latest``: the newest match per name."""
    where: list[str] = []
    args: list[Any] = []
    if name is not None:
        where.append("m.name = ?")
        args.append(name)
    if framework is not None:
        where.append("m.framework = ?")
        args.append(framework)
    _filter_sql("model_tags", tags, where, args)
    _filter_sql("model_properties", properties, where, args)
    cond = " AND ".join(where) or "1"
    if latest:
        sql = (
            f"WITH matched AS (SELECT m.id, m.name, m.version FROM models m WHERE {cond}) "
            f"SELECT {_COLUMNS} FROM models m WHERE m.id IN (SELECT id FROM matched a WHERE a.version = "
            f"(SELECT MAX(b.version) FROM matched b WHERE b.name = a.name)) ORDER BY m.name"
        )
    else:
        sql = f"SELECT {_COLUMNS} FROM models m WHERE {cond} ORDER BY m.name, m.version"
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples: thousands of rows build faster
    return [_record(r) for r in cursor.execute(sql, args)]


def files(conn: sqlite3.Connection, rowid: int) -> list[FileEntry]:
    return [
        FileEntry(name_from_db(r["path"]), r["blob"], r["size"], r["mode"])
        for r in conn.execute("SELECT path, blob, size, mode FROM model_files WHERE model = ? ORDER BY path", (rowid,))
    ]


def set_tags(conn: sqlite3.Connection, rowid: int, tags: Mapping[str, str]) -> None:
    conn.executemany(
        "INSERT INTO model_tags(model, key, value) VALUES (?,?,?) "
        "ON CONFLICT(model, key) DO UPDATE SET value = excluded.value",
        [(rowid, k, v) for k, v in tags.items()],
    )


def remove_tags(conn: sqlite3.Connection, rowid: int, keys: Sequence[str]) -> None:
    conn.executemany("DELETE FROM model_tags WHERE model = ? AND key = ?", [(rowid, k) for k in keys])


def add_properties(conn: sqlite3.Connection, rowid: int, props: Mapping[str, str]) -> None:
    conn.executemany(
        "INSERT INTO model_properties(model, key, value) VALUES (?,?,?)", [(rowid, k, v) for k, v in props.items()]
    )


def current_pairs(conn: sqlite3.Connection, table: str, rowid: int) -> dict[str, str]:
    assert table in ("model_tags", "model_properties")
    return {r[0]: r[1] for r in conn.execute(f"SELECT key, value FROM {table} WHERE model = ?", (rowid,))}


def users(conn: sqlite3.Connection, model_id: str) -> list[str]:
    """Services recorded in ``model_usage`` as using ``name:version``."""
    return [
        r[0] for r in conn.execute("SELECT service FROM model_usage WHERE model_id = ? ORDER BY service", (model_id,))
    ]


def delete(conn: sqlite3.Connection, rowid: int) -> list[str]:
    """Delete one version (files, tags, properties cascade); return blobs no version refers to any more."""
    blobs = [r[0] for r in conn.execute("SELECT DISTINCT blob FROM model_files WHERE model = ?", (rowid,))]
    conn.execute("DELETE FROM models WHERE id = ?", (rowid,))
    return [
        b for b in blobs if conn.execute("SELECT 1 FROM model_files WHERE blob = ? LIMIT 1", (b,)).fetchone() is None
    ]


def referenced_blobs(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT DISTINCT blob FROM model_files")}


def add_usage(conn: sqlite3.Connection, model_id: str, service: str) -> None:
    """Record that ``service`` uses model ``name:version`` (idempotent)."""
    conn.execute("INSERT OR IGNORE INTO model_usage(model_id, service) VALUES (?, ?)", (model_id, service))


def remove_usage(conn: sqlite3.Connection, service: str, model_id: str | None = None) -> None:
    """Forget that ``service`` uses ``model_id`` (every model when None)."""
    if model_id is None:
        conn.execute("DELETE FROM model_usage WHERE service = ?", (service,))
    else:
        conn.execute("DELETE FROM model_usage WHERE service = ? AND model_id = ?", (service, model_id))
