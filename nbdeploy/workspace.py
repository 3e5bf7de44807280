"""The workspace: the folder that holds the registry database, the blob store and deployment records.

Layout of a workspace folder::

    nbdeploy.db        SQLite (WAL), schema version in PRAGMA user_version, migrations in MIGRATIONS
    blobs/sha256/ab/cdef...   content-addressed files (read-only, deduplicated)
    tmp/               scratch on the same filesystem as blobs/ (atomic renames); stale files removed by gc
    services/<name>/   per-service working folders
    cache/             build cache
    gc.lock            registrations hold it shared, gc holds it exclusive
    workspace.id       the workspace's id, also stored in the database: a database from elsewhere is refused

The database holds service keys, so it (and its ``-wal``/``-shm`` files) is readable by its owner only
(0600). A database that is empty, has no nbdeploy schema, or carries another workspace's id is refused
with a clear error, never treated as a new workspace (a ``gc`` would then delete every blob). A workspace
on a read-only or full disk stays readable: the database is opened read-only when it cannot be opened for
writing, and writes fail with one line saying why.

Which workspace is used when none is given, in order: ``NBDEPLOY_WORKSPACE``; a ``.nbdeploy/`` folder
found upward from the current directory (the workspace itself, or a ``.nbdeploy/config.json`` pointing at one:
``{"workspace": "<folder>"}``); ``~/.nbdeploy``.

Creating is explicit (:meth:`Workspace.create`), with one exception: the per-user default
``~/.nbdeploy`` is created on the first *write* (a registration, a deployment record). Reading a default
workspace that does not exist yet never creates anything: it reads as empty.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sqlite3
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Union

from nbdeploy.errors import AlreadyExists, WorkspaceError

log = logging.getLogger(__name__)

ENV_VAR = "NBDEPLOY_WORKSPACE"
DIR_NAME = ".nbdeploy"
DB_NAME = "nbdeploy.db"
CONFIG_NAME = "config.json"
ID_NAME = "workspace.id"
#: The oldest schema a read-only workspace is read at without migrating (migration 4 only adds the id).
READ_ONLY_MIN_SCHEMA = 3
#: Mode of the database and its -wal/-shm files (SQLite gives those the database file's mode).
SECRET_FILE_MODE = 0o600
BUSY_TIMEOUT_S = 60.0

PathLike = Union[str, "os.PathLike[str]"]
Migration = tuple[int, str | Callable[[sqlite3.Connection], None]]

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


def _migration_4(conn: sqlite3.Connection) -> None:
    """The workspace id (also in ``workspace.id``), and no auth keys left in the revision history."""
    conn.execute("CREATE TABLE workspace_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    conn.execute("INSERT INTO workspace_meta(key, value) VALUES ('id', ?)", (uuid.uuid4().hex,))
    conn.execute(
        "UPDATE service_revisions SET spec = json_remove(spec, '$.deployment_config.keys') "
        "WHERE json_valid(spec) AND json_extract(spec, '$.deployment_config.keys') IS NOT NULL"
    )


#: Ordered schema migrations ``(version, sql or callable(conn))``. Append only; never edit a released one.
#: Each runs inside the exclusive transaction that opens the database, so SQL here must not COMMIT.
MIGRATIONS: list[Migration] = [
    (1, _SCHEMA_1),
    (2, _SCHEMA_2),
    (3, _SCHEMA_REMOTE_ENGINES),
    (4, _migration_4),
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


def _connect(db_path: Path | str, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=True, uri=uri)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA secure_delete = ON")  # replaced keys are overwritten, not left in free space
    return conn


_FULL = ("SQLITE_FULL",)
_READ_ONLY = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")
_IO = ("SQLITE_IOERR",)
_CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "sqlite_errorname", "") or "")


def is_storage_error(exc: BaseException) -> bool:
    """Whether an SQLite error is about the disk (full, read-only, no access, I/O), not the data."""
    return isinstance(exc, sqlite3.Error) and _code(exc).startswith(_FULL + _READ_ONLY + _IO)


def storage_error(where: Path, doing: str, exc: BaseException) -> WorkspaceError:
    """A one-line :class:`WorkspaceError` for an SQLite or OS error met while ``doing`` something in ``where``."""
    code = _code(exc)
    err = getattr(exc, "errno", None)
    detail = getattr(exc, "strerror", None) or str(exc)
    if code.startswith(_FULL) or err in (errno.ENOSPC, errno.EDQUOT) or (code.startswith(_IO) and _disk_full(where)):
        return WorkspaceError(
            f"Workspace {where} is out of disk space: cannot {doing} ({detail}). "
            "Free space on that disk and retry; `nbdeploy gc` removes leftovers."
        )
    if code.startswith(_READ_ONLY) or err in (errno.EROFS, errno.EACCES, errno.EPERM):
        return WorkspaceError(
            f"Workspace {where} is read-only here: cannot {doing} ({detail}). "
            "Reading works; write from an account and a mount that may write there."
        )
    if code.startswith(_CORRUPT):
        return WorkspaceError(
            f"{where / DB_NAME} is damaged: cannot {doing} ({detail}). "
            "Restore it from a backup; `nbdeploy verify` checks the workspace."
        )
    return WorkspaceError(f"Workspace {where}: cannot {doing} ({detail}).")


def _disk_full(where: Path) -> bool:
    """Whether the disk holding ``where`` has (almost) no space left: SQLite reports some of those as I/O errors."""
    try:
        st = os.statvfs(where)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def _lost_database(where: Path, problem: str) -> WorkspaceError:
    return WorkspaceError(
        f"{where / DB_NAME} {problem}, but {where} is an existing workspace ({_evidence(where)}): the database was "
        "lost or replaced. nbdeploy refuses to treat it as a new workspace (a gc would delete every model file). "
        f"Restore {DB_NAME} (with {DB_NAME}-wal if present) from a backup, or move the folder away."
    )


def _evidence(where: Path) -> str:
    """What shows that ``where`` held a workspace: its id file, its blobs."""
    found = []
    if (where / ID_NAME).is_file():
        found.append(f"{ID_NAME} present")
    blobs = sum(1 for _ in _blob_files(where))
    if blobs:
        found.append(f"{blobs} blob file(s)")
    return ", ".join(found) or "its folders are laid out"


def _blob_files(where: Path) -> Iterator[Path]:
    root = where / "blobs" / "sha256"
    if not root.is_dir():
        return
    for sub in root.iterdir():
        if sub.is_dir():
            yield from (f for f in sub.iterdir() if f.is_file())


def _has_history(where: Path) -> bool:
    """Whether the folder shows signs of a workspace that had data (an id file or any blob)."""
    return (where / ID_NAME).is_file() or next(iter(_blob_files(where)), None) is not None


def _read_id_file(where: Path) -> str | None:
    try:
        return (where / ID_NAME).read_text().strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WorkspaceError(f"Cannot read {where / ID_NAME}: {exc.strerror}.") from exc


def _write_id_file(where: Path, workspace_id: str) -> None:
    tmp = where / f".{ID_NAME}.{os.getpid()}"
    tmp.write_text(workspace_id + "\n")
    os.replace(tmp, where / ID_NAME)


def _restrict_modes(db_path: Path) -> None:
    """Database, -wal and -shm readable by their owner only (they hold service keys)."""
    for suffix in ("", "-wal", "-shm"):
        f = Path(str(db_path) + suffix)
        try:
            st = f.stat()
            if st.st_mode & 0o077 and st.st_uid == os.geteuid():
                os.chmod(f, SECRET_FILE_MODE)
        except OSError:
            pass


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
        #: True when the database could only be opened read-only (a read-only or full disk, no write access)
        self.read_only: bool = False
        self._read_only_because: BaseException | None = None
        #: the workspace id (from the database), once opened
        self.id: str | None = None
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
        if target.is_dir() and _has_history(target):
            raise _lost_database(target, "is missing")
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
            f'No {CONFIG_NAME} with a "workspace" key found in {here} or its parents; '
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
        if _has_history(self.path):
            raise _lost_database(self.path, "is missing")
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
            if _has_history(self.path):
                raise _lost_database(self.path, "is missing")
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
            if self._lazy and not create and not _has_history(self.path):
                if self._memory is None:
                    self._memory = _connect(":memory:")
                    _apply_migrations(self._memory, self.path)
                return self._memory
            self.ensure()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        conn = self._open()
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _open(self) -> sqlite3.Connection:
        """Open, check and migrate the database; read-only when the disk or the permissions allow no more."""
        try:
            size = self.db_path.stat().st_size
        except OSError as exc:
            raise WorkspaceError(f"Cannot read {self.db_path}: {exc.strerror}.") from exc
        if size == 0:
            raise _lost_database(self.path, "is empty (0 bytes)")
        read_only = False
        try:
            conn = _connect(self.db_path)
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            if not is_storage_error(exc):
                raise WorkspaceError(f"{self.db_path} is not a usable nbdeploy database: {exc}") from exc
            conn, version = self._open_read_only(exc)
            read_only = True
            self._read_only_because = exc
        if version == 0:
            conn.close()
            raise _lost_database(self.path, "has no nbdeploy tables")
        if read_only:
            if not READ_ONLY_MIN_SCHEMA <= version <= schema_version():
                conn.close()
                raise WorkspaceError(
                    f"Workspace {self.path} has schema version {version} and this nbdeploy uses "
                    f"{schema_version()}; it is read-only here, so it cannot be migrated: open it once with "
                    "write access, or use the nbdeploy version that wrote it."
                )
        else:
            try:
                _apply_migrations(conn, self.path)
            except sqlite3.DatabaseError as exc:
                conn.close()
                if is_storage_error(exc):
                    raise storage_error(self.path, "upgrade the database schema", exc) from exc
                raise WorkspaceError(f"{self.db_path} is not a usable nbdeploy database: {exc}") from exc
            except BaseException:
                conn.close()
                raise
            _restrict_modes(self.db_path)
        self.read_only = read_only
        self._check_identity(conn)
        return conn

    def _open_read_only(self, first: BaseException) -> tuple[sqlite3.Connection, int]:
        """Open the database read-only after ``first`` (a storage error) refused a read-write open."""
        uri = "file:" + urllib.parse.quote(str(self.db_path)) + "?mode=ro"
        attempts = [uri]
        wal = Path(str(self.db_path) + "-wal")
        if not (wal.is_file() and wal.stat().st_size > 0):
            attempts.append(uri + "&immutable=1")  # nothing in the WAL to miss: read the file as it is
        last: BaseException = first
        for attempt in attempts:
            try:
                conn = _connect(attempt, uri=True)
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            except sqlite3.DatabaseError as exc:
                last = exc
                continue
            log.info("workspace %s opened read-only (%s)", self.path, first)
            return conn, version
        raise storage_error(self.path, "open the database", last) from last

    def _check_identity(self, conn: sqlite3.Connection) -> None:
        """The database's workspace id must be the one in ``workspace.id`` (written when missing)."""
        if (
            self.read_only
            and not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'workspace_meta'"
            ).fetchone()
        ):
            return  # an older schema read where it cannot be migrated: no id to compare yet
        row = conn.execute("SELECT value FROM workspace_meta WHERE key = 'id'").fetchone()
        if row is None:
            conn.close()
            raise _lost_database(self.path, "has no workspace id")
        db_id = row[0]
        file_id = _read_id_file(self.path)
        if file_id is None:
            if not self.read_only:
                try:
                    _write_id_file(self.path, db_id)
                except OSError as exc:
                    log.warning("cannot write %s: %s", self.path / ID_NAME, exc)
        elif file_id != db_id:
            conn.close()
            raise WorkspaceError(
                f"{self.db_path} belongs to workspace {db_id}, but {self.path / ID_NAME} says this folder is "
                f"workspace {file_id}: the database was replaced by another workspace's. Put this workspace's "
                f"{DB_NAME} back (nothing was changed)."
            )
        self.id = db_id

    def check_intact(self) -> None:
        """Raise :class:`WorkspaceError` unless the database is provably this workspace's own and intact.

        Checks: the id in the database equals ``workspace.id``, the schema version is current, and SQLite's
        ``quick_check`` passes. ``gc`` calls this before deleting anything.
        """
        conn = self.db()
        db_id = conn.execute("SELECT value FROM workspace_meta WHERE key = 'id'").fetchone()
        file_id = _read_id_file(self.path)
        if db_id is None or file_id is None or db_id[0] != file_id:
            raise WorkspaceError(
                f"Cannot prove that {self.db_path} is this workspace's database ({ID_NAME}: {file_id or 'missing'}, "
                f"database: {db_id[0] if db_id else 'no id'}); nothing was deleted."
            )
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version != schema_version():
            raise WorkspaceError(f"{self.db_path} has schema version {version}, expected {schema_version()}.")
        try:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"{self.db_path} fails its integrity check: {exc}; nothing was deleted.") from exc
        if problems != ["ok"]:
            raise WorkspaceError(f"{self.db_path} fails its integrity check ({problems[0]}); nothing was deleted.")

    @contextlib.contextmanager
    def transaction(self, create: bool = True) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): one writer at a time, across processes.

        A full or read-only disk becomes a one-line :class:`WorkspaceError` (also when COMMIT fails).
        """
        conn = self.db(create=create)
        if self.read_only:  # opened read-only earlier: the disk may have been freed or remounted since
            self.close()
            conn = self.db(create=create)
        if self.read_only and self._read_only_because is not None:  # say why it is read-only
            raise storage_error(self.path, "write to the database", self._read_only_because)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            if is_storage_error(exc):
                raise storage_error(self.path, "write to the database", exc) from exc
            raise
        try:
            yield conn
        except BaseException as exc:
            _rollback(conn)
            if isinstance(exc, sqlite3.DatabaseError) and is_storage_error(exc):
                raise storage_error(self.path, "write to the database", exc) from exc
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            _rollback(conn)
            if is_storage_error(exc):
                raise storage_error(self.path, "write to the database", exc) from exc
            raise

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
        with _flock(self.lock_path, exclusive=False, blocking=True, where=self.path):
            yield

    @contextlib.contextmanager
    def gc_lock(self, blocking: bool = True) -> Iterator[bool]:
        """Exclusive counterpart of :meth:`writer_lock`; yields False when ``blocking=False`` and it is busy."""
        with _flock(self.lock_path, exclusive=True, blocking=blocking, where=self.path) as got:
            yield got

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)


@contextlib.contextmanager
def _flock(path: Path, exclusive: bool, blocking: bool, where: Path) -> Iterator[bool]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield True
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        try:  # a read-only disk or folder: flock works on a read-only descriptor too
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise storage_error(where, "take the workspace lock", exc) from exc
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
    """Lay out a new workspace. The database is built under a temporary name and linked into place, so
    a concurrent opener never sees a half-made one; ``workspace.id`` is written from it."""
    for sub in ("", "blobs", "tmp", "services", "cache"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    (target / "gc.lock").touch()
    building = target / f".{DB_NAME}.init-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.close(os.open(building, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_FILE_MODE))
    try:
        conn = _connect(building)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            _apply_migrations(conn, target)
            workspace_id = conn.execute("SELECT value FROM workspace_meta WHERE key = 'id'").fetchone()[0]
        finally:
            conn.close()
        try:
            os.link(building, target / DB_NAME)
        except FileExistsError:
            return  # created meanwhile by another process: theirs is the workspace
        except OSError:  # a filesystem without hard links: rename (a concurrent creator may win the race)
            if (target / DB_NAME).exists():
                return
            os.rename(building, target / DB_NAME)
        if _read_id_file(target) is None:
            _write_id_file(target, workspace_id)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(str(building) + suffix).unlink(missing_ok=True)


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # no transaction left (SQLite rolled it back itself)


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


__all__ = ["MIGRATIONS", "Workspace", "as_workspace", "schema_version"]
