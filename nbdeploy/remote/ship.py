"""Ship a locally built image to a remote Docker engine without a registry, sending only the layers it lacks.

How: the remote engine's layer chains are read from its images (``RootFS.Layers`` of each, every prefix is a
chain it holds). The image's longest prefix of layers the remote holds is left out of a ``docker save``
archive rewritten on the fly, and the rest is streamed to the remote's ``/images/load``. ``docker load``
(checked with Engine 20.10) opens a layer's file only when it lacks that layer's chain, so the archive's
manifest may name files it does not carry. A model-only update (a new top layer) sends that layer plus a
few kB of metadata.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    started = time.monotonic()
    docker = _docker()
    try:
        attrs = local_client.api.inspect_image(image)
    except docker.errors.ImageNotFound as exc:
        raise ImageNotFound(image, hint="Build it first, or check `docker images` on the local engine.") from exc
    image_id: str = attrs["Id"]
    diff_ids: list[str] = list(attrs.get("RootFS", {}).get("Layers") or [])
    tags = _tags_for(image, attrs)
    _check_platform(attrs, remote_client, image)

    if _remote_has(remote_client, image_id):
        for tag in tags:
            _tag_remote(remote_client, image_id, tag)
        result = ShipResult(image, image_id, len(diff_ids), 0, 0, 0, time.monotonic() - started, True)
        if progress:
            progress(0, 0)
        log.info("ship %s: already on the remote engine", image)
        return result

    present = present_prefix(diff_ids, remote_chain_ids(remote_client))
    try:
        sent, layer_bytes_skipped = _send(local_client, remote_client, image, diff_ids, present, progress)
    except ShipFailed as exc:
        if present == 0 or "no such file" not in str(exc).lower():
            raise
        # a layer the remote had was removed meanwhile: send everything once
        log.warning("ship %s: the remote lost a layer while loading (%s); sending all layers", image, exc)
        present = 0
        sent, layer_bytes_skipped = _send(local_client, remote_client, image, diff_ids, 0, progress)
        sent += exc.bytes_sent
    if not _remote_has(remote_client, image_id):
        raise ShipFailed(f"The remote engine loaded the archive of {image} but has no image {image_id[:19]}.")
    for tag in tags:
        _tag_remote(remote_client, image_id, tag)
    result = ShipResult(image=image, image_id=image_id, layers=len(diff_ids), layers_sent=len(diff_ids) - present,
                        bytes_sent=sent, layer_bytes_skipped=layer_bytes_skipped,
                        seconds=time.monotonic() - started, already_present=False)
    log.info("ship %s: %d of %d layers, %d bytes in %.1f s", image, result.layers_sent, result.layers,
             result.bytes_sent, result.seconds)
    return result


# ----- which layers the remote holds -----------------------------------------------------------------

def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The chain ID of every prefix of ``diff_ids`` (OCI image spec: ChainID(L0|..|Ln))."""
    chains: list[str] = []
    for diff_id in diff_ids:
        chains.append(diff_id if not chains else
                      "sha256:" + hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest())
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

def _send(local_client: Any, remote_client: Any, image: str, diff_ids: Sequence[str], present: int,
          progress: Progress | None) -> tuple[int, int]:
    needed = set(diff_ids[present:])
    with tempfile.TemporaryDirectory(prefix="nbdeploy-ship-") as folder:
        archive = savetar.spool(local_client.api.get_image(image), Path(folder), lambda d: d in needed)
        missing = [p for p in archive.layer_paths[present:] if p.partition("/")[0] in archive.dropped_folders]
        if missing:
            raise ShipFailed(f"The save archive of {image} lacks layers it needs: {', '.join(missing)}")
        total = archive.size()
        counter = _Counter(total, progress)
        docker = _docker()
        try:
            for message in remote_client.api.load_image(counter.wrap(archive.stream()), quiet=True):
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
    return counter.sent, archive.dropped_bytes


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
