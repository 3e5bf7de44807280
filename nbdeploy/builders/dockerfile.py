"""Dockerfiles for scoring images, generated from plain data. Pure: no I/O, no engine.

Layers run from the most stable to the most volatile, so a change rebuilds only what follows it::

    runtime  base image (or the environment's own base Dockerfile) + system packages
    deps     a virtual environment made by uv from the environment's lock (exact versions with hashes,
             the scoring server's pins included), keyed by the lock's content; uv itself, CA certificates
             and uv.toml (index settings, possibly with credentials) live only here
    final    runtime + user + static env + the venv + the scoring server + app code + models (the last
             layer with content; only metadata follows: CMD and the per-revision labels)

Build secrets (the CA bundle, a uv.toml with index credentials) are copied into the ``deps`` stage only;
the final stage copies nothing but the virtual environment from it. Proxy variables arrive as Docker's
predefined build args (``HTTP_PROXY``, ...), which are neither declared here nor kept in ``docker history``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from nbdeploy.errors import InvalidSpec
from nbdeploy.server import (
    REQUIREMENTS as SERVER_REQUIREMENTS,  # pinned by the server itself
)

APP_ROOT = "/var/azureml-app"
SERVER_ROOT = "/opt/nbdeploy"
SERVER_PACKAGE = "nbdeploy_server"
SECRETS_IN_STAGE = "/tmp/nbdeploy-build"
PAYLOAD_UNREACHABLE = "nbdeploy-build-payload-unreachable"
"""Printed by a deps image's RUN that cannot reach the host's loopback (the builder then uses a deps stage)."""

# paths inside the build context assembled by docker_builder
CTX_SERVER = SERVER_PACKAGE
CTX_APP = "app"
CTX_MODELS = "models"
CTX_SERVER_REQS = "requirements/server.txt"
CTX_USER_REQS = "requirements/user.txt"
CTX_LOCK = "requirements/lock.txt"
CTX_UV = "build-tools/uv"
CTX_SECRETS = "build-secrets"
CA_FILE = "ca-certificates.crt"
UV_CONF = "uv.toml"

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_APT_NAME = re.compile(r"^[a-z0-9][a-z0-9+.:=~-]*$")
_FROM = re.compile(r"^\s*FROM\s+(?P<rest>.+?)\s*$", re.I | re.M)


@dataclass
class ImageSpec:
    """Everything that shapes a scoring image. Plain fields; paths are relative to the app root."""

    base_image: str = "python:3.11-slim"
    base_dockerfile: str | None = None
    """Text of the environment's own base Dockerfile; wins over ``base_image``."""
    python: str = "python3"
    """Interpreter of the base image that creates the virtual environment."""
    venv: str = f"{SERVER_ROOT}/venv"
    system_packages: Sequence[str] = ()
    pip_requirements: Sequence[str] = ()
    server_requirements: Sequence[str] = SERVER_REQUIREMENTS
    pip_index_url: str | None = None
    pip_extra_index_urls: Sequence[str] = ()
    pip_trusted_hosts: Sequence[str] = ()
    ca_bundle: str | None = None
    """PEM text trusted while installing packages (a TLS-inspecting proxy's CA); not kept in the image."""
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    uid: int = 1000
    user: str = "nbdeploy"
    entry_script: str = "score.py"
    source_dir: str | None = None
    model_dir: str = "azureml-models"
    has_models: bool = True
    gpu: bool = False
    port: int = 5001
    keep_pip: bool = False
    """Install pip in the image's venv (off: 10+ MB nobody needs at scoring time)."""
    lock: str | None = None
    """The environment's lock (``uv pip compile --generate-hashes`` output, server pins included). Without
    one, the deps stage installs ``server_requirements`` and ``pip_requirements`` with uv, unlocked."""
    compile_bytecode: bool = False
    """Compile every installed module at build time (slower builds; faster first imports in each new container).
    Off: the server compiles what it imports, once per container, into ``PYTHONPYCACHEPREFIX``."""
    python_version: str | None = None
    """``X.Y`` of the base image's Python, which the lock is made for (found from the image when unset)."""

    @property
    def has_secrets(self) -> bool:
        return bool(self.ca_bundle or render_uv_config(self))


def requirements_text(lines: Sequence[str]) -> str:
    """A requirements file: one stripped line each, blank lines and comments dropped, order kept."""
    kept = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return "".join(line + "\n" for line in kept)


