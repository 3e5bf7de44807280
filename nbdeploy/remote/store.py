"""Named Docker engines saved in the workspace: container hosts and edge devices.

A team writes a connection once (``nbdeploy host add``/``nbdeploy device add``) and refers to it by name.
The TLS files are copied into the workspace (``engines/hosts/<name>/`` or ``engines/devices/<name>/``, folder
0700, files 0600), so the saved engine keeps working when the originals move. Devices carry tags
(``site=plant-3``) that select groups of them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from nbdeploy.errors import AlreadyExists, InvalidName, NotFound
from nbdeploy.registry.names import check_pairs
from nbdeploy.remote.connection import EngineConnection, EngineInfo
from nbdeploy.workspace import PathLike, Workspace, as_workspace

Kind = Literal["host", "device"]
KINDS: tuple[Kind, ...] = ("host", "device")
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
NAME_RULE = "lowercase letters, digits and '-', 1-63 characters, starting and ending with a letter or digit"
_TLS_FILES = (("ca", "tls_ca", "ca.pem"), ("cert", "tls_cert", "cert.pem"), ("key", "tls_key", "key.pem"))


class HostNotFound(NotFound):
    kind = "container host"


class DeviceNotFound(NotFound):
    kind = "device"


@dataclasses.dataclass(frozen=True)
class SavedEngine:
    """A saved host or device: its connection, tags and what its engine said when last checked."""

    kind: Kind
    name: str
    connection: EngineConnection
    tags: dict[str, str]
    created_time: str
    last_seen: str | None
    info: EngineInfo | None

    def matches(self, selector: Mapping[str, str]) -> bool:
        """Whether every ``key=value`` of ``selector`` is one of this engine's tags."""
        return all(self.tags.get(k) == v for k, v in selector.items())

    def as_dict(self) -> dict[str, Any]:
        c = self.connection
        return {
            "kind": self.kind,
            "name": self.name,
            "url": c.url,
            "tls": c.uses_tls,
            "tls_verify": c.tls_verify,
            "tls_ca": c.tls_ca,
            "tls_cert": c.tls_cert,
            "tls_key": c.tls_key,
            "tags": dict(self.tags),
            "created_time": self.created_time,
            "last_seen": self.last_seen,
            "engine": self.info.as_dict() if self.info else None,
        }


