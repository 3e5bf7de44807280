"""Scoring images with the docker SDK: engine connection, build contexts, streamed builds, failures explained.

The docker SDK (``nbdeploy[docker]``) is imported lazily; nothing talks to the engine at import time.
:func:`docker_client` connects (and pings) when called; :func:`build_image` assembles a context holding only
what the image needs (see :func:`context_files`), tags the image by that context's digest and streams the
legacy builder's log line by line to a progress callback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import re
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from nbdeploy.builders.dockerfile import (
    CTX_APP,
    CTX_MODELS,
    CTX_SECRETS,
    CTX_SERVER,
    CTX_SERVER_REQS,
    CTX_USER_REQS,
    ImageSpec,
    render_build_secrets,
    render_dockerfile,
    requirements_text,
)
from nbdeploy.errors import BuildError, EngineUnavailable, TargetNotAvailable

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

START_HINT = (
    "Start it with `bash tests/engines/docker.sh up` (from a clone of nbdeploy) or `dockerd &` as root, "
    "or deploy without Docker: --target process."
)


def import_docker() -> Any:
    """The docker SDK module, or TargetNotAvailable naming the extra to install."""
    try:
        import docker
    except ModuleNotFoundError as exc:
        raise TargetNotAvailable(
            "The Docker engine needs the Python package 'docker': pip install 'nbdeploy[docker]' "
            "(or deploy without Docker: --target process)"
        ) from exc
    return docker


def docker_client(base_url: str | None = None, tls: Any = None, timeout: int = 120) -> docker.DockerClient:
    """A connected client for ``base_url`` (default: ``DOCKER_HOST`` or the local socket).

    For TCP+TLS engines the session ignores ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` (``trust_env=False``):
    those variables would otherwise replace the engine's own CA (see docs/docker.md).
    """
    docker = import_docker()
    try:
        # an explicit version: no request before trust_env is set; the engine's own version is taken below
        floor = "1.41"
        if base_url is None and tls is None:
            client = docker.DockerClient.from_env(timeout=timeout, version=floor)
        else:
            client = docker.DockerClient(base_url=base_url, tls=tls, timeout=timeout, version=floor)
        if client.api.base_url.startswith("https"):
            client.api.trust_env = False
        client.ping()
        engine_version = client.api.version(api_version=False).get("ApiVersion", floor)
        client.api._version = min(engine_version, docker.constants.DEFAULT_DOCKER_API_VERSION, key=_version_key)
    except (docker.errors.DockerException, _requests_error()) as exc:
        where = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        raise EngineUnavailable("Docker", f"{where}: {_short(exc)}", START_HINT) from exc
    return client


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _requests_error() -> type[Exception]:
    import requests

    return requests.exceptions.RequestException


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


# ---------------------------------------------------------------------------------------------------------
# Ignore files (.amlignore / .dockerignore): gitignore-like patterns
# ---------------------------------------------------------------------------------------------------------

IGNORE_FILES = (".amlignore", ".dockerignore")
ALWAYS_IGNORED = ("__pycache__/", "*.pyc", ".ipynb_checkpoints/", ".git/", ".amlignore", ".dockerignore")


def _translate(pattern: str) -> str:
    """A gitignore-style glob as a regex over '/'-separated relative paths."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and "]" in pattern[i + 1:]:
            j = pattern.index("]", i + 1)
            body = pattern[i + 1:j].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class IgnoreRules:
    """Ordered patterns; the last one that matches a path decides (``!`` re-includes)."""

    rules: tuple[tuple[re.Pattern[str], bool, bool], ...] = ()
    """(regex, negated, directories only)."""

    @classmethod
    def parse(cls, text: str) -> IgnoreRules:
        rules = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            line = line[1:] if negated else line
            dir_only = line.endswith("/")
            line = line.strip("/") if dir_only else line.lstrip("/") if line.startswith("/") else line
            anchored = "/" in line or raw.strip().lstrip("!").startswith("/")
            regex = _translate(line) if anchored else "(?:.*/)?" + _translate(line)
            rules.append((re.compile(f"^{regex}$"), negated, dir_only))
        return cls(tuple(rules))

    @classmethod
    def for_folder(cls, folder: Path) -> IgnoreRules:
        """The default rules plus the folder's first ignore file found (``.amlignore``, then ``.dockerignore``)."""
        text = "\n".join(ALWAYS_IGNORED)
        for name in IGNORE_FILES:
            if (folder / name).is_file():
                text += "\n" + (folder / name).read_text(errors="replace")
                break
        return cls.parse(text)

    def excludes(self, relpath: str) -> bool:
        """Whether the file ``relpath`` is left out, itself or through an ignored parent folder."""
        parts = relpath.split("/")
        return any(self.ignored("/".join(parts[:i]), is_dir=True) for i in range(1, len(parts))) or self.ignored(relpath)

    def ignored(self, relpath: str, is_dir: bool = False) -> bool:
        verdict = False
        for regex, negated, dir_only in self.rules:
            if dir_only and not is_dir:
                continue
            if regex.match(relpath):
                verdict = not negated
        return verdict


def walk_files(folder: Path, rules: IgnoreRules | None = None) -> list[tuple[str, Path]]:
    """(relative path, absolute path) of every file under ``folder`` that ``rules`` keeps, sorted."""
    rules = rules or IgnoreRules.for_folder(folder)
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        rel_dir = os.path.relpath(dirpath, folder).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if not rules.ignored(rel_dir + d, is_dir=True))
        for name in filenames:
            if not rules.ignored(rel_dir + name):
                found.append((rel_dir + name, Path(dirpath) / name))
    return sorted(found)


# ---------------------------------------------------------------------------------------------------------
# Build context: a tar assembled from exactly the files the image needs, digested as it is written
# ---------------------------------------------------------------------------------------------------------


@dataclass
class BuildContext:
    """A tar stream for the engine, its content digest and size."""

    fileobj: IO[bytes]
    digest: str
    size: int
    largest: list[tuple[str, int]]

    def close(self) -> None:
        self.fileobj.close()


class _HashingReader:
    def __init__(self, f: IO[bytes], h: Any) -> None:
        self.f, self.h = f, h

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.h.update(data)
        return data


def assemble_context(files: Mapping[str, Path | bytes | str]) -> BuildContext:
    """Tar ``arcname -> file path or content``; metadata is normalized so equal content gives equal digests."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=64 << 20)  # noqa: SIM115 (closed by BuildContext)
    digest = hashlib.sha256()
    sizes = []
    with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for arcname in sorted(files):
            source = files[arcname]
            info = tarfile.TarInfo(arcname)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            digest.update(arcname.encode() + b"\0")
            if isinstance(source, (bytes, str)):
                data = source.encode() if isinstance(source, str) else source
                info.size, info.mode = len(data), 0o644
                digest.update(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                st = source.stat()
                info.size, info.mode = st.st_size, 0o755 if st.st_mode & 0o111 else 0o644
                digest.update(str(info.mode).encode())
                with open(source, "rb") as f:
                    tar.addfile(info, _HashingReader(f, digest))  # type: ignore[arg-type]
            digest.update(b"\0")
            sizes.append((arcname, info.size))
    spool.seek(0)
    total = sum(s for _, s in sizes)
    return BuildContext(spool, digest.hexdigest(), total, sorted(sizes, key=lambda x: -x[1])[:5])


def server_package_files() -> dict[str, Path]:
    """nbdeploy/server, to be copied into the image as the top-level package ``nbdeploy_server``."""
    import nbdeploy.server

    root = Path(nbdeploy.server.__file__).parent
    return {f"{CTX_SERVER}/{rel}": path for rel, path in walk_files(root, IgnoreRules.parse("\n".join(ALWAYS_IGNORED)))}


def context_files(spec: ImageSpec, app_root: Path, source_dir: str | None = None) -> dict[str, Path | bytes | str]:
    """Every file of the build context for ``spec`` and the app laid out in ``app_root``.

    ``app_root`` holds the entry script, the source folder and ``azureml-models/``; ignore files at the app
    root and in the source folder are honoured.
    """
    files: dict[str, Path | bytes | str] = {"Dockerfile": render_dockerfile(spec)}
    files[CTX_SERVER_REQS] = requirements_text(spec.server_requirements)
    files[CTX_USER_REQS] = requirements_text(spec.pip_requirements)
    for name, text in render_build_secrets(spec).items():
        files[f"{CTX_SECRETS}/{name}"] = text
    files.update(server_package_files())
    root_rules = IgnoreRules.for_folder(app_root)
    src_rules = IgnoreRules.for_folder(app_root / source_dir) if source_dir else None
    src_prefix = source_dir.strip("/") + "/" if source_dir else None
    for rel, path in walk_files(app_root, root_rules):
        if rel.startswith("azureml-models/"):
            files[f"{CTX_MODELS}/{rel[len('azureml-models/'):]}"] = path
        elif src_prefix and src_rules and rel.startswith(src_prefix) and src_rules.excludes(rel[len(src_prefix):]):
            continue
        else:
            files[f"{CTX_APP}/{rel}"] = path
    return files


# ---------------------------------------------------------------------------------------------------------
# Host settings that pass into builds: proxies, CA certificates, pip indexes
# ---------------------------------------------------------------------------------------------------------

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "FTP_PROXY", "ALL_PROXY")
HOST_CA_CANDIDATES = ("NBDEPLOY_BUILD_CA_BUNDLE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")
DEFAULT_HOST_CA = "/etc/ssl/certs/ca-certificates.crt"


@dataclass
class BuildSettings:
    """What passes from the host into builds. :meth:`from_env` reads the host; every field can be overridden."""

    proxies: dict[str, str] = field(default_factory=dict)
    """Docker's predefined proxy build args (both spellings are sent); not kept in the image or its history."""
    ca_bundle: Path | None = None
    pip_index_url: str | None = None
    pip_extra_index_urls: tuple[str, ...] = ()
    pip_trusted_hosts: tuple[str, ...] = ()
    large_context_bytes: int = 200 << 20

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BuildSettings:
        """The host's settings; ``NBDEPLOY_BUILD_PASS_HOST=0`` passes nothing."""
        env = os.environ if environ is None else environ
        if env.get("NBDEPLOY_BUILD_PASS_HOST", "1").lower() in ("0", "false", "no"):
            return cls()
        proxies = {}
        for var in PROXY_VARS:
            value = env.get(var) or env.get(var.lower())
            if value:
                proxies[var] = value
        ca = next((env[v] for v in HOST_CA_CANDIDATES if env.get(v) and os.path.isfile(env[v])), None)
        if ca is None and os.path.isfile(DEFAULT_HOST_CA):
            ca = DEFAULT_HOST_CA
        return cls(
            proxies=proxies,
            ca_bundle=Path(ca) if ca else None,
            pip_index_url=env.get("PIP_INDEX_URL") or None,
            pip_extra_index_urls=tuple(env.get("PIP_EXTRA_INDEX_URL", "").split()),
            pip_trusted_hosts=tuple(env.get("PIP_TRUSTED_HOST", "").split()),
        )

    def build_args(self) -> dict[str, str]:
        args = {}
        for var, value in self.proxies.items():
            args[var] = args[var.lower()] = value
        return args

    def apply(self, spec: ImageSpec) -> ImageSpec:
        """``spec`` with the host's CA and pip settings filled in where the spec sets none."""
        return dataclasses.replace(
            spec,
            ca_bundle=spec.ca_bundle or (self.ca_bundle.read_text() if self.ca_bundle else None),
            pip_index_url=spec.pip_index_url or self.pip_index_url,
            pip_extra_index_urls=tuple(spec.pip_extra_index_urls) or self.pip_extra_index_urls,
            pip_trusted_hosts=tuple(spec.pip_trusted_hosts) or self.pip_trusted_hosts,
        )


# ---------------------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------------------

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_PIP_MISSING = (
    re.compile(r"No matching distribution found for (\S+)"),
    re.compile(r"Could not find a version that satisfies the requirement (\S+)"),
)
_PULL_FAILED = re.compile(
    r"pull access denied|repository does not exist|manifest unknown|no such host|not found: manifest|"
    r"dial tcp|i/o timeout|x509|unauthorized|connection refused|TLS handshake", re.I)


@dataclass
class BuiltImage:
    tag: str
    image_id: str
    digest: str
    cached: bool
    """True when an image with this content digest existed already and no build ran."""
    seconds: float
    context_bytes: int
    log: list[str] = field(default_factory=list)


def explain_failure(error: str, log_lines: Sequence[str], step: str | None) -> str:
    """A one-line reason for a failed build: pip's missing package, a base image that cannot be pulled, ..."""
    text = "\n".join(log_lines[-200:]) + "\n" + error
    for regex in _PIP_MISSING:
        found = regex.findall(text)
        if found:
            return f"pip could not find the package {found[-1]!r} (check its name and version, and the pip index)"
    if step and step.upper().startswith("FROM") and _PULL_FAILED.search(text):
        image = step.split()[1] if len(step.split()) > 1 else "?"
        return (
            f"The base image {image!r} is not present in the engine and could not be pulled ({error.strip()}). "
            f"Without a registry, build one: nbdeploy base-image build --tag {image} "
            "(and use it with NBDEPLOY_BASE_IMAGE or the environment's base image)"
        )
    return f"docker build failed: {error.strip()}"


def ensure_base_image(client: Any, image: str, progress: Progress) -> None:
    """Pull ``image`` when the engine lacks it; BuildError pointing to ``nbdeploy base-image build`` otherwise."""
    docker = import_docker()
    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    progress(f"base image {image} is not present; pulling it")
    try:
        client.images.pull(image)
    except docker.errors.DockerException as exc:
        raise BuildError(
            f"The base image {image!r} is not present in the engine and could not be pulled ({_short(exc)}). "
            f"Without a registry, build one: nbdeploy base-image build --tag {image} "
            "(and use it with NBDEPLOY_BASE_IMAGE or the environment's base image)",
            step=f"FROM {image}",
        ) from exc


def image_for_digest(client: Any, tag: str) -> Any | None:
    docker = import_docker()
    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def build_image(client: Any, spec: ImageSpec, app_root: Path, repository: str, source_dir: str | None = None,
                settings: BuildSettings | None = None, progress: Progress | None = None,
                labels: Mapping[str, str] | None = None, nocache: bool = False) -> BuiltImage:
    """Build the scoring image for the app in ``app_root``; tag it ``repository:<content digest>``.

    Skips the build when that tag exists. Streams every log line to ``progress``; raises BuildError with the
    failing step and the log tail.
    """
    progress = progress or log.info
    settings = settings if settings is not None else BuildSettings.from_env()
    spec = settings.apply(spec)
    t0 = time.monotonic()
    files = context_files(spec, app_root, source_dir)
    ctx = assemble_context(files)
    try:
        tag = f"{repository}:{ctx.digest[:20]}"
        existing = None if nocache else image_for_digest(client, tag)
        if existing is not None:
            progress(f"image {tag} is up to date (content digest {ctx.digest[:12]})")
            return BuiltImage(tag, existing.id, ctx.digest, True, time.monotonic() - t0, ctx.size)
        progress(f"build context: {len(files)} files, {ctx.size / 1e6:.1f} MB")
        if ctx.size > settings.large_context_bytes:
            big = ", ".join(f"{name} ({size / 1e6:.0f} MB)" for name, size in ctx.largest)
            msg = (f"the build context is large ({ctx.size / 1e6:.0f} MB); largest files: {big}. "
                   "List what the image does not need in .amlignore")
            log.warning(msg)
            progress("warning: " + msg)
        if not spec.base_dockerfile:
            ensure_base_image(client, spec.base_image, progress)
        image_id, lines = _stream_build(client, ctx, tag, settings.build_args(), labels or {}, nocache, progress)
    finally:
        ctx.close()
    seconds = time.monotonic() - t0
    progress(f"built {tag} in {seconds:.1f} s")
    return BuiltImage(tag, image_id, ctx.digest, False, seconds, ctx.size, lines)


def _stream_build(client: Any, ctx: BuildContext, tag: str, build_args: dict[str, str], labels: Mapping[str, str],
                  nocache: bool, progress: Progress) -> tuple[str, list[str]]:
    docker = import_docker()
    lines: list[str] = []
    step: str | None = None
    image_id = None
    pending = ""
    try:
        stream = client.api.build(fileobj=ctx.fileobj, custom_context=True, encoding=None, tag=tag, rm=True,
                                  forcerm=True, decode=True, buildargs=build_args, labels=dict(labels),
                                  nocache=nocache, pull=False)
        for chunk in stream:
            if "stream" in chunk:
                pending += chunk["stream"]
                while "\n" in pending:
                    line, pending = pending.split("\n", 1)
                    line = line.rstrip("\r")
                    if not line.strip():
                        continue
                    match = _STEP.match(line)
                    if match:
                        step = f"{match.group(3)}  (step {match.group(1)}/{match.group(2)})"
                    lines.append(line)
                    progress(line)
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            if "error" in chunk:
                if pending.strip():
                    lines.append(pending.strip())
                error = chunk["error"]
                lines.append(error.strip())
                progress(error.strip())
                instruction = step.split("  (step")[0] if step else None
                raise BuildError(explain_failure(error, lines, instruction), lines, step=step)
    except docker.errors.APIError as exc:
        raise BuildError(f"docker build failed: {_short(exc)}", lines, step=step) from exc
    except (docker.errors.DockerException, _requests_error()) as exc:
        raise EngineUnavailable("Docker", _short(exc), START_HINT) from exc
    if image_id is None:
        image_id = client.images.get(tag).id
    return image_id, lines