def requirements_digest(lines: Sequence[str]) -> str:
    return "sha256:" + hashlib.sha256(requirements_text(lines).encode()).hexdigest()


def lock_digest(lock: str) -> str:
    return "sha256:" + hashlib.sha256(lock.encode()).hexdigest()


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def render_uv_config(spec: ImageSpec) -> str:
    """uv.toml for the deps stage ('' when nothing is set). May hold index credentials: a build secret."""
    rows = []
    if spec.pip_index_url:
        rows.append(f"index-url = {_toml_string(spec.pip_index_url)}")
    if spec.pip_extra_index_urls:
        rows.append(f"extra-index-url = [{', '.join(_toml_string(u) for u in spec.pip_extra_index_urls)}]")
    if spec.pip_trusted_hosts:
        rows.append(f"allow-insecure-host = [{', '.join(_toml_string(h) for h in spec.pip_trusted_hosts)}]")
    return "".join(row + "\n" for row in rows)


def render_build_secrets(spec: ImageSpec) -> dict[str, str]:
    """Files for the context's ``build-secrets/`` folder: name -> text."""
    files = {}
    if spec.ca_bundle:
        files[CA_FILE] = spec.ca_bundle if spec.ca_bundle.endswith("\n") else spec.ca_bundle + "\n"
    uv_conf = render_uv_config(spec)
    if uv_conf:
        files[UV_CONF] = uv_conf
    return files


def quote(value: str, what: str) -> str:
    """A double-quoted Dockerfile word; ``$`` is escaped so ENV/LABEL values are taken literally."""
    if "\n" in value or "\r" in value:
        raise InvalidSpec(what, "newlines are not allowed in image environment variables or labels")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def _pairs(items: Mapping[str, str], key_re: re.Pattern[str], what: str) -> str:
    out = []
    for key in sorted(items):
        if not key_re.fullmatch(key):
            raise InvalidSpec(f"{what} {key!r}", "not a valid name")
        out.append(f"{key}={quote(str(items[key]), f'{what} {key}')}")
    return " \\\n    ".join(out)


def _rel(path: str, what: str) -> str:
    clean = path.replace("\\", "/").strip("/")
    if not clean or clean.startswith("..") or "/../" in f"/{clean}/":
        raise InvalidSpec(what, f"{path!r} must be a path inside the app root")
    return clean


def _base_stage(spec: ImageSpec) -> tuple[list[str], str]:
    """Lines of the base part and the name the runtime stage builds FROM."""
    if not spec.base_dockerfile:
        if not spec.base_image.strip():
            raise InvalidSpec("base_image", "empty")
        return [], spec.base_image.strip()
    text = spec.base_dockerfile.strip("\n")
    froms = list(_FROM.finditer(text))
    if not froms:
        raise InvalidSpec("base_dockerfile", "has no FROM instruction")
    last = froms[-1]
    words = last.group("rest").split()
    if len(words) >= 3 and words[-2].lower() == "as":
        return ["# the environment's base Dockerfile", text, ""], words[-1]
    named = text[: last.end()] + " AS nbdeploy-base" + text[last.end() :]
    return ["# the environment's base Dockerfile", named, ""], "nbdeploy-base"


def _healthcheck(spec: ImageSpec) -> str:
    probe = (
        "import urllib.request as u; "
        f"u.build_opener(u.ProxyHandler({{}})).open('http://127.0.0.1:{spec.port}/health/ready', timeout=2)"
    )
    return (
        "HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 "
        f'CMD ["{spec.venv}/bin/python", "-c", "{probe}"]'
    )


def _runtime_lines(spec: ImageSpec) -> list[str]:
    """The base (or the environment's base Dockerfile) and its system packages, as stage ``runtime``."""
    base_lines, base_ref = _base_stage(spec)
    for pkg in spec.system_packages:
        if not _APT_NAME.fullmatch(pkg):
            raise InvalidSpec("system package", f"{pkg!r} is not a Debian package name")
    lines = list(base_lines) + [f"FROM {base_ref} AS runtime", "USER root"]
    if spec.system_packages:
        pkgs = " ".join(sorted(set(spec.system_packages)))
        lines += [
            "RUN set -eux; apt-get update; "
            f"DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {pkgs}; "
            "rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb",
        ]
    return lines


