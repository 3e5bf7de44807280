"""Scoring images with the docker SDK: engine connection, build contexts, streamed builds, failures explained.

The docker SDK (``nbdeploy[docker]``) is imported lazily; nothing talks to the engine at import time.
:func:`docker_client` connects (and pings) when called; :func:`build_image` tags the image by a recipe
digest made from digests already known (:func:`recipe_digest`: Dockerfile, lock, server, secrets, bundle),
so an up-to-date check reads no model byte; only when that tag is missing does it assemble a context holding
only what the image needs (see :func:`context_files`) and stream the legacy builder's log line by line to a
progress callback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import secrets as _secrets
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from nbdeploy.builders.bundle import COMPLETE_MARKER
from nbdeploy.builders.dockerfile import (
    CTX_APP,
    CTX_LOCK,
    CTX_MODELS,
    CTX_SECRETS,
    CTX_SERVER,
    CTX_SERVER_REQS,
    CTX_USER_REQS,
    CTX_UV,
    PAYLOAD_UNREACHABLE,
    ImageSpec,
    lock_digest,
    render_build_secrets,
    render_deps_dockerfile,
    render_dockerfile,
    requirements_text,
)
from nbdeploy.builders.ignore import ALWAYS_IGNORED, IgnoreRules, walk_files
from nbdeploy.builders.lock import (
    EnvironmentLock,
    IndexOptions,
    expand_references,
    lock_requirements,
    uv_binary,
)
from nbdeploy.builders.venv import server_hash_of
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


class _NameHash:
    """Stands in for sha256 when content is not hashed: keeps names and sizes only."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()

    def update(self, data: bytes) -> None:
        if len(data) < 4096:
            self.h.update(data)

    def hexdigest(self) -> str:
        return self.h.hexdigest()


class _HashingReader:
    def __init__(self, f: IO[bytes], h: Any) -> None:
        self.f, self.h = f, h

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.h.update(data)
        return data


def assemble_context(files: Mapping[str, Path | bytes | str], hash_content: bool = True) -> BuildContext:
    """Tar ``arcname -> file path or content``; metadata is normalized so equal content gives equal digests.

    ``hash_content=False`` skips digesting the files (builds are tagged by :func:`recipe_digest`); the
    digest then covers names and sizes only.
    """
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=64 << 20)  # noqa: SIM115 (closed by BuildContext)
    digest: Any = hashlib.sha256() if hash_content else _NameHash()
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
                    tar.addfile(info, _HashingReader(f, digest) if hash_content else f)
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


def context_files(
    spec: ImageSpec, app_root: Path, source_dir: str | None = None, deps_image: str | None = None
) -> dict[str, Path | bytes | str]:
    """Every file of the build context for ``spec`` and the app laid out in ``app_root``.

    ``app_root`` holds the entry script, the source folder and ``azureml-models/``; ignore files at the app
    root and in the source folder are honoured (:mod:`nbdeploy.builders.ignore`). The host's uv binary goes
    in for the deps stage only.
    """
    files: dict[str, Path | bytes | str] = {"Dockerfile": render_dockerfile(spec, deps_image)}
    if deps_image is None:  # a deps stage in this build: uv, the lock and the secrets go in for it
        files[CTX_UV] = Path(uv_binary())
        if spec.lock is not None:
            files[CTX_LOCK] = spec.lock
        else:
            files[CTX_SERVER_REQS] = requirements_text(spec.server_requirements)
            files[CTX_USER_REQS] = requirements_text(spec.pip_requirements)
        for name, text in render_build_secrets(spec).items():
            files[f"{CTX_SECRETS}/{name}"] = text
    files.update(server_package_files())
    files.update(app_context_files(app_root, source_dir))
    return files


