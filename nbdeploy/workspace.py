"""The workspace: the folder that holds the registry database, the blob store and deployment records.

Layout of a workspace folder::

    nbdeploy.db        SQLite (WAL), schema version in PRAGMA user_version, migrations in MIGRATIONS
    blobs/sha256/ab/cdef...   content-addressed files (read-only, deduplicated)
    tmp/               scratch on the same filesystem as blobs/ (atomic renames); stale files removed by gc
    services/<name>/   per-service working folders
    cache/             build cache
    gc.lock            registrations hold it shared, gc holds it exclusive

Which workspace is used when none is given, in order: ``NBDEPLOY_WORKSPACE``; a ``.nbdeploy/`` folder
found upward from the current directory (the workspace itself, or a ``.nbdeploy/config.json`` pointing at one:
``{"workspace": "<folder>"}``); ``~/.nbdeploy``.

Creating is explicit (:meth:`Workspace.create`), with one exception: the per-user default
``~/.nbdeploy`` is created on the first *write* (a registration, a deployment record). Reading a default
workspace that does not exist yet never creates anything: it reads as empty.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Union

from nbdeploy.errors import AlreadyExists, WorkspaceError

log = logging.getLogger(__name__)

ENV_VAR = "NBDEPLOY_WORKSPACE"
DIR_NAME = ".nbdeploy"
DB_NAME = "nbdeploy.db"
CONFIG_NAME = "config.json"
BUSY_TIMEOUT_S = 60.0

PathLike = Union[str, "os.PathLike[str]"]
Migration = tuple[int, Union[str, Callable[[sqlite3.Connection], None]]]

_SCHEMA_1 = """
CREATE TABLE model_names (
    name TEXT PRIMARY KEY,
    last_version INTEGER NOT NULL
);
CREATE TABLE models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_time TEXT NOT NULL,
    created_by TEXT,
    description TEXT,
    framework TEXT,
    framework_version TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
    root TEXT NOT NULL,
    size INTEGER NOT NULL,
    digest TEXT NOT NULL,
    UNIQUE (name, version)
);
CREATE TABLE model_files (
    model INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    mode INTEGER NOT NULL,
    PRIMARY KEY (model, path)
) WITHOUT ROWID;
CREATE INDEX model_files_blob ON model_files(blob);
CREATE TABLE model_tags (
    model INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model, key)
) WITHOUT ROWID;
CREATE INDEX model_tags_kv ON model_tags(key, value, model);
CREATE TABLE model_properties (
    model INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model, key)
) WITHOUT ROWID;
CREATE INDEX model_properties_kv ON model_properties(key, value, model);
CREATE TABLE model_usage (
    model_id TEXT NOT NULL,
    service TEXT NOT NULL,
    PRIMARY KEY (model_id, service)
);
"""

_SCHEMA_2 = """
-- deployment records (written by nbdeploy.service_records)
CREATE TABLE services (
    name TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    current_revision INTEGER,
    tags TEXT NOT NULL DEFAULT '{}',
    properties TEXT NOT NULL DEFAULT '{}',
    description TEXT,
    keys TEXT,
    created_time TEXT NOT NULL,
    updated_time TEXT NOT NULL
);
CREATE TABLE service_revisions (
    service TEXT NOT NULL REFERENCES services(name) ON DELETE CASCADE,
    revision INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    spec TEXT NOT NULL,
    handle TEXT,
    state TEXT,
    reason TEXT,
    evidence TEXT,
    created_time TEXT NOT NULL,
    finished_time TEXT,
    PRIMARY KEY (service, revision)
);
"""

_SCHEMA_REMOTE_ENGINES = """
-- saved Docker engines: container hosts (`nbdeploy host`) and edge devices (`nbdeploy device`), written by
-- nbdeploy.remote.store; TLS files are copied into engines/<kind>s/<name>/ (0600), paths here are relative
CREATE TABLE remote_engines (
    kind TEXT NOT NULL CHECK (kind IN ('host', 'device')),
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    tls INTEGER NOT NULL,
    tls_verify INTEGER NOT NULL,
    tls_files TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '{}',
    created_time TEXT NOT NULL,
    last_seen TEXT,
    engine_info TEXT,
    PRIMARY KEY (kind, name)
);
"""

#: Ordered schema migrations ``(version, sql or callable(conn))``. Append only; never edit a released one.
#: Each runs inside the exclusive transaction that opens the database, so SQL here must not COMMIT.
MIGRATIONS: list[Migration] = [
    (1, _SCHEMA_1),
    (2, _SCHEMA_2),
    (3, _SCHEMA_REMOTE_ENGINES),
]


def schema_version() -> int:
    """The schema version this nbdeploy writes (the last migration)."""
    return MIGRATIONS[-1][0] if MIGRATIONS else 0


def _split_sql(script: str) -> list[str]:
    """Split a script into statements (``executescript`` would COMMIT our transaction)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement in migration: {current.strip()[:80]!r}")
    return statements


