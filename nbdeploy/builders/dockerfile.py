"""Dockerfiles for scoring images, generated from plain data. Pure: no I/O, no engine.

Layers run from the most stable to the most volatile, so a change rebuilds only what follows it::

    runtime  base image (or the environment's own base Dockerfile) + system packages
    deps     a virtual environment: the scoring server's pinned deps, then the user's requirements
             (keyed by the requirement files' content); CA certificates and pip.conf live only here
    final    runtime + user + static env + the venv + the scoring server + app code + models (the last
             layer with content; only metadata follows: CMD and the per-revision labels)

Build secrets (the CA bundle, a pip.conf with index credentials) are copied into the ``deps`` stage only;
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

# paths inside the build context assembled by docker_builder
CTX_SERVER = SERVER_PACKAGE
CTX_APP = "app"
CTX_MODELS = "models"
CTX_SERVER_REQS = "requirements/server.txt"
CTX_USER_REQS = "requirements/user.txt"
CTX_SECRETS = "build-secrets"
CA_FILE = "ca-certificates.crt"
PIP_CONF = "pip.conf"

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
    """Keep pip in the image's venv (off: 10+ MB nobody needs at scoring time)."""

    @property
    def has_secrets(self) -> bool:
        return bool(self.ca_bundle or render_pip_conf(self))


def requirements_text(lines: Sequence[str]) -> str:
    """A requirements file: one stripped line each, blank lines and comments dropped, order kept."""
    kept = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return "".join(line + "\n" for line in kept)


def requirements_digest(lines: Sequence[str]) -> str:
    return "sha256:" + hashlib.sha256(requirements_text(lines).encode()).hexdigest()


def render_pip_conf(spec: ImageSpec) -> str:
    """pip.conf for the deps stage ('' when nothing is set). May hold index credentials: a build secret."""
    rows = []
    if spec.pip_index_url:
        rows.append(f"index-url = {spec.pip_index_url}")
    if spec.pip_extra_index_urls:
        rows.append("extra-index-url =" + "".join(f"\n    {u}" for u in spec.pip_extra_index_urls))
    if spec.pip_trusted_hosts:
        rows.append("trusted-host =" + "".join(f"\n    {h}" for h in spec.pip_trusted_hosts))
    return "[global]\n" + "\n".join(rows) + "\n" if rows else ""


def render_build_secrets(spec: ImageSpec) -> dict[str, str]:
    """Files for the context's ``build-secrets/`` folder: name -> text."""
    files = {}
    if spec.ca_bundle:
        files[CA_FILE] = spec.ca_bundle if spec.ca_bundle.endswith("\n") else spec.ca_bundle + "\n"
    pip_conf = render_pip_conf(spec)
    if pip_conf:
        files[PIP_CONF] = pip_conf
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
    named = text[: last.end()] + " AS nbdeploy-base" + text[last.end():]
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


