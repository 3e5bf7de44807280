"""Ship a locally built image to remote Docker engines without a registry, sending only the layers each lacks.

How: a remote engine's layer chains are read from its images (``RootFS.Layers`` of each; every prefix is a
chain it holds), giving the longest bottom part of the image it has. The local ``docker save`` archive is
read once (:mod:`nbdeploy.remote.savetar`) keeping only layers some engine lacks, and each engine gets an
archive without the layer folders it has, streamed to its ``/images/load``. ``docker load`` (checked with
Engine 20.10) opens a layer's file only when it lacks that layer's chain, so the manifest may name files the
archive does not carry. A model-only update (a new top layer) sends that layer plus about 12 kB.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from nbdeploy.errors import EngineUnavailable, InvalidInput, NbdeployError, NotFound
from nbdeploy.remote import savetar

log = logging.getLogger(__name__)

#: ``progress(bytes_sent, bytes_total)``, called as the archive streams (and once at the end)
Progress = Callable[[int, int], None]


class ImageNotFound(NotFound):
    kind = "local image"


class PlatformMismatch(InvalidInput):
    """The image was built for another OS/architecture than the remote engine runs."""


class ShipFailed(NbdeployError):
    """The remote engine refused the image archive."""

    bytes_sent: int = 0  # what went out before the refusal


@dataclasses.dataclass(frozen=True)
class ShipResult:
    """What one :func:`ship_image` call did."""

    image: str
    image_id: str
    layers: int
    layers_sent: int
    bytes_sent: int
    layer_bytes_skipped: int
    seconds: float
    already_present: bool


def ship_image(local_client: Any, remote_client: Any, image: str, progress: Progress | None = None) -> ShipResult:
    """Make ``image`` (a tag or ID on ``local_client``'s engine) exist, with its tags, on ``remote_client``'s.

    Sends only the layers the remote engine lacks; ``progress(sent, total)`` reports bytes as they go.
    Raises ImageNotFound, PlatformMismatch (before sending anything), EngineUnavailable or ShipFailed.
    """
    many_progress = (lambda _name, sent, total: progress(sent, total)) if progress else None
    outcome = ship_image_to_many(local_client, {"remote": remote_client}, image, progress=many_progress)["remote"]
    if isinstance(outcome, NbdeployError):
        raise outcome
    return outcome


def ship_image_to_many(
    local_client: Any, remotes: Mapping[str, Any], image: str, progress: ManyProgress | None = None, parallel: int = 4
) -> dict[str, ShipResult | NbdeployError]:
    """:func:`ship_image` to several engines (``{name: client}``), reading the local image once.

    Each engine gets only the layers it lacks, ``parallel`` engines at a time. One engine's failure does not
    stop the others: its entry in the result is the error (EngineUnavailable, PlatformMismatch, ShipFailed).
    ``progress(name, sent, total)`` reports each engine's bytes. Raises ImageNotFound when the local engine
    has no ``image``.
    """
    started = time.monotonic()
    docker = _docker()
    try:
        attrs = local_client.api.inspect_image(image)
    except docker.errors.ImageNotFound as exc:
        raise ImageNotFound(image, hint="Build it first, or check `docker images` on the local engine.") from exc
    plan = _Plan(
        image=image,
        image_id=attrs["Id"],
        diff_ids=list(attrs.get("RootFS", {}).get("Layers") or []),
        tags=_tags_for(image, attrs),
        attrs=attrs,
        started=started,
    )
    results: dict[str, ShipResult | NbdeployError] = {}
    present: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        for name, outcome in zip(
            remotes, pool.map(lambda n: _guard(n, lambda: plan.prepare(remotes[n])), remotes), strict=True
        ):
            if isinstance(outcome, int):
                present[name] = outcome
            else:
                results[name] = outcome
                if progress and isinstance(outcome, ShipResult):
                    progress(name, 0, 0)
        if present:
            needed = set(plan.diff_ids[min(present.values()) :])
            with tempfile.TemporaryDirectory(prefix="nbdeploy-ship-") as folder:
                archive = savetar.spool(local_client.api.get_image(image), Path(folder), lambda d: d in needed)

                def send(name: str) -> ShipResult | NbdeployError:
                    report = (lambda sent, total: progress(name, sent, total)) if progress else None
                    return _guard(name, lambda: plan.send(local_client, remotes[name], archive, present[name], report))

                results.update(zip(present, pool.map(send, present), strict=True))
    return {name: results[name] for name in remotes}


ManyProgress = Callable[[str, int, int], None]


@dataclasses.dataclass
class _Plan:
    """One image being shipped: what it is, and the steps for each remote engine."""

    image: str
    image_id: str
    diff_ids: list[str]
    tags: list[str]
    attrs: dict[str, Any]
    started: float

    def prepare(self, remote: Any) -> ShipResult | int:
        """Check the platform; the result when the remote has the image, else how many bottom layers it has."""
        _check_platform(self.attrs, remote, self.image)
        if _remote_has(remote, self.image_id):
            self._tag(remote)
            log.info("ship %s: already on the remote engine", self.image)
            return ShipResult(
                self.image, self.image_id, len(self.diff_ids), 0, 0, 0, time.monotonic() - self.started, True
            )
        return present_prefix(self.diff_ids, remote_chain_ids(remote))

    def send(
        self, local_client: Any, remote: Any, archive: savetar.SpooledArchive, present: int, progress: Progress | None
    ) -> ShipResult:
        try:
            sent, skipped = _load(remote, self.image, archive, _skip_folders(archive, present), progress)
        except ShipFailed as exc:
            if present == 0 or "no such file" not in str(exc).lower():
                raise
            # a layer the remote had was removed meanwhile: send everything once
            log.warning("ship %s: the remote lost a layer while loading (%s); sending all layers", self.image, exc)
            present = 0
            with tempfile.TemporaryDirectory(prefix="nbdeploy-ship-") as folder:
                full = savetar.spool(local_client.api.get_image(self.image), Path(folder), lambda d: True)
                sent, skipped = _load(remote, self.image, full, set(), progress)
            sent += exc.bytes_sent
        if not _remote_has(remote, self.image_id):
            raise ShipFailed(
                f"The remote engine loaded the archive of {self.image} but has no image {self.image_id[:19]}."
            )
        self._tag(remote)
        result = ShipResult(
            image=self.image,
            image_id=self.image_id,
            layers=len(self.diff_ids),
            layers_sent=len(self.diff_ids) - present,
            bytes_sent=sent,
            layer_bytes_skipped=skipped,
            seconds=time.monotonic() - self.started,
            already_present=False,
        )
        log.info(
            "ship %s: %d of %d layers, %d bytes in %.1f s",
            self.image,
            result.layers_sent,
            result.layers,
            result.bytes_sent,
            result.seconds,
        )
        return result

    def _tag(self, remote: Any) -> None:
        for tag in self.tags:
            _tag_remote(remote, self.image_id, tag)


def _guard(name: str, step: Callable[[], Any]) -> Any:
    """Run one remote's step; its NbdeployError (or an unexpected engine error) becomes its outcome."""
    try:
        return step()
    except NbdeployError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - one engine's failure must not stop the others
        return EngineUnavailable(f"Docker engine {name!r}", _first_line(exc))


def _skip_folders(archive: savetar.SpooledArchive, present: int) -> set[str]:
    """Layer folders the remote has (its bottom ``present`` layers) and no layer it lacks needs."""
    paths = archive.layer_paths
    have = {p.partition("/")[0] for p in paths[:present]}
    return have - {p.partition("/")[0] for p in paths[present:]}


# ----- which layers the remote holds -----------------------------------------------------------------


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The chain ID of every prefix of ``diff_ids`` (OCI image spec: ChainID(L0|..|Ln))."""
    chains: list[str] = []
    for diff_id in diff_ids:
        chains.append(
            diff_id if not chains else "sha256:" + hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest()
        )
    return chains


def remote_chain_ids(remote_client: Any) -> set[str]:
    """Every layer chain the remote engine holds (each image's layers, every prefix)."""
    docker = _docker()
    held: set[str] = set()
    try:
        ids = remote_client.api.images(all=True, quiet=True)
    except docker.errors.DockerException as exc:
        raise EngineUnavailable("the remote Docker engine", _first_line(exc)) from exc
    for image_id in ids:
        try:
            layers = remote_client.api.inspect_image(image_id).get("RootFS", {}).get("Layers") or []
        except docker.errors.NotFound:
            continue  # removed meanwhile
        held.update(chain_ids(layers))
    return held


def present_prefix(diff_ids: Sequence[str], held_chains: set[str]) -> int:
    """How many bottom layers of ``diff_ids`` the remote holds (a layer exists only with all below it)."""
    count = 0
    for i, chain in enumerate(chain_ids(diff_ids)):
        if chain not in held_chains:
            break
        count = i + 1
    return count


# ----- sending ------------------------------------------------------------------------------------


def _load(
    remote: Any, image: str, archive: savetar.SpooledArchive, skip: set[str], progress: Progress | None
) -> tuple[int, int]:
    """Stream ``archive`` without the ``skip`` folders to the remote's ``/images/load``; (bytes sent,
    layer bytes left out)."""
    missing = [
        p
        for p in archive.layer_paths
        if p.partition("/")[0] in archive.dropped_folders and p.partition("/")[0] not in skip
    ]
    if missing:
        raise ShipFailed(f"The spooled archive of {image} lacks layers this engine needs: {', '.join(missing)}")
    total = archive.size(skip)
    counter = _Counter(total, progress)
    docker = _docker()
    try:
        for message in remote.api.load_image(counter.wrap(archive.stream(skip)), quiet=True):
            if isinstance(message, dict) and (message.get("error") or message.get("errorDetail")):
                detail = message.get("error") or message["errorDetail"].get("message", "")
                raise ShipFailed(f"The remote engine refused the image {image}: {_first_line(detail)}")
    except ShipFailed as exc:
        exc.bytes_sent = counter.sent
        raise
    except docker.errors.APIError as exc:
        failed = ShipFailed(f"The remote engine refused the image {image}: {_first_line(exc)}")
        failed.bytes_sent = counter.sent
        raise failed from exc
    except docker.errors.DockerException as exc:
        raise EngineUnavailable("the remote Docker engine", _first_line(exc)) from exc
    if counter.sent != total:
        log.warning("ship %s: sent %d bytes, expected %d", image, counter.sent, total)
    counter.done()
    return counter.sent, archive.layer_bytes(archive.dropped_folders | skip)


class _Counter:
    """Counts the bytes of a stream as the HTTP body consumes it, and reports progress at most every 0.25 s."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.sent, self.progress = total, 0, progress
        self._last = 0.0

    def wrap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.sent += len(chunk)
            if self.progress and time.monotonic() - self._last >= 0.25:
                self._last = time.monotonic()
                self.progress(self.sent, self.total)
            yield chunk

    def done(self) -> None:
        if self.progress:
            self.progress(self.sent, self.total)


# ----- helpers ------------------------------------------------------------------------------------


def progress_lines(report: Callable[[str], None], label: str = "image", min_interval_s: float = 1.0) -> Progress:
    """A :data:`Progress` that reports readable lines (``image: 12.0 of 48.3 MB sent``) at most every
    ``min_interval_s``, and always the last one; pass e.g. ``lambda t: sink.line(service, t)``."""
    state = {"last": 0.0}

    def progress(sent: int, total: int) -> None:
        now = time.monotonic()
        if sent < total and now - state["last"] < min_interval_s:
            return
        state["last"] = now
        report(f"{label}: {sent / 1e6:.1f} of {total / 1e6:.1f} MB sent" if total else f"{label}: already there")

    return progress


def _tags_for(image: str, attrs: dict[str, Any]) -> list[str]:
    """The tag to apply remotely: ``image`` itself when it names a tag of this image."""
    repo_tags = attrs.get("RepoTags") or []
    if image in repo_tags:
        return [image]
    if ":" not in image.rsplit("/", 1)[-1] and f"{image}:latest" in repo_tags:
        return [f"{image}:latest"]
    return []


def _tag_remote(remote_client: Any, image_id: str, tag: str) -> None:
    repository, _, version = tag.rpartition(":")
    remote_client.api.tag(image_id, repository, version)


def _remote_has(remote_client: Any, image_id: str) -> bool:
    docker = _docker()
    try:
        remote_client.api.inspect_image(image_id)
        return True
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.DockerException as exc:
        raise EngineUnavailable("the remote Docker engine", _first_line(exc)) from exc


def _check_platform(attrs: dict[str, Any], remote_client: Any, image: str) -> None:
    version = remote_client.version()
    want = (attrs.get("Os") or "linux", attrs.get("Architecture") or "")
    have = (version.get("Os") or "linux", version.get("Arch") or "")
    if want[1] and have[1] and want != have:
        raise PlatformMismatch(
            f"Image {image} is built for {want[0]}/{want[1]} but the remote engine runs {have[0]}/{have[1]}; "
            f"build it for {have[0]}/{have[1]} (docker build --platform) before shipping."
        )


def _first_line(value: object) -> str:
    text = str(value).strip()
    return (text.splitlines()[0] if text else type(value).__name__)[:300]


def _docker() -> Any:
    from nbdeploy.builders.docker_builder import import_docker

    return import_docker()
