"""The ``Model`` API: register, get, list, download, tag and delete model versions (Azure ML SDK v1 style)."""

from __future__ import annotations

import builtins
import errno
import getpass
import hashlib
import html
import logging
import os
import stat
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nbdeploy.errors import AlreadyExists, Conflict, InvalidInput, ModelInUse, ModelNotFound, WorkspaceError
from nbdeploy.registry import store
from nbdeploy.registry.blobs import BlobStore, clone_file, copy_verified
from nbdeploy.registry.names import (
    check_model_name,
    check_pairs,
    check_text,
    parse_filters,
    parse_model_ref,
    parse_version,
    printable,
)
from nbdeploy.registry.store import FileEntry, ModelRecord
from nbdeploy.workspace import PathLike, Workspace, as_workspace

log = logging.getLogger(__name__)


def human_size(n: int) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _collect(model_path: PathLike) -> tuple[str, str, list[tuple[Path, str]]]:
    """``(kind, root name, [(source file, relative path)])`` for a file or folder model."""
    if model_path is None or str(model_path).strip() == "":
        raise InvalidInput("model_path is empty: give the file or folder to register.")
    src = Path(model_path).expanduser()
    if not src.exists():
        raise InvalidInput(f"model_path {printable(str(src))!r} does not exist.")
    root = Path(os.path.abspath(src)).name
    if src.is_file():
        return "file", root, [(src, root)]
    if not src.is_dir():
        raise InvalidInput(f"model_path {printable(str(src))!r} is neither a regular file nor a folder.")
    found: list[tuple[Path, str]] = []
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(src, followlinks=True, onerror=_walk_error):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:  # a symlink loop
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames.sort()
        for fname in sorted(filenames):
            p = Path(dirpath) / fname
            if not p.is_file():
                raise InvalidInput(
                    f"{printable(str(p))} is not a regular file (sockets, pipes, devices and broken links "
                    "cannot be part of a model)."
                )
            found.append((p, Path(root, p.relative_to(src)).as_posix()))
    if not found:
        raise InvalidInput(f"model_path {printable(str(src))!r} is an empty folder: there is nothing to register.")
    return "dir", root, found


def _walk_error(exc: OSError) -> None:
    raise InvalidInput(f"Cannot read folder {printable(str(exc.filename))}: {exc.strerror}.")


def _link_deploy_copy(workspace: Workspace, entry: FileEntry, part: Path) -> bool:
    """Hard-link the deploy copy of ``entry`` (never its blob) at ``part``; False where links are refused."""
    from nbdeploy.registry.copies import deploy_copy

    try:
        with workspace.writer_lock():  # gc removes deploy copies no bundle links: not this one in between
            os.link(deploy_copy(workspace, entry.digest, entry.mode), part)
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            return False
        raise
    return True


def _write_problem(exc: OSError) -> str:
    """Why a file could not be written, in words that say what to do."""
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return "a file is in the way where a folder is needed; remove it or choose another target folder"
    if exc.errno == errno.EISDIR:
        return "a folder is in the way; remove it or choose another target folder"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{exc.strerror} (the target folder is not writable; choose another one)"
    return exc.strerror or str(exc)


def _tree_digest(kind: str, entries: list[FileEntry]) -> str:
    if kind == "file":
        return "sha256:" + entries[0].digest
    h = hashlib.sha256()
    for e in sorted(entries, key=lambda e: e.path):
        h.update(f"{e.mode:o} {e.digest} ".encode() + os.fsencode(e.path) + b"\n")  # file names are bytes
    return "sha256:" + h.hexdigest()