def render_dockerfile(spec: ImageSpec) -> str:
    """The Dockerfile text for ``spec`` (see the module docstring for the layer order)."""
    base_lines, base_ref = _base_stage(spec)
    for pkg in spec.system_packages:
        if not _APT_NAME.fullmatch(pkg):
            raise InvalidSpec("system package", f"{pkg!r} is not a Debian package name")
    entry = _rel(spec.entry_script, "entry_script")
    model_dir = _rel(spec.model_dir, "model_dir") if spec.model_dir.strip("/") else ""
    venv, py = spec.venv, f"{spec.venv}/bin/python"
    secrets = render_build_secrets(spec)

    lines = ["# Generated by nbdeploy (render_dockerfile): layers from the most stable to the most volatile.", ""]
    lines += base_lines
    lines += [f"FROM {base_ref} AS runtime", "USER root"]
    if spec.system_packages:
        pkgs = " ".join(sorted(set(spec.system_packages)))
        lines += [
            "RUN set -eux; apt-get update; "
            f"DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {pkgs}; "
            "rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb",
        ]

    # deps: the only stage that sees build secrets
    pip_env = ["PIP_NO_CACHE_DIR=1", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1"]
    if CA_FILE in secrets:
        ca = f"{SECRETS_IN_STAGE}/{CA_FILE}"
        pip_env += [f"PIP_CERT={ca}", f"SSL_CERT_FILE={ca}", f"REQUESTS_CA_BUNDLE={ca}"]
    if PIP_CONF in secrets:
        pip_env.append(f"PIP_CONFIG_FILE={SECRETS_IN_STAGE}/{PIP_CONF}")
    run_env = " ".join(pip_env)
    lines += ["", "FROM runtime AS deps"]
    if secrets:
        lines.append(f"COPY {CTX_SECRETS}/ {SECRETS_IN_STAGE}/")
    lines += [
        f"COPY {CTX_SERVER_REQS} {SECRETS_IN_STAGE}/server-requirements.txt",
        f"RUN {run_env} {spec.python} -m venv {venv} && "
        f"{run_env} {py} -m pip install -r {SECRETS_IN_STAGE}/server-requirements.txt && "
        f"{py} -c \"import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()['purelib'], "
        f"'{SERVER_PACKAGE}.pth').write_text('{SERVER_ROOT}\\n')\"",
    ]
    user_reqs = requirements_text(spec.pip_requirements)
    if user_reqs:
        lines += [
            f"# requirements {requirements_digest(spec.pip_requirements)}",
            f"COPY {CTX_USER_REQS} {SECRETS_IN_STAGE}/requirements.txt",
            f"RUN {run_env} {py} -m pip install -r {SECRETS_IN_STAGE}/requirements.txt",
        ]
    if not spec.keep_pip:
        lines.append(f"RUN {py} -m pip uninstall -y -q pip")
    lines.append('LABEL nbdeploy.stage="deps"')  # finds this stage's leftover images (build cache)

    # final: nothing from deps but the venv
    static_env = {
        "PATH": f"{venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "VIRTUAL_ENV": venv,
        "PYTHONUNBUFFERED": "1",
        "AML_APP_ROOT": APP_ROOT,
        "HOME": f"/home/{spec.user}",
    }
    if spec.gpu:
        static_env |= {"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
    static_env |= dict(spec.env)
    app_env = {"AZUREML_ENTRY_SCRIPT": entry}
    if spec.source_dir:
        app_env["AZUREML_SOURCE_DIRECTORY"] = _rel(spec.source_dir, "source_dir")
    argv = ["python", "-m", SERVER_PACKAGE, "--host", "0.0.0.0", "--port", str(spec.port),
            "--entry-script", f"{APP_ROOT}/{entry}", "--model-dir", f"{APP_ROOT}/{model_dir}".rstrip("/")]
    if spec.source_dir:
        argv += ["--source-dir", f"{APP_ROOT}/{_rel(spec.source_dir, 'source_dir')}"]
    cmd = json.dumps(argv)
    lines += [
        "",
        "FROM runtime",
        f"RUN getent passwd {spec.uid} >/dev/null || useradd --uid {spec.uid} --user-group --create-home "
        f"--home-dir /home/{spec.user} --shell /usr/sbin/nologin {spec.user}",
        f"ENV {_pairs(static_env, _ENV_KEY, 'environment variable')}",
        f"WORKDIR {APP_ROOT}",
        f"EXPOSE {spec.port}",
        _healthcheck(spec),
        f"USER {spec.uid}:{spec.uid}",
        f"COPY --from=deps {venv} {venv}",
        f"COPY {CTX_SERVER}/ {SERVER_ROOT}/{SERVER_PACKAGE}/",
        f"ENV {_pairs(app_env, _ENV_KEY, 'environment variable')}",
        f"COPY {CTX_APP}/ {APP_ROOT}/",
        f"ENV AZUREML_MODEL_DIR={quote(f'{APP_ROOT}/{model_dir}'.rstrip('/'), 'model_dir')}",
    ]
    if spec.has_models:
        lines.append(f"COPY {CTX_MODELS}/ {APP_ROOT}/azureml-models/")
    lines.append(f"CMD {cmd}")
    labels = dict(spec.labels)
    if user_reqs:
        labels.setdefault("nbdeploy.requirements", requirements_digest(spec.pip_requirements))
    if labels:
        lines.append(f"LABEL {_pairs(labels, _LABEL_KEY, 'label')}")
    return "\n".join(lines) + "\n"
