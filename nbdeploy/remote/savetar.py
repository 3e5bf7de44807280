"""Read a ``docker save`` archive once, keep only the layers a remote engine lacks, and stream them on.

A save archive (Docker 20.10) holds ``manifest.json`` (config file name, repo tags and one layer path per
``RootFS.DiffIDs`` entry), the image config ``<id>.json``, and one folder per layer with ``layer.tar``
(the uncompressed layer, whose sha256 is its diff_id), ``json`` and ``VERSION``. Folder names do not say
which diff_id they hold, and the manifest comes last, so :func:`spool` hashes each ``layer.tar`` as it
reads it and keeps (in a spool folder) only those a caller wants. ``docker load`` opens a layer's file only
when the engine lacks that layer's chain, so the archive :meth:`SpooledArchive.stream` writes may leave out
the folders of the layers the engine has.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

BLOCK = tarfile.BLOCKSIZE
_CHUNK = 1 << 20
_LAYER_FILE = "layer.tar"

Source = bytes | Path | None  # file data in memory, a spooled file, or nothing (folders)


@dataclasses.dataclass
class SpooledArchive:
    """The members of a save archive that were kept, in order, with their data."""

    manifest: list[dict[str, Any]]
    members: list[tuple[tarfile.TarInfo, Source]]
    #: layer folder -> diff_id of its layer.tar, for every layer read (kept or not)
    layer_digests: dict[str, str]
    #: layer folders whose layer.tar was dropped (so the whole folder is left out)
    dropped_folders: set[str]
    #: layer folder -> size of its layer.tar, for every layer read (kept or not)
    layer_sizes: dict[str, int]

    @property
    def dropped_bytes(self) -> int:
        return self.layer_bytes(self.dropped_folders)

    def layer_bytes(self, folders: set[str]) -> int:
        """Total size of the layer files of ``folders``."""
        return sum(self.layer_sizes.get(f, 0) for f in folders)

    @property
    def layer_paths(self) -> list[str]:
        """Layer file paths of the (single) image, bottom first, one per diff_id."""
        if len(self.manifest) != 1:
            raise ValueError(f"expected one image in the save archive, found {len(self.manifest)}")
        return list(self.manifest[0]["Layers"])

    def size(self, skip: set[str] | frozenset[str] = frozenset()) -> int:
        """Exact byte size of :meth:`stream`'s output for the same ``skip``."""
        return (
            sum(len(_header(info)) + _padded(info.size if info.isfile() else 0) for info, _ in self._members(skip))
            + 2 * BLOCK
        )

    def stream(self, skip: set[str] | frozenset[str] = frozenset()) -> Iterator[bytes]:
        """The archive of the kept members minus the layer folders in ``skip`` (tar, uncompressed), in chunks
        of at most 1 MiB. Safe to call several times, also from several threads."""
        for info, source in self._members(skip):
            yield _header(info)
            if not info.isfile() or not info.size:
                continue
            if isinstance(source, bytes):
                yield source
            elif isinstance(source, Path):
                with source.open("rb") as handle:
                    while data := handle.read(_CHUNK):
                        yield data
            pad = _padded(info.size) - info.size
            if pad:
                yield b"\0" * pad
        yield b"\0" * (2 * BLOCK)

    def _members(self, skip: set[str] | frozenset[str]) -> Iterator[tuple[tarfile.TarInfo, Source]]:
        return ((i, s) for i, s in self.members if i.name.partition("/")[0] not in skip)


def spool(chunks: Iterable[bytes], folder: Path, keep_layer: Callable[[str], bool]) -> SpooledArchive:
    """Read the save archive in ``chunks`` once; keep each layer whose diff_id ``keep_layer`` accepts.

    Kept layer files are written to ``folder`` (the caller removes it); other layers are hashed and
    dropped as they stream by, with their whole folder. Small files stay in memory.
    """
    manifest: list[dict[str, Any]] | None = None
    members: list[tuple[tarfile.TarInfo, Source]] = []
    digests: dict[str, str] = {}
    dropped: set[str] = set()
    sizes: dict[str, int] = {}
    with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as tf:  # type: ignore[call-overload]
        for number, info in enumerate(tf):
            info.name = _clean(info.name)
            top, _, leaf = info.name.partition("/")
            source: Source = None
            if info.isfile():
                handle = tf.extractfile(info)
                assert handle is not None
                if leaf == _LAYER_FILE:
                    path = folder / f"{number}.tar"
                    digest = _copy_hashing(handle, info.size, path)
                    digests[top] = digest
                    sizes[top] = info.size
                    if keep_layer(digest):
                        source = path
                    else:
                        path.unlink()
                        dropped.add(top)
                else:
                    data = handle.read()
                    source = data
                    if info.name == "manifest.json":
                        manifest = json.loads(data)
            elif not info.isdir():
                raise ValueError(f"unexpected member {info.name!r} in a docker save archive")
            members.append((info, source))
    if manifest is None:
        raise ValueError("not a docker save archive: no manifest.json")
    kept = [(i, s) for i, s in members if i.name.partition("/")[0] not in dropped]
    return SpooledArchive(
        manifest=manifest, members=kept, layer_digests=digests, dropped_folders=dropped, layer_sizes=sizes
    )


class _ChunkReader:
    """A file-like ``read()`` over an iterator of byte chunks (what the docker SDK streams)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._current = memoryview(b"")

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        wanted = size
        while wanted != 0:
            if not self._current:
                try:
                    self._current = memoryview(next(self._chunks))
                except StopIteration:
                    break
                continue
            take = len(self._current) if wanted < 0 else min(wanted, len(self._current))
            parts.append(bytes(self._current[:take]))
            self._current = self._current[take:]
            if wanted > 0:
                wanted -= take
        return b"".join(parts)


def _copy_hashing(handle: Any, size: int, path: Path) -> str:
    digest = hashlib.sha256()
    remaining = size
    with path.open("wb") as out:
        while remaining:
            data = handle.read(min(_CHUNK, remaining))
            if not data:
                raise ValueError(f"save archive ended inside a layer ({path.name})")
            digest.update(data)
            out.write(data)
            remaining -= len(data)
    return "sha256:" + digest.hexdigest()


def _padded(size: int) -> int:
    return (size + BLOCK - 1) // BLOCK * BLOCK


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.GNU_FORMAT, tarfile.ENCODING, "surrogateescape")


def _clean(name: str) -> str:
    return name.removeprefix("./").rstrip("/")
