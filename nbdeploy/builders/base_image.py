"""Python base images without a registry: debootstrap a Debian root filesystem, slim it, ``docker import`` it.

For air-gapped users and for nbdeploy's own tests. The root filesystem tarball is cached outside any clone
(``~/.cache/nbdeploy/base/rootfs-<key>.tar``), keyed by everything that goes into it, so a second build only
imports. Users with a registry keep a standard Python image: :func:`default_base_image`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbdeploy.errors import BuildError, InvalidInput

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

DEFAULT_REGISTRY_BASE_IMAGE = "python:3.11-slim"
"""The base for users who can pull from a registry (override with ``NBDEPLOY_BASE_IMAGE``)."""
DEFAULT_LOCAL_TAG = "nbdeploy/python-base:3.11-bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_PACKAGES = ("python3", "python3-venv", "ca-certificates")
RECIPE_VERSION = "1"
"""Bump when the recipe below changes, so cached tarballs are rebuilt."""

SLIM_EXCLUDES = (
    "./var/cache/apt/archives/*.deb",
    "./var/cache/apt/*.bin",
    "./var/lib/apt/lists/*",
    "./usr/share/doc/*",
    "./usr/share/man/*",
    "./usr/share/info/*",
    "./usr/share/locale/*",
    "./var/log/*",
    "./tmp/*",
)
DPKG_SLIM_CONF = """\
# nbdeploy: keep later package installs small, like the official Debian images
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
"""
APT_SLIM_CONF = """\
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
"""
IMAGE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "ENV PYTHONUNBUFFERED=1",
    'CMD ["python3"]',
)
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def default_base_image(environment_base: str | None = None, environ: dict[str, str] | None = None) -> str:
    """The base image to use: the environment's own, else ``NBDEPLOY_BASE_IMAGE``, else ``python:3.11-slim``."""
    env = os.environ if environ is None else environ
    return environment_base or env.get("NBDEPLOY_BASE_IMAGE") or DEFAULT_REGISTRY_BASE_IMAGE


def default_cache_dir() -> Path:
    """``$NBDEPLOY_CACHE_DIR/base`` or ``~/.cache/nbdeploy/base``."""
    root = os.environ.get("NBDEPLOY_CACHE_DIR") or os.path.join(Path.home(), ".cache", "nbdeploy")
    return Path(root) / "base"


@dataclass(frozen=True)
class BaseImageSpec:
    """What goes into a debootstrapped base image."""

    tag: str = DEFAULT_LOCAL_TAG
    suite: str = "bookworm"
    mirror: str = DEFAULT_MIRROR
    packages: tuple[str, ...] = DEFAULT_PACKAGES
    extra_ca: tuple[Path, ...] = field(default_factory=tuple)
    """PEM files whose certificates are added to the image's CA bundle (a TLS-inspecting proxy's CA)."""

    def cache_key(self) -> str:
        """Digest of every input of the root filesystem (the tag is not one)."""
        h = hashlib.sha256()
        for part in (RECIPE_VERSION, self.suite, self.mirror, ",".join(sorted(self.packages))):
            h.update(part.encode() + b"\0")
        for ca in self.extra_ca:
            h.update(Path(ca).read_bytes() + b"\0")
        return h.hexdigest()[:16]


@dataclass
class BaseImageResult:
    tag: str
    image_id: str
    tarball: Path
    cached_tarball: bool
    cached_image: bool


def merge_pem_bundles(existing: str, extra: str) -> tuple[str, int]:
    """Append the certificates of ``extra`` not already in ``existing``; return (bundle, number added)."""
    have = {m.group(0) for m in _PEM.finditer(existing)}
    new = [c for c in dict.fromkeys(m.group(0) for m in _PEM.finditer(extra)) if c not in have]
    text = existing if not existing or existing.endswith("\n") else existing + "\n"
    return text + "".join(c + "\n" for c in new), len(new)


def _run(argv: Sequence[str], progress: Progress, step: str) -> None:
    """Run a command, forwarding its output line by line; BuildError on failure."""
    lines: list[str] = []
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        lines.append(line)
        progress(line)
    if proc.wait() != 0:
        raise BuildError(f"{argv[0]} exited with code {proc.returncode}", lines, step=step)