class EngineStore:
    """The saved engines of one kind (``"host"`` or ``"device"``) in a workspace."""

    def __init__(self, kind: Kind, workspace: Workspace | PathLike | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self.kind: Kind = kind
        self.workspace = as_workspace(workspace)

    @property
    def files_dir(self) -> Path:
        return self.workspace.path / "engines" / f"{self.kind}s"

    # ----- writes ---------------------------------------------------------------------------------

    def add(
        self, name: str, connection: EngineConnection, tags: Mapping[str, str] | None = None, replace: bool = False
    ) -> SavedEngine:
        """Save ``connection`` as ``name`` (its TLS files copied in); AlreadyExists unless ``replace``."""
        self._check_name(name)
        clean_tags = check_pairs("tags", dict(tags or {}))
        ws = self.workspace
        ws.ensure()
        with ws.writer_lock():
            staging = ws.tmp_dir / f"engine-{self.kind}-{name}-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            copied = _copy_tls_files(connection, staging)
            final = self.files_dir / name
            try:
                with ws.transaction() as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM remote_engines WHERE kind = ? AND name = ?", (self.kind, name)
                    ).fetchone()
                    if exists and not replace:
                        raise AlreadyExists(
                            f"A {self._noun} named {name!r} is saved already; remove it first "
                            f"(nbdeploy {self.kind} remove {name}) or pass replace=True (--replace)."
                        )
                    files = {key: f"engines/{self.kind}s/{name}/{fname}" for key, fname in copied.items()}
                    conn.execute(
                        "INSERT OR REPLACE INTO remote_engines (kind, name, url, tls, tls_verify, tls_files, tags, "
                        "created_time, last_seen, engine_info) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                        (
                            self.kind,
                            name,
                            connection.url,
                            int(connection.uses_tls),
                            int(connection.tls_verify),
                            json.dumps(files),
                            json.dumps(clean_tags, sort_keys=True),
                            _now(),
                        ),
                    )
                    shutil.rmtree(final, ignore_errors=True)
                    if copied:
                        final.parent.mkdir(parents=True, exist_ok=True)
                        os.chmod(final.parent.parent, 0o700)
                        staging.rename(final)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return self.get(name)

    def remove(self, name: str) -> None:
        """Forget ``name`` and delete its copied TLS files (NotFound when it is not saved)."""
        with self.workspace.transaction() as conn:
            gone = conn.execute("DELETE FROM remote_engines WHERE kind = ? AND name = ?", (self.kind, name)).rowcount
            if not gone:
                raise self._not_found(name, conn)
        shutil.rmtree(self.files_dir / name, ignore_errors=True)

    def record_check(self, name: str, info: EngineInfo) -> None:
        """Remember that ``name`` answered now, with what its engine said."""
        with self.workspace.transaction() as conn:
            conn.execute(
                "UPDATE remote_engines SET last_seen = ?, engine_info = ? WHERE kind = ? AND name = ?",
                (_now(), json.dumps(info.as_dict()), self.kind, name),
            )

    def check(self, name: str, timeout: float = 10.0) -> EngineInfo:
        """Connect to ``name``'s engine (one-line EngineUnavailable when it can't) and record when it answered."""
        info = self.get(name).connection.check(timeout=timeout)
        self.record_check(name, info)
        return info

    # ----- reads ----------------------------------------------------------------------------------

    def get(self, name: str) -> SavedEngine:
        conn = self.workspace.db(create=False)
        row = conn.execute("SELECT * FROM remote_engines WHERE kind = ? AND name = ?", (self.kind, name)).fetchone()
        if row is None:
            raise self._not_found(name, conn)
        return self._from_row(row)

    def names(self) -> list[str]:
        return [
            r[0]
            for r in self.workspace.db(create=False).execute(
                "SELECT name FROM remote_engines WHERE kind = ? ORDER BY name", (self.kind,)
            )
        ]

    def list(self, selector: Mapping[str, str] | None = None) -> list[SavedEngine]:
        """Saved engines of this kind, by name; only those whose tags match every ``selector`` pair."""
        rows = (
            self.workspace.db(create=False)
            .execute("SELECT * FROM remote_engines WHERE kind = ? ORDER BY name", (self.kind,))
            .fetchall()
        )
        engines = [self._from_row(r) for r in rows]
        return [e for e in engines if e.matches(selector)] if selector else engines

    # ----- helpers --------------------------------------------------------------------------------

    @property
    def _noun(self) -> str:
        return "container host" if self.kind == "host" else "device"

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InvalidName(self._noun, str(name), NAME_RULE)

    def _not_found(self, name: str, conn: Any) -> NotFound:
        names = [r[0] for r in conn.execute("SELECT name FROM remote_engines WHERE kind = ?", (self.kind,))]
        cls = HostNotFound if self.kind == "host" else DeviceNotFound
        return cls(name, names, hint=f"Saved {self.kind}s: nbdeploy {self.kind} list")

    def _from_row(self, row: Any) -> SavedEngine:
        files = json.loads(row["tls_files"])
        paths = {attr: str(self.workspace.path / files[key]) if key in files else None for key, attr, _ in _TLS_FILES}
        connection = EngineConnection(
            url=row["url"], tls=bool(row["tls"]), tls_verify=bool(row["tls_verify"]), name=row["name"], **paths
        )
        info = EngineInfo(**json.loads(row["engine_info"])) if row["engine_info"] else None
        return SavedEngine(
            kind=row["kind"],
            name=row["name"],
            connection=connection,
            tags=json.loads(row["tags"]),
            created_time=row["created_time"],
            last_seen=row["last_seen"],
            info=info,
        )


def parse_selector(text: str | None) -> dict[str, str]:
    """``"site=plant-3,tier=a"`` -> ``{"site": "plant-3", "tier": "a"}`` (InvalidInput on a bad item)."""
    from nbdeploy.registry.names import parse_assignment

    if not text:
        return {}
    return dict(parse_assignment("selector", item.strip()) for item in text.split(",") if item.strip())


def _copy_tls_files(connection: EngineConnection, folder: Path) -> dict[str, str]:
    """Copy the connection's TLS files into ``folder`` (0700) as ca.pem/cert.pem/key.pem, each 0600."""
    copied: dict[str, str] = {}
    for key, attr, fname in _TLS_FILES:
        source = getattr(connection, attr)
        if not source:
            continue
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
        data = Path(source).read_bytes()
        fd = os.open(folder / fname, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(folder / fname, 0o600)
        copied[key] = fname
    return copied


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