def _uv_run_env(spec: ImageSpec) -> str:
    """Variables for the uv commands of a deps stage: no cache, the build secrets' CA and uv.toml."""
    secrets = render_build_secrets(spec)
    uv_env = ["UV_NO_CACHE=1", "UV_PYTHON_DOWNLOADS=never", "UV_LINK_MODE=copy", "UV_NO_PROGRESS=1"]
    if CA_FILE in secrets:
        ca = f"{SECRETS_IN_STAGE}/{CA_FILE}"
        uv_env += [f"SSL_CERT_FILE={ca}", f"PIP_CERT={ca}", f"REQUESTS_CA_BUNDLE={ca}"]
    else:  # trust the image's own CA store, as Debian's pip does (uv's default is its bundled roots)
        uv_env += ["UV_SYSTEM_CERTS=1", "UV_NATIVE_TLS=1"]
    uv_env.append(f"UV_CONFIG_FILE={SECRETS_IN_STAGE}/{UV_CONF}" if UV_CONF in secrets else "UV_NO_CONFIG=1")
    return " ".join(uv_env)


def _install_commands(spec: ImageSpec) -> str:
    """Shell: make the venv with uv and install the lock into it (files under SECRETS_IN_STAGE)."""
    if spec.lock is None:
        raise InvalidSpec("lock", "a deps image is installed from a lock")
    uv, py, run_env = f"{SECRETS_IN_STAGE}/uv", f"{spec.venv}/bin/python", _uv_run_env(spec)
    pth = (
        f"{py} -c \"import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()['purelib'], "
        f"'{SERVER_PACKAGE}.pth').write_text('{SERVER_ROOT}\\n')\""
    )
    return (
        f"{run_env} {uv} venv --quiet {'--seed ' if spec.keep_pip else ''}--python {spec.python} {spec.venv} && "
        f"{run_env} {uv} pip sync --require-hashes {'--compile-bytecode ' if spec.compile_bytecode else ''}--python {py} {SECRETS_IN_STAGE}/lock.txt && "
        f"{pth}"
    )


def render_deps_dockerfile(spec: ImageSpec, payload_url: str) -> str:
    """A deps image: ``runtime`` plus the venv, installed from the lock in one RUN and nothing else.

    That RUN fetches uv, the lock and the build secrets from ``payload_url`` (a one-time address served by
    nbdeploy on the build host, reached with the build on the host network) and deletes them before the
    layer is committed, so none of them is in any layer; the final image is built ``FROM`` this one
    (:func:`render_dockerfile` with ``deps_image``), and the venv's files are written exactly once.
    """
    fetch = (
        'python3 -c "import io, sys, tarfile, urllib.request as u; '
        "tarfile.open(fileobj=io.BytesIO(u.build_opener(u.ProxyHandler({})).open(sys.argv[1], timeout=60).read()))"
        f'.extractall(sys.argv[2])" {payload_url} {SECRETS_IN_STAGE}'
    )
    lines = ["# Generated by nbdeploy (render_deps_dockerfile): the base and the environment's venv.", ""]
    lines += _runtime_lines(spec)
    lines += [
        f"# lock {lock_digest(spec.lock or '')}",
        f"RUN ({fetch} || {{ echo {PAYLOAD_UNREACHABLE} >&2; exit 97; }}) && ({_install_commands(spec)}); "
        f"status=$?; rm -rf {SECRETS_IN_STAGE}; exit $status",
        f"LABEL nbdeploy.deps={quote(lock_digest(spec.lock or ''), 'lock')}",
    ]
    return "\n".join(lines) + "\n"