def _customize(rootfs: Path, spec: BaseImageSpec, progress: Progress) -> None:
    """Slim defaults for later installs, extra CA certificates, a ``python`` command."""
    (rootfs / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/dpkg/dpkg.cfg.d/nbdeploy-slim").write_text(DPKG_SLIM_CONF)
    (rootfs / "etc/apt/apt.conf.d/90nbdeploy-slim").write_text(APT_SLIM_CONF)
    bundle = rootfs / "etc/ssl/certs/ca-certificates.crt"
    local_ca = rootfs / "usr/local/share/ca-certificates"
    for i, ca in enumerate(spec.extra_ca):
        extra = Path(ca).read_text()
        text, added = merge_pem_bundles(bundle.read_text() if bundle.exists() else "", extra)
        bundle.write_text(text)
        if added:
            # kept as its own file so update-ca-certificates in derived images keeps it
            local_ca.mkdir(parents=True, exist_ok=True)
            (local_ca / f"nbdeploy-extra-{i}.crt").write_text(extra)
        progress(f"extra CA {ca}: {added} certificate(s) added")
    python = rootfs / "usr/local/bin/python"
    if not python.exists():
        python.parent.mkdir(parents=True, exist_ok=True)
        python.symlink_to("/usr/bin/python3")


def build_rootfs_tarball(
    spec: BaseImageSpec, cache_dir: Path | None = None, progress: Progress | None = None, force: bool = False
) -> tuple[Path, bool]:
    """Debootstrap, customize and tar the root filesystem; return (tarball, whether it came from the cache)."""
    progress = progress or log.info
    cache_dir = Path(cache_dir or default_cache_dir())
    tarball = cache_dir / f"rootfs-{spec.suite}-{spec.cache_key()}.tar"
    if tarball.exists() and not force:
        progress(f"root filesystem cached: {tarball}")
        return tarball, True
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is not installed: apt-get install -y debootstrap", step="debootstrap")
    if os.geteuid() != 0:
        raise BuildError("debootstrap needs root (run the command as root or in a root container)", step="debootstrap")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        progress(f"debootstrap {spec.suite} from {spec.mirror} with {', '.join(spec.packages)}")
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(spec.packages)}",
                spec.suite,
                str(rootfs),
                spec.mirror,
            ],
            progress,
            step="debootstrap",
        )
        _customize(rootfs, spec, progress)
        partial = Path(tmp) / "rootfs.tar"
        argv = ["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial)]
        argv += [f"--exclude={pattern}" for pattern in SLIM_EXCLUDES] + ["."]
        progress("packing the root filesystem (slim)")
        _run(argv, progress, step="tar")
        os.replace(partial, tarball)
    progress(f"root filesystem: {tarball} ({tarball.stat().st_size / 1e6:.0f} MB)")
    return tarball, False


def build_base_image(
    spec: BaseImageSpec,
    client: Any = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> BaseImageResult:
    """Build (or reuse) the root filesystem tarball and import it into the engine as ``spec.tag``."""
    from nbdeploy.builders.docker_builder import docker_client

    progress = progress or log.info
    for ca in spec.extra_ca:
        if not Path(ca).is_file():
            raise InvalidInput(f"--extra-ca {ca}: no such file")
    client = client or docker_client()
    key = spec.cache_key()
    if not force:
        existing = _existing_image(client, spec.tag)
        if existing is not None and existing.labels.get("nbdeploy.base.key") == key:
            progress(f"image {spec.tag} is up to date ({existing.short_id})")
            return BaseImageResult(spec.tag, existing.id, default_cache_dir(), True, True)
    tarball, cached = build_rootfs_tarball(spec, cache_dir, progress, force=force)
    repository, _, tag = spec.tag.rpartition(":") if ":" in spec.tag.split("/")[-1] else (spec.tag, "", "latest")
    changes = list(IMAGE_CHANGES) + [f"LABEL nbdeploy.base.key={key} nbdeploy.base.suite={spec.suite}"]
    progress(f"docker import {tarball.name} {spec.tag}")
    try:
        answer = client.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=changes)
    except Exception as exc:  # docker.errors.APIError; the SDK is imported lazily
        raise BuildError(f"docker import failed: {exc}", step="docker import") from exc
    image = client.images.get(spec.tag)
    progress(f"built {spec.tag} ({image.short_id}, {image.attrs.get('Size', 0) / 1e6:.0f} MB)")
    log.debug("import answer: %s", answer)
    return BaseImageResult(spec.tag, image.id, tarball, cached, False)


def _existing_image(client: Any, tag: str) -> Any:  # docker.models.images.Image
    import docker.errors

    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