class Model:
    """One registered model version.

    Get one with :meth:`Model.get` (or ``Model(name, version=None, workspace=None)``), make one with
    :meth:`Model.register`, find several with :meth:`Model.list`.
    """

    class Framework:
        """Framework names as Azure ML SDK v1 spelled them (any other string is accepted too)."""

        CUSTOM = "Custom"
        TENSORFLOW = "TensorFlow"
        SCIKITLEARN = "ScikitLearn"
        ONNX = "Onnx"
        TFKERAS = "TfKeras"
        PYTORCH = "PyTorch"
        MULTI = "Multi"

    def __init__(self, name: str, version: int | str | None = None, workspace: Workspace | PathLike | None = None):
        found = Model.get(name, version=version, workspace=workspace)
        self._load(found.workspace, found._record)

    @classmethod
    def _from_record(cls, workspace: Workspace, record: ModelRecord) -> Model:
        self = cls.__new__(cls)
        self._load(workspace, record)
        return self

    def _load(self, workspace: Workspace, record: ModelRecord) -> None:
        self.workspace: Workspace = workspace
        self._record = record
        self._files: list[FileEntry] | None = None

    # ----- attributes -----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def version(self) -> int:
        return self._record.version

    @property
    def id(self) -> str:
        """``"name:version"``."""
        return f"{self.name}:{self.version}"

    @property
    def created_time(self) -> datetime:
        return datetime.fromisoformat(self._record.created_time)

    @property
    def created_by(self) -> str | None:
        return self._record.created_by

    @property
    def description(self) -> str | None:
        return self._record.description

    @property
    def model_framework(self) -> str | None:
        return self._record.framework

    @property
    def model_framework_version(self) -> str | None:
        return self._record.framework_version

    @property
    def size(self) -> int:
        """Total bytes of the model's files."""
        return self._record.size

    @property
    def digest(self) -> str:
        """``sha256:<hex>``: the file's sha256 for a file model; of the manifest (mode, digest, path) for a folder."""
        return self._record.digest

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._record.tags)

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._record.properties)

    @property
    def root(self) -> str:
        """The registered file or folder's base name (what ``download`` creates in the target folder)."""
        return self._record.root

    @property
    def is_folder(self) -> bool:
        return self._record.kind == "dir"

    @property
    def files(self) -> list[str]:
        """Relative paths of the files as ``download`` lays them out (``model.pkl``, ``mydir/a/b.bin``)."""
        return [e.path for e in self.file_entries()]

    def file_entries(self) -> list[FileEntry]:
        """Files with their blob digest, size and mode."""
        if self._files is None:
            assert self._record.rowid is not None
            self._files = store.files(self.workspace.db(create=False), self._record.rowid)
        return list(self._files)

    # ----- creating and finding -------------------------------------------------------------------

    @staticmethod
    def register(
        model_path: PathLike,
        model_name: str,
        tags: Mapping[str, str] | None = None,
        properties: Mapping[str, str] | None = None,
        description: str | None = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        workspace: Workspace | PathLike | None = None,
        if_changed: bool = False,
    ) -> Model:
        """Register a file or folder as the next version of ``model_name``.

        The files are streamed into the content-addressed store, then one transaction makes the version
        visible: a process killed half-way leaves nothing visible (``gc`` removes the leftovers). With
        ``if_changed=True``, registering the same bytes (and tags, properties, description and framework) as
        the latest version returns that version instead of a new one: a notebook run again keeps its versions.
        """
        check_model_name(model_name)
        tags_ = check_pairs("tags", tags)
        props_ = check_pairs("properties", properties)
        if description is not None and not isinstance(description, str):
            raise InvalidInput(f"description must be a string, got {type(description).__name__}.")
        if description is not None:
            check_text("description", description)
        if model_framework_version is not None and not model_framework:
            raise InvalidInput("model_framework_version needs model_framework.")
        for label, value in (
            ("model_framework", model_framework),
            ("model_framework_version", model_framework_version),
        ):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidInput(f"{label} must be a non-empty string, got {value!r}.")
            if value is not None:
                check_text(label, value)
        kind, root, sources = _collect(model_path)
        ws = as_workspace(workspace)
        ws.ensure()
        blobs = BlobStore(ws)
        log.info("Registering model %s", model_name)
        with ws.writer_lock():
            entries: list[FileEntry] = []
            for src, rel in sources:
                try:
                    mode = stat.S_IMODE(os.stat(src).st_mode)
                    digest, size = blobs.put_file(src)
                except OSError as exc:
                    raise InvalidInput(f"Cannot read {printable(str(src))}: {exc.strerror or exc}.") from exc
                entries.append(FileEntry(rel, digest, size, mode))
            try:
                user: str | None = getpass.getuser()
            except Exception:  # noqa: BLE001 - no user name in some containers
                user = None
            record = ModelRecord(
                name=model_name,
                version=0,
                created_time=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                created_by=user,
                description=description,
                framework=model_framework,
                framework_version=model_framework_version,
                kind=kind,
                root=root,
                size=sum(e.size for e in entries),
                digest=_tree_digest(kind, entries),
                tags=tags_,
                properties=props_,
            )
            with ws.transaction() as conn:
                latest = store.get(conn, model_name, None) if if_changed else None
                if latest is not None and _same_content(latest, record):
                    log.info("Model %s:%d has the same content; not registering it again", model_name, latest.version)
                    return Model._from_record(ws, latest)
                store.insert_model(conn, record, entries)
        model = Model._from_record(ws, record)
        model._files = sorted(entries, key=lambda e: e.path)
        log.info("Registered model %s (%s, %d file(s))", model.id, human_size(model.size), len(entries))
        return model

    @staticmethod
    def get(name: str, version: int | str | None = None, workspace: Workspace | PathLike | None = None) -> Model:
        """A model version; the latest when ``version`` is None. ``name`` may be an id ``"name:version"``."""
        if isinstance(name, str) and ":" in name and version is None:
            name, version = parse_model_ref(name)
        check_model_name(name)
        v = None if version is None else parse_version(version)
        ws = as_workspace(workspace)
        conn = ws.db(create=False)
        record = store.get(conn, name, v)
        if record is None:
            existing = store.versions(conn, name)
            if v is None or not existing:
                raise ModelNotFound(name, store.names(conn))
            raise ModelNotFound(
                f"{name}:{v}", hint=f"Existing versions of {name!r}: " + ", ".join(str(x) for x in existing) + "."
            )
        return Model._from_record(ws, record)

    @staticmethod
    def list(
        name: str | None = None,
        tags: Any = None,
        properties: Any = None,
        latest: bool = False,
        workspace: Workspace | PathLike | None = None,
        model_framework: str | None = None,
    ) -> list[Model]:
        """Versions matching every filter (AND), ordered by name then version.

        ``tags``/``properties`` items are ``'key'`` (has the key), ``'key=value'`` or ``['key', 'value']``;
        ``latest=True`` keeps the newest matching version of each name.
        """
        if name is not None:
            check_model_name(name)
        tag_filters = parse_filters("tag", tags)
        prop_filters = parse_filters("property", properties)
        ws = as_workspace(workspace)
        records = store.query(
            ws.db(create=False),
            name=name,
            tags=tag_filters,
            properties=prop_filters,
            framework=model_framework,
            latest=latest,
        )
        return [Model._from_record(ws, r) for r in records]

    @staticmethod
    def deserialize(workspace: Workspace | PathLike | None, payload: Mapping[str, Any]) -> Model:
        """The model a :meth:`serialize` payload describes (looked up again in ``workspace``)."""
        return Model.get(payload["name"], payload["version"], workspace=workspace)

    # ----- files ----------------------------------------------------------------------------------

    def download(
        self, target_dir: PathLike = ".", exist_ok: bool = False, link: bool = False, verify: bool = True
    ) -> str:
        """Lay the model's files out under ``target_dir``; return the path of the file or folder created.

        A file model becomes ``target_dir/<file name>``, a folder model ``target_dir/<folder name>/...``
        with the registered modes. ``exist_ok=False`` refuses to overwrite existing files. No file is ever
        a link to the store, so writing it cannot change the registry. ``verify`` checks each file's sha256
        as it is copied (the copy and the hash run in parallel); a file whose blob was changed on disk is
        refused with :class:`WorkspaceError`.

        ``link=True`` is the deploy layer's fast path: hard links to the workspace's deploy copy of each
        file (:mod:`nbdeploy.registry.copies`, one per blob, a reflink where the filesystem allows), so
        only the first bundle of a model pays for a copy; no digest check.
        """
        target = Path(target_dir).expanduser()
        entries = self.file_entries()
        if not exist_ok:
            clash = [e.path for e in entries if (target / e.path).exists()]
            if clash:
                raise AlreadyExists(
                    f"{printable(str(target / clash[0]))} exists already "
                    "(pass exist_ok=True / --exist-ok to overwrite)."
                )
        blobs = BlobStore(self.workspace)
        for e in entries:
            src = blobs.path(e.digest)
            if not src.is_file():
                raise WorkspaceError(
                    f"File {printable(e.path)} of model {self.id} (blob {e.digest}) is missing "
                    f"from {self.workspace.path}: the workspace is damaged."
                )
            self._write_file(src, e, target, verify=verify and not link, link=link)
        log.info("Downloaded model %s to %s", self.id, target)
        return str(target / self.root)

    def _write_file(self, src: Path, entry: FileEntry, target: Path, verify: bool, link: bool) -> None:
        """Write one file through a part file beside it, renamed into place; no part file is left behind."""
        dest = target / entry.path
        part = dest.with_name(f".{dest.name}.nbdeploy-{os.getpid()}")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_dir() and not dest.is_symlink():
                raise InvalidInput(
                    f"Cannot write {printable(str(dest))}: a folder is in the way; remove it or "
                    "choose another target folder."
                )
            part.unlink(missing_ok=True)
            intact = True
            if not (link and _link_deploy_copy(self.workspace, entry, part)):
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    if verify:
                        intact = copy_verified(src, fd, entry.digest)
                    else:
                        clone_file(src, fd)
                    os.fchmod(fd, entry.mode)
                finally:
                    os.close(fd)
            if not intact:
                raise WorkspaceError(
                    f"File {printable(entry.path)} of model {self.id} does not match its digest: blob {entry.digest} "
                    f"in {self.workspace.path} was changed on disk. Re-register the original file to repair it "
                    "(`nbdeploy verify` checks every blob)."
                )
            os.replace(part, dest)
        except OSError as exc:
            raise InvalidInput(f"Cannot write {printable(str(exc.filename or dest))}: {_write_problem(exc)}.") from exc
        finally:
            try:
                part.unlink(missing_ok=True)
            except OSError:
                pass

    # ----- tags, properties, delete ---------------------------------------------------------------

    def _rowid_in(self, conn: Any) -> int:
        rowid = self._record.rowid
        if (
            conn.execute(
                "SELECT 1 FROM models WHERE id = ? AND name = ? AND version = ?", (rowid, self.name, self.version)
            ).fetchone()
            is None
        ):
            raise ModelNotFound(self.id, hint="It was deleted.")
        assert rowid is not None
        return rowid

    def _refresh(self, conn: Any) -> None:
        assert self._record.rowid is not None
        self._record.tags = store.current_pairs(conn, "model_tags", self._record.rowid)
        self._record.properties = store.current_pairs(conn, "model_properties", self._record.rowid)

    def add_tags(self, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags."""
        new = check_pairs("tags", tags)
        with self.workspace.transaction() as conn:
            store.set_tags(conn, self._rowid_in(conn), new)
            self._refresh(conn)

    def remove_tags(self, tags: Iterable[str] | str) -> None:
        """Remove tags by key (keys that are not set are ignored)."""
        keys = [tags] if isinstance(tags, str) else list(tags)
        with self.workspace.transaction() as conn:
            rowid = self._rowid_in(conn)
            missing = [k for k in keys if k not in store.current_pairs(conn, "model_tags", rowid)]
            if missing:
                log.warning("model %s has no tag(s) %s", self.id, ", ".join(missing))
            store.remove_tags(conn, rowid, keys)
            self._refresh(conn)

    def add_properties(self, properties: Mapping[str, str]) -> None:
        """Add properties. As in v1 they are add-only: setting an existing key to another value is refused."""
        new = check_pairs("properties", properties)
        with self.workspace.transaction() as conn:
            rowid = self._rowid_in(conn)
            current = store.current_pairs(conn, "model_properties", rowid)
            changed = sorted(k for k, v in new.items() if k in current and current[k] != v)
            if changed:
                raise Conflict(
                    f"Properties of model {self.id} cannot be changed once set: "
                    + ", ".join(f"{k}={current[k]!r}" for k in changed)
                    + "."
                )
            store.add_properties(conn, rowid, {k: v for k, v in new.items() if k not in current})
            self._refresh(conn)

    def update_tags_properties(
        self,
        add_tags: Mapping[str, str] | None = None,
        remove_tags: Iterable[str] | None = None,
        add_properties: Mapping[str, str] | None = None,
    ) -> None:
        """v1's combined update (each part as in its own method)."""
        if add_tags:
            self.add_tags(add_tags)
        if remove_tags:
            self.remove_tags(remove_tags)
        if add_properties:
            self.add_properties(add_properties)

    def used_by(self) -> builtins.list[str]:  # `list` here is Model.list
        """Services recorded as using this version."""
        return store.users(self.workspace.db(create=False), self.id)

    def delete(self, force: bool = False) -> None:
        """Delete this version; refused (ModelInUse) while a service uses it unless ``force``.

        Its blobs that no other version shares are removed now when no registration is in flight,
        else by the next ``gc``. Version numbers are never reused.
        """
        with self.workspace.transaction() as conn:
            rowid = self._rowid_in(conn)
            services = store.users(conn, self.id)
            if services and not force:
                raise ModelInUse(self.id, services)
            orphans = store.delete(conn, rowid)
        if services:
            log.warning("deleted model %s although service(s) %s use it", self.id, ", ".join(services))
        log.info("Deleted model %s", self.id)
        if not orphans:
            return
        blobs = BlobStore(self.workspace)
        with self.workspace.gc_lock(blocking=False) as got:
            if not got:
                log.info("registration in flight: %d blob(s) left for gc", len(orphans))
                return
            still_used = store.referenced_blobs(self.workspace.db())
            for digest in orphans:
                if digest not in still_used:
                    blobs.remove(digest)

    # ----- presentation ---------------------------------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """A JSON-ready dict with v1's keys where they apply, plus size, digest and files."""
        return {
            "createdTime": self._record.created_time,
            "createdBy": self.created_by,
            "description": self.description,
            "id": self.id,
            "name": self.name,
            "framework": self.model_framework,
            "frameworkVersion": self.model_framework_version,
            "tags": self.tags,
            "properties": self.properties,
            "version": self.version,
            "size": self.size,
            "digest": self.digest,
            "files": self.files,
            "workspace": str(self.workspace.path),
        }

    def __repr__(self) -> str:
        return (
            f"Model(workspace={self.workspace!r}, name={self.name!r}, id={self.id!r}, version={self.version}, "
            f"size={human_size(self.size)!r}, tags={self.tags!r}, properties={self.properties!r})"
        )

    def _repr_html_(self) -> str:
        e = html.escape
        rows = [
            ("Name", self.name),
            ("Version", str(self.version)),
            ("Created", self._record.created_time),
            ("Size", human_size(self.size)),
            ("Digest", self.digest[:19] + "…"),
            ("Framework", " ".join(x for x in (self.model_framework, self.model_framework_version) if x) or "—"),
            ("Description", self.description or "—"),
            ("Tags", ", ".join(f"{k}={v}" for k, v in self.tags.items()) or "—"),
            ("Properties", ", ".join(f"{k}={v}" for k, v in self.properties.items()) or "—"),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{e(k)}</th><td style='text-align:left'>{e(v)}</td></tr>" for k, v in rows
        )
        return f"<table class='nbdeploy-model'><caption>Model {e(self.id)}</caption>{body}</table>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and (other.workspace, other.id) == (self.workspace, self.id)

    def __hash__(self) -> int:
        return hash((self.workspace, self.id))


def _same_content(latest: Any, new: Any) -> bool:
    """Whether a new registration would repeat the latest version (bytes and metadata)."""
    return all(
        getattr(latest, f) == getattr(new, f)
        for f in ("digest", "kind", "tags", "properties", "description", "framework", "framework_version")
    )