def _apply_migrations(conn: sqlite3.Connection, where: Path) -> None:
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    latest = schema_version()
    if current > latest:
        raise WorkspaceError(
            f"Workspace {where} has schema version {current}, newer than this nbdeploy supports ({latest}); "
            "upgrade nbdeploy."
        )
    if current == latest:
        return
    conn.execute("BEGIN EXCLUSIVE")
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
        for version, step in MIGRATIONS:
            if version <= current:
                continue
            if callable(step):
                step(conn)
            else:
                for statement in _split_sql(step):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(version)}")
            log.info("workspace %s: applied migration %d", where, version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _connect(db_path: Path | str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=True)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class Workspace:
    """A folder holding the model registry, its files and deployment records.

    ``Workspace(path)`` opens an existing workspace (``WorkspaceError`` if the folder is not one);
    ``Workspace()`` resolves the default (see :meth:`get_default`).
    """

    def __init__(self, path: PathLike | None = None) -> None:
        if path is None:
            resolved, source = _resolve_default()
        else:
            resolved, source = Path(path).expanduser().absolute(), "explicit path"
        self.path: Path = resolved
        #: how it was found: "explicit path", "NBDEPLOY_WORKSPACE", ".nbdeploy upward", ".nbdeploy/config.json upward",
        #: "home default"
        self.source: str = source
        self._lazy = source == "home default"
        self._local = threading.local()
        self._memory: sqlite3.Connection | None = None
        if not self._lazy or self.exists():
            self._check()

    # ----- construction -------------------------------------------------------------------------

    @classmethod
    def create(cls, path: PathLike, exist_ok: bool = False) -> Workspace:
        """Create a workspace folder at ``path`` (an empty or missing folder) and return it."""
        target = Path(path).expanduser().absolute()
        if (target / DB_NAME).exists():
            if not exist_ok:
                raise AlreadyExists(f"{target} is already an nbdeploy workspace (pass exist_ok=True to reuse it).")
            return cls(target)
        if target.exists() and not target.is_dir():
            raise WorkspaceError(f"Cannot create a workspace at {target}: it is a file.")
        if target.is_dir() and any(target.iterdir()):
            raise WorkspaceError(
                f"Cannot create a workspace in {target}: the folder is not empty and is not a workspace."
            )
        _initialize(target)
        log.info("created workspace %s", target)
        return cls(target)

    @classmethod
    def get_default(cls) -> Workspace:
        """The workspace used when none is given: ``NBDEPLOY_WORKSPACE``, ``.nbdeploy/`` upward, ``~/.nbdeploy``."""
        return cls(None)

    @classmethod
    def from_config(cls, path: PathLike | None = None) -> Workspace:
        """Open the workspace named by a ``config.json`` (``{"workspace": "<folder>"}``).

        ``path`` is the config file or a folder holding one; without it the current folder and its parents
        are searched (files without a ``"workspace"`` key are skipped). Relative workspace paths are
        resolved against the config file's folder.
        """
        if path is not None:
            p = Path(path).expanduser().absolute()
            config = p / CONFIG_NAME if p.is_dir() else p
            if not config.is_file():
                raise WorkspaceError(f"No workspace config file at {config}.")
            target = _read_config(config, strict=True)
            assert target is not None
            return cls(target)
        here = Path.cwd()
        for folder in (here, *here.parents):
            config = folder / CONFIG_NAME
            if config.is_file():
                target = _read_config(config, strict=False)
                if target is not None:
                    return cls(target)
        raise WorkspaceError(
            f"No {CONFIG_NAME} with a \"workspace\" key found in {here} or its parents; "
            "write one with Workspace.write_config()."
        )

    def write_config(self, path: PathLike | None = None) -> Path:
        """Write ``config.json`` pointing at this workspace into folder ``path`` (default: cwd)."""
        folder = Path(path).expanduser().absolute() if path is not None else Path.cwd()
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / CONFIG_NAME
        config.write_text(json.dumps({"workspace": str(self.path)}, indent=2) + "\n")
        return config

    # ----- state ----------------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the workspace folder has been created."""
        return (self.path / DB_NAME).is_file()

    def ensure(self) -> None:
        """Create the lazily-created default workspace before a write (no-op for existing ones)."""
        if self.exists():
            return
        if not self._lazy:
            raise WorkspaceError(f"{self.path} is not an nbdeploy workspace.")
        _initialize(self.path)
        log.info("created default workspace %s", self.path)
        self._check()

    def _check(self) -> None:
        if not self.path.is_dir():
            raise WorkspaceError(
                f"Workspace folder {self.path} ({self.source}) does not exist; "
                f"create it with `nbdeploy workspace create {self.path}`."
            )
        if not (self.path / DB_NAME).is_file():
            raise WorkspaceError(
                f"{self.path} ({self.source}) is not an nbdeploy workspace (no {DB_NAME}); "
                f"create one with `nbdeploy workspace create PATH`."
            )
        self.db()  # validates the database and applies pending migrations

    # ----- paths ----------------------------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    @property
    def blobs_dir(self) -> Path:
        return self.path / "blobs"

    @property
    def tmp_dir(self) -> Path:
        """Scratch space on the same filesystem as :attr:`blobs_dir`."""
        return self.path / "tmp"

    @property
    def services_dir(self) -> Path:
        return self.path / "services"

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    @property
    def lock_path(self) -> Path:
        return self.path / "gc.lock"

    def service_dir(self, name: str, create: bool = False) -> Path:
        """``services/<name>/``; created (with the workspace, if lazy) when ``create``."""
        d = self.services_dir / name
        if create:
            self.ensure()
            d.mkdir(parents=True, exist_ok=True)
        return d

    # ----- database -------------------------------------------------------------------------------

    def db(self, create: bool = True) -> sqlite3.Connection:
        """This thread's connection to the workspace database (autocommit; use :meth:`transaction`).

        Connections are cached per thread and process. For the not-yet-created default workspace,
        ``create=False`` returns an empty in-memory database (reads see nothing, nothing is created)
        and ``create=True`` creates the workspace first.
        """
        if not self.exists():
            if self._lazy and not create:
                if self._memory is None:
                    self._memory = _connect(":memory:")
                    _apply_migrations(self._memory, self.path)
                return self._memory
            self.ensure()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        try:
            conn = _connect(self.db_path)
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            _apply_migrations(conn, self.path)
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"{self.db_path} is not a usable nbdeploy database: {exc}") from exc
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextlib.contextmanager
    def transaction(self, create: bool = True) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): one writer at a time, across processes."""
        conn = self.db(create=create)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection (a later :meth:`db` reopens)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local = threading.local()

    # ----- locks ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Held (shared) by anyone with files in flight in ``tmp/`` or new blobs not yet in the database.

        :meth:`gc_lock` (exclusive) waits for all holders, so gc never removes in-flight files. A killed
        process releases its lock at once (``flock``). Without ``fcntl`` (Windows) this is a no-op and gc
        only removes ``tmp/`` entries older than an hour.
        """
        self.ensure()
        with _flock(self.lock_path, exclusive=False, blocking=True):
            yield

    @contextlib.contextmanager
    def gc_lock(self, blocking: bool = True) -> Iterator[bool]:
        """Exclusive counterpart of :meth:`writer_lock`; yields False when ``blocking=False`` and it is busy."""
        with _flock(self.lock_path, exclusive=True, blocking=blocking) as got:
            yield got

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)