def app_context_files(app_root: Path, source_dir: str | None = None) -> dict[str, Path]:
    """The app's entries of the build context: ``app/...`` (code) and ``models/...``."""
    files: dict[str, Path] = {}
    root_rules = IgnoreRules.for_folder(app_root)
    src_rules = IgnoreRules.for_folder(app_root / source_dir) if source_dir else None
    src_prefix = source_dir.strip("/") + "/" if source_dir else None
    for rel, path in walk_files(app_root, root_rules):
        if rel == COMPLETE_MARKER:
            continue  # bookkeeping of create_bundle: holds the models' digests, would void the code layer's cache
        if rel.startswith("azureml-models/"):
            files[f"{CTX_MODELS}/{rel[len('azureml-models/') :]}"] = path
        elif src_prefix and src_rules and rel.startswith(src_prefix) and src_rules.excludes(rel[len(src_prefix) :]):
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
    lock_dir: Path | None = None
    """Where locks made by :func:`build_image` are kept (default: ``~/.cache/nbdeploy/locks``)."""
    deps_image: bool | None = None
    """Install the venv in a deps image of its own, fed from the host (see :func:`ensure_deps_image`); ``None``:
    when the engine runs on this host (its local socket). ``False``: a ``deps`` stage in the same build."""

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
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PIP_MISSING = (
    re.compile(r"No matching distribution found for (\S+)"),
    re.compile(r"Could not find a version that satisfies the requirement (\S+)"),
)
_PULL_FAILED = re.compile(
    r"pull access denied|repository does not exist|manifest unknown|no such host|not found: manifest|"
    r"dial tcp|i/o timeout|x509|unauthorized|connection refused|TLS handshake",
    re.I,
)


RECIPE_VERSION = "2"
"""Bump when the way images are made changes without changing any input below, so tags change."""


@dataclass
class BuiltImage:
    tag: str
    image_id: str
    digest: str
    """The recipe digest the image is tagged by (see :func:`recipe_digest`)."""
    cached: bool
    """True when an image with this recipe digest existed already and no build ran."""
    seconds: float
    context_bytes: int
    log: list[str] = field(default_factory=list)
    lock: EnvironmentLock | None = None
    """The lock the deps stage installed (made here when the spec had none)."""
    check_seconds: float = 0.0
    """Time spent deciding whether the image was up to date (no context is read for that)."""


_UV_FETCH = re.compile(r"Failed to (?:fetch|download)[:\s]+`?([^`\s]+)`?")
_UV_CAUSE = re.compile(r"^\s*(?:cause|Caused by):\s*(.+)$", re.M)


def explain_failure(error: str, log_lines: Sequence[str], step: str | None) -> str:
    """A one-line reason for a failed build: a missing package, a download that failed, a base image, ..."""
    text = _ANSI.sub("", "\n".join(log_lines[-200:]) + "\n" + error)
    for regex in _PIP_MISSING:
        found = regex.findall(text)
        if found:
            return f"pip could not find the package {found[-1]!r} (check its name and version, and the pip index)"
    fetch = _UV_FETCH.search(text)
    if fetch:
        causes = _UV_CAUSE.findall(text[fetch.end() :])
        why = f" ({causes[-1].strip()})" if causes else ""
        return (
            f"installing the locked packages failed: could not download {fetch.group(1)}{why}; check the proxy, "
            "the CA certificates (ca_certificates) and the package index"
        )
    if step and step.upper().startswith("FROM") and _PULL_FAILED.search(text):
        image = step.split()[1] if len(step.split()) > 1 else "?"
        return (
            f"The base image {image!r} is not present in the engine and could not be pulled ({error.strip()}). "
            f"Without a registry, build one: nbdeploy base-image build --tag {image} "
            "(and use it with NBDEPLOY_BASE_IMAGE or the environment's base image)"
        )
    return f"docker build failed: {error.strip()}"


def ensure_base_image(client: Any, image: str, progress: Progress) -> Any:
    """The engine's image ``image``, pulled when absent; BuildError pointing to ``nbdeploy base-image build``."""
    docker = import_docker()
    try:
        return client.images.get(image)
    except docker.errors.ImageNotFound:
        pass
    progress(f"base image {image} is not present; pulling it")
    try:
        return client.images.pull(image)
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


_PY_IN_TAG = re.compile(r":(?:python-?)?(\d+)\.(\d+)")
_python_of_image: dict[str, str] = {}