def render_dockerfile(spec: ImageSpec, deps_image: str | None = None) -> str:
    """The Dockerfile text for ``spec`` (see the module docstring for the layer order).

    With ``deps_image`` (made by :func:`render_deps_dockerfile`), the final stage is built ``FROM`` it;
    otherwise a ``deps`` stage installs the venv from the context's uv, lock and build secrets and the
    final stage copies the venv alone from it.
    """
    entry = _rel(spec.entry_script, "entry_script")
    model_dir = _rel(spec.model_dir, "model_dir") if spec.model_dir.strip("/") else ""
    venv, py = spec.venv, f"{spec.venv}/bin/python"
    secrets = render_build_secrets(spec)

    lines = ["# Generated by nbdeploy (render_dockerfile): layers from the most stable to the most volatile.", ""]
    if deps_image is None:
        lines += _runtime_lines(spec)
        # deps: the only stage that sees uv and the build secrets
        uv = f"{SECRETS_IN_STAGE}/uv"
        run_env = _uv_run_env(spec)
        pth = (
            f"{py} -c \"import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()['purelib'], "
            f"'{SERVER_PACKAGE}.pth').write_text('{SERVER_ROOT}\\n')\""
        )
        make_venv = f"{uv} venv --quiet {'--seed ' if spec.keep_pip else ''}--python {spec.python} {venv}"
        lines += ["", "FROM runtime AS deps", f"COPY {CTX_UV} {uv}"]
        if secrets:
            lines.append(f"COPY {CTX_SECRETS}/ {SECRETS_IN_STAGE}/")
        if spec.lock is not None:
            lines += [
                f"# lock {lock_digest(spec.lock)}",
                f"COPY {CTX_LOCK} {SECRETS_IN_STAGE}/lock.txt",
                f"RUN {_install_commands(spec)}",
            ]
        else:
            lines += [
                f"COPY {CTX_SERVER_REQS} {SECRETS_IN_STAGE}/server-requirements.txt",
                f"RUN {run_env} {make_venv} && "
                f"{run_env} {uv} pip install --python {py} -r {SECRETS_IN_STAGE}/server-requirements.txt && {pth}",
            ]
            if requirements_text(spec.pip_requirements):
                lines += [
                    f"# requirements {requirements_digest(spec.pip_requirements)}",
                    f"COPY {CTX_USER_REQS} {SECRETS_IN_STAGE}/requirements.txt",
                    f"RUN {run_env} {uv} pip install --python {py} -r {SECRETS_IN_STAGE}/requirements.txt",
                ]
        lines.append('LABEL nbdeploy.stage="deps"')  # finds this stage's leftover images (build cache)
    user_reqs = requirements_text(spec.pip_requirements)

    # final: nothing from deps but the venv
    static_env = {
        "PATH": f"{venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "VIRTUAL_ENV": venv,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPYCACHEPREFIX": "/tmp/nbdeploy-pycache",  # the venv is read-only to the server's uid
        "AML_APP_ROOT": APP_ROOT,
        "HOME": f"/home/{spec.user}",
    }
    if spec.gpu:
        static_env |= {"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
    static_env |= dict(spec.env)
    app_env = {"AZUREML_ENTRY_SCRIPT": entry}
    if spec.source_dir:
        app_env["AZUREML_SOURCE_DIRECTORY"] = _rel(spec.source_dir, "source_dir")
    argv = [
        "python",
        "-m",
        SERVER_PACKAGE,
        "--host",
        "0.0.0.0",
        "--port",
        str(spec.port),
        "--entry-script",
        f"{APP_ROOT}/{entry}",
        "--model-dir",
        f"{APP_ROOT}/{model_dir}".rstrip("/"),
    ]
    if spec.source_dir:
        argv += ["--source-dir", f"{APP_ROOT}/{_rel(spec.source_dir, 'source_dir')}"]
    cmd = json.dumps(argv)
    lines += [
        "",
        f"FROM {deps_image}" if deps_image else "FROM runtime",
        f"RUN getent passwd {spec.uid} >/dev/null || useradd --uid {spec.uid} --user-group --create-home "
        f"--home-dir /home/{spec.user} --shell /usr/sbin/nologin {spec.user}",
        f"ENV {_pairs(static_env, _ENV_KEY, 'environment variable')}",
        f"WORKDIR {APP_ROOT}",
        f"EXPOSE {spec.port}",
        _healthcheck(spec),
        f"USER {spec.uid}:{spec.uid}",
        *([] if deps_image else [f"COPY --from=deps {venv} {venv}"]),
        f"COPY {CTX_SERVER}/ {SERVER_ROOT}/{SERVER_PACKAGE}/",
        f"ENV {_pairs(app_env, _ENV_KEY, 'environment variable')}",
        f"COPY {CTX_APP}/ {APP_ROOT}/",
        f"ENV AZUREML_MODEL_DIR={quote(f'{APP_ROOT}/{model_dir}'.rstrip('/'), 'model_dir')}",
    ]
    if spec.has_models:
        lines.append(f"COPY {CTX_MODELS}/ {APP_ROOT}/azureml-models/")
    lines.append(f"CMD {cmd}")
    labels = dict(spec.labels)
    if spec.lock is not None:
        labels.setdefault("nbdeploy.lock", lock_digest(spec.lock))
    if user_reqs:
        labels.setdefault("nbdeploy.requirements", requirements_digest(spec.pip_requirements))
    if labels:
        lines.append(f"LABEL {_pairs(labels, _LABEL_KEY, 'label')}")
    return "\n".join(lines) + "\n"