@contextlib.contextmanager
def _flock(path: Path, exclusive: bool, blocking: bool) -> Iterator[bool]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield True
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        flags = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


HAVE_FLOCK = os.name == "posix"


def _initialize(target: Path) -> None:
    for sub in ("", "blobs", "tmp", "services", "cache"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    (target / "gc.lock").touch()
    conn = _connect(target / DB_NAME)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        _apply_migrations(conn, target)
    finally:
        conn.close()


def _read_config(config: Path, strict: bool) -> Path | None:
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        if strict:
            raise WorkspaceError(f"Cannot read workspace config {config}: {exc}") from exc
        log.debug("skipping %s: %s", config, exc)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("workspace"), str):
        if strict:
            raise WorkspaceError(f'{config} has no "workspace" key naming a workspace folder.')
        log.debug("skipping %s: no workspace key", config)
        return None
    target = Path(data["workspace"]).expanduser()
    return target if target.is_absolute() else (config.parent / target).absolute()


def _pointer(folder: Path) -> Path | None:
    """The workspace a ``.nbdeploy/config.json`` points at (``nbdeploy workspace create PATH --default``), if any."""
    if (folder / DB_NAME).is_file() or not (folder / CONFIG_NAME).is_file():
        return None
    return _read_config(folder / CONFIG_NAME, strict=False)


def _resolve_default() -> tuple[Path, str]:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().absolute(), ENV_VAR
    here = Path.cwd()
    for folder in (here, *here.parents):
        candidate = folder / DIR_NAME
        if candidate.is_dir() and candidate != Path.home() / DIR_NAME:
            pointed = _pointer(candidate)
            if pointed is not None:
                return pointed, ".nbdeploy/config.json upward"
            return candidate, ".nbdeploy upward"
    return Path.home() / DIR_NAME, "home default"


_OPENED: dict[tuple[Path, str], Workspace] = {}
_OPENED_LOCK = threading.Lock()


def as_workspace(workspace: Workspace | PathLike | None) -> Workspace:
    """Accept a Workspace, a path or None (the default workspace).

    Workspaces opened from a path or the default are cached per (folder, how it was found), so repeated
    library calls reuse one database connection per thread.
    """
    if isinstance(workspace, Workspace):
        return workspace
    if workspace is None:
        key = _resolve_default()
    else:
        key = (Path(workspace).expanduser().absolute(), "explicit path")
    with _OPENED_LOCK:
        cached = _OPENED.get(key)
    if cached is not None and (cached._lazy or cached.exists()):
        return cached
    ws = Workspace(key[0]) if key[1] == "explicit path" else Workspace(None)
    with _OPENED_LOCK:
        _OPENED[key] = ws
    return ws


__all__ = ["Workspace", "MIGRATIONS", "schema_version", "as_workspace"]