def image_python_version(client: Any, spec: ImageSpec, base: Any | None) -> str:
    """``X.Y`` of the Python the image's venv is made from: the spec's, else found from the base image.

    Looked up in this order: ``spec.python_version``, the base image's ``PYTHON_VERSION`` variable (official
    Python images), a version in its tag (``python-base:3.11-bookworm``), running ``python3 -V`` in it once
    (cached per image id); for a base Dockerfile, a version in its last ``FROM`` tag, else this interpreter's.
    """
    found = lock_python_version(spec.python_version)
    if found:
        return found
    if base is None:
        froms = re.findall(r"(?im)^\s*FROM\s+(\S+)", spec.base_dockerfile or "")
        match = _PY_IN_TAG.search(froms[-1]) if froms else None
        return f"{match.group(1)}.{match.group(2)}" if match else f"{sys.version_info.major}.{sys.version_info.minor}"
    for item in base.attrs.get("Config", {}).get("Env") or []:
        if item.startswith("PYTHON_VERSION=") and lock_python_version(item.split("=", 1)[1]):
            return lock_python_version(item.split("=", 1)[1]) or ""
    for tag in base.tags or [spec.base_image]:
        match = _PY_IN_TAG.search(tag)
        if match:
            return f"{match.group(1)}.{match.group(2)}"
    if base.id not in _python_of_image:
        out = client.containers.run(
            base.id,
            [spec.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            remove=True,
            entrypoint=[],
            network_disabled=True,
        )
        _python_of_image[base.id] = out.decode().strip()
    return _python_of_image[base.id]


def lock_python_version(value: str | None) -> str | None:
    match = re.search(r"(\d+)\.(\d+)", value or "")
    return f"{match.group(1)}.{match.group(2)}" if match else None


def default_lock_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nbdeploy" / "locks"


def lock_for_image(spec: ImageSpec, python_version: str, folder: Path, progress: Progress) -> EnvironmentLock:
    """The lock for the spec's server and user requirements and index settings (made once, then read)."""
    requirements = list(spec.server_requirements) + [
        r.strip() for r in spec.pip_requirements if r.strip() and not r.strip().startswith("#")
    ]
    with tempfile.TemporaryDirectory(prefix="nbdeploy-ca-") as tmp:  # uv reads the CA from a file
        ca_files: tuple[str, ...] = ()
        if spec.ca_bundle:
            (Path(tmp) / "ca.pem").write_text(spec.ca_bundle)
            ca_files = (str(Path(tmp) / "ca.pem"),)
        options = IndexOptions(
            spec.pip_index_url, tuple(spec.pip_extra_index_urls), tuple(spec.pip_trusted_hosts), ca_files
        )
        return lock_requirements(requirements, options, python_version, folder, progress)


def bundle_digest_of(app_root: Path) -> str | None:
    """The digest create_bundle recorded in ``app_root`` (None for a folder that is not a bundle)."""
    try:
        return str(json.loads((app_root / COMPLETE_MARKER).read_text())["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def app_files_digest(app_root: Path, source_dir: str | None = None) -> str:
    """sha256 over the app files an image would hold, for a folder that is not a bundle (reads every byte)."""
    sha = hashlib.sha256()
    for arcname, path in sorted(app_context_files(app_root, source_dir).items()):
        sha.update(f"{arcname}\0{oct(path.stat().st_mode & 0o111)}\0".encode())
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                sha.update(chunk)
        sha.update(b"\0")
    return "folder:" + sha.hexdigest()


def recipe_digest(
    spec: ImageSpec,
    source_dir: str | None,
    bundle_digest: str,
    base_image_id: str | None,
    deps_image: str | None = None,
) -> str:
    """The image's identity from digests already known: nothing of the app or its models is read.

    It covers the rendered Dockerfile, the lock (or the unlocked requirements), the scoring server's
    source hash, the build secrets (index URLs as written: rotating the credential behind a ``${VAR}``
    does not rebuild), the bundle's digest (code-file hashes and the registry's model digests), the
    source folder, the base image's id and the uv that installs.
    """
    secrets = render_build_secrets(spec)
    doc = {
        "recipe": RECIPE_VERSION,
        "dockerfile": render_dockerfile(spec, deps_image),
        "lock": lock_digest(spec.lock) if spec.lock is not None else None,
        "requirements": None
        if spec.lock is not None
        else [list(spec.server_requirements), list(spec.pip_requirements)],
        "server": server_hash_of(),
        "secrets": hashlib.sha256(json.dumps(secrets, sort_keys=True).encode()).hexdigest(),
        "bundle": bundle_digest,
        "source_dir": source_dir,
        "base": base_image_id,
        "uv": _uv_version(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _uv_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("uv")
    except metadata.PackageNotFoundError:  # pragma: no cover - uv is a core dependency
        return "?"


def _expanded(spec: ImageSpec) -> ImageSpec:
    """``spec`` with ``${VAR}`` references in its index URLs replaced from this process's environment."""
    return dataclasses.replace(
        spec,
        pip_index_url=expand_references(spec.pip_index_url, "pip_index_url") if spec.pip_index_url else None,
        pip_extra_index_urls=tuple(expand_references(u, "pip_extra_index_urls") for u in spec.pip_extra_index_urls),
    )


DEPS_REPOSITORY = "nbdeploy/deps"
_PER_REVISION_LABELS = ("nbdeploy.service", "nbdeploy.bundle", "nbdeploy.models", "nbdeploy.environment")


def engine_is_local(client: Any) -> bool:
    """Whether the engine runs on this host (reached through its local socket)."""
    return str(getattr(client.api, "base_url", "")).startswith(
        ("http+docker://localhost", "http+docker://localunixsocket")
    )


def deps_image_tag(spec: ImageSpec, base_image_id: str | None) -> str:
    """``nbdeploy/deps:<key>``: one per base image, system packages, lock and uv; shared by every service."""
    doc = {
        "recipe": RECIPE_VERSION,
        "dockerfile": render_deps_dockerfile(spec, "URL"),
        "base": base_image_id,
        "uv": _uv_version(),
    }
    return f"{DEPS_REPOSITORY}:{hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:20]}"


def ensure_deps_image(
    client: Any,
    spec: ImageSpec,
    tag: str,
    settings: BuildSettings,
    labels: Mapping[str, str],
    nocache: bool,
    progress: Progress,
) -> list[str]:
    """Build the deps image ``tag`` unless the engine has it; returns the build's log lines.

    Its one RUN fetches uv, the lock and the build secrets from a one-time loopback address served here
    (the build runs on the host network) and deletes them before the layer is committed.
    """
    if not nocache and image_for_digest(client, tag) is not None:
        progress(f"dependencies image {tag} is up to date")
        return []
    payload: dict[str, Path | bytes | str] = {"uv": Path(uv_binary()), "lock.txt": spec.lock or ""}
    payload.update(render_build_secrets(spec))
    progress(f"building the dependencies image {tag} ({len((spec.lock or '').split('==')) - 1} locked packages)")
    shared = {k: v for k, v in {**spec.labels, **labels}.items() if k not in _PER_REVISION_LABELS}
    with _PayloadServer(payload) as url:
        ctx = assemble_context({"Dockerfile": render_deps_dockerfile(spec, url)}, hash_content=False)
        try:
            _, lines = _stream_build(
                client, ctx, tag, settings.build_args(), shared, nocache, progress, network_mode="host"
            )
        finally:
            ctx.close()
    return lines


class _PayloadServer:
    """Serves one tar of build files once to the build on this host, at a random path; stops on exit."""

    def __init__(self, files: Mapping[str, Path | bytes | str]) -> None:
        ctx = assemble_context(files, hash_content=False)
        try:
            self.data = ctx.fileobj.read()
        finally:
            ctx.close()
        self.path = "/" + _secrets.token_urlsafe(24)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != outer.path:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.data)))
                self.end_headers()
                self.wfile.write(outer.data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                log.debug("payload server: " + format, *args)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="nbdeploy-build-payload", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def build_image(
    client: Any,
    spec: ImageSpec,
    app_root: Path,
    repository: str,
    source_dir: str | None = None,
    settings: BuildSettings | None = None,
    progress: Progress | None = None,
    labels: Mapping[str, str] | None = None,
    nocache: bool = False,
    bundle_digest: str | None = None,
    lock: EnvironmentLock | None = None,
) -> BuiltImage:
    """Build the scoring image for the app in ``app_root``; tag it ``repository:<recipe digest>``.

    Whether the image is up to date is decided from digests already known (:func:`recipe_digest`): the
    bundle's (``bundle_digest``, else the one recorded in ``app_root`` by create_bundle), the lock's, the
    server's; only a folder that is not a bundle has its files hashed. The build context is assembled only
    when that tag is missing. Without ``lock`` (or ``spec.lock``) the spec's requirements are locked here
    once, for the base image's Python. Streams every log line to ``progress``; raises BuildError with the
    failing step and the log tail.
    """
    progress = progress or log.info
    settings = settings if settings is not None else BuildSettings.from_env()
    spec = settings.apply(spec)  # index URLs as written: ${VAR} references are expanded for the build only
    t0 = time.monotonic()
    base = None if spec.base_dockerfile else ensure_base_image(client, spec.base_image, progress)
    if lock is not None:
        spec = dataclasses.replace(spec, lock=lock.text, python_version=lock.python_version)
    elif spec.lock is None:
        python_version = image_python_version(client, spec, base)
        lock = lock_for_image(spec, python_version, settings.lock_dir or default_lock_dir(), progress)
        spec = dataclasses.replace(spec, lock=lock.text, python_version=python_version)
    t_check = time.monotonic()
    use_deps_image = settings.deps_image if settings.deps_image is not None else engine_is_local(client)
    deps_tag = deps_image_tag(spec, getattr(base, "id", None)) if use_deps_image else None
    bundle_digest = bundle_digest or bundle_digest_of(app_root) or app_files_digest(app_root, source_dir)
    digest = recipe_digest(spec, source_dir, bundle_digest, getattr(base, "id", None), deps_tag)
    tag = f"{repository}:{digest[:20]}"
    existing = None if nocache else image_for_digest(client, tag)
    check_s = time.monotonic() - t_check
    if existing is not None:
        progress(f"image {tag} is up to date (recipe digest {digest[:12]}, checked in {check_s * 1000:.0f} ms)")
        return BuiltImage(tag, existing.id, digest, True, time.monotonic() - t0, 0, lock=lock, check_seconds=check_s)
    lines: list[str] = []
    spec = _expanded(spec)
    if deps_tag is not None:
        try:
            lines += ensure_deps_image(client, spec, deps_tag, settings, labels or {}, nocache, progress)
        except BuildError as exc:
            if not any(PAYLOAD_UNREACHABLE in line for line in exc.build_log):
                raise
            progress(
                "the engine's builds cannot reach this host's loopback (an engine in a VM?): "
                "installing the dependencies in a deps stage instead"
            )
            deps_tag = None
    files = context_files(spec, app_root, source_dir, deps_tag)
    ctx = assemble_context(files, hash_content=False)
    try:
        progress(f"build context: {len(files)} files, {ctx.size / 1e6:.1f} MB")
        if ctx.size > settings.large_context_bytes:
            big = ", ".join(f"{name} ({size / 1e6:.0f} MB)" for name, size in ctx.largest)
            msg = (
                f"the build context is large ({ctx.size / 1e6:.0f} MB); largest files: {big}. "
                "List what the image does not need in .amlignore"
            )
            log.warning(msg)
            progress("warning: " + msg)
        image_id, build_lines = _stream_build(client, ctx, tag, settings.build_args(), labels or {}, nocache, progress)
        lines += build_lines
    finally:
        ctx.close()
    seconds = time.monotonic() - t0
    progress(f"built {tag} in {seconds:.1f} s")
    return BuiltImage(tag, image_id, digest, False, seconds, ctx.size, lines, lock=lock, check_seconds=check_s)


def _stream_build(
    client: Any,
    ctx: BuildContext,
    tag: str,
    build_args: dict[str, str],
    labels: Mapping[str, str],
    nocache: bool,
    progress: Progress,
    network_mode: str | None = None,
) -> tuple[str, list[str]]:
    docker = import_docker()
    lines: list[str] = []
    step: str | None = None
    image_id = None
    pending = ""
    try:
        stream = client.api.build(
            fileobj=ctx.fileobj,
            custom_context=True,
            encoding=None,
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            buildargs=build_args,
            labels=dict(labels),
            nocache=nocache,
            pull=False,
            network_mode=network_mode,
        )
        for chunk in stream:
            if "stream" in chunk:
                pending += chunk["stream"]
                while "\n" in pending:
                    line, pending = pending.split("\n", 1)
                    line = _ANSI.sub("", line).rstrip("\r")
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
