"""Environment locks: an Environment's pip packages plus the scoring server's pins, resolved once with uv.

A lock is the output of ``uv pip compile --generate-hashes --python-version X.Y``: every distribution at an
exact version with the hashes of its files. It is stored under ``<cache>/locks/<key>.txt`` (plus a small
``<key>.json``), where the key digests everything that decides the resolution (the requirements, the
index settings as written, the Python version), so every later build of that environment, an isolated
venv or an image's dependency stage, installs the same files without resolving again.

Index settings keep pip's meaning (index URL, extra index URLs, trusted hosts, extra CA certificates) and
never reach a command line: URLs go to uv through ``UV_DEFAULT_INDEX``/``UV_EXTRA_INDEX_URL``, trusted
hosts through ``UV_INSECURE_HOST``, CA certificates through ``SSL_CERT_FILE`` (a bundle of the host's CAs
plus the environment's). ``${VAR}`` in an index URL is expanded from the process environment at build
time, so a stored environment holds the reference, not the password.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nbdeploy.errors import BuildError, InvalidSpec
from nbdeploy.server import REQUIREMENTS as SERVER_REQUIREMENTS

if TYPE_CHECKING:
    from nbdeploy.specs import Environment
    from nbdeploy.workspace import Workspace

Progress = Callable[[str], None]

LOCK_FORMAT = "1"
"""Bump when the way locks are made changes, so stored locks are remade."""
HOST_CA_CANDIDATES = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
DEFAULT_HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
PIP_TO_UV = (
    ("PIP_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL"),
    ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL", None),
    ("PIP_TRUSTED_HOST", "UV_INSECURE_HOST", None),
)
"""Host variables pip reads and the uv variables they become (uv reads neither pip's variables nor pip.conf)."""
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.M)
_PY_VERSION = re.compile(r"(\d+)\.(\d+)")
_NOT_FOUND = re.compile(r"Because (\S+?) was not found in the package registry")
_NO_VERSION = re.compile(r"there (?:is|are) no versions? of (\S+?)(?: and|,|\s)")


@dataclass(frozen=True)
class IndexOptions:
    """pip's package-index settings, as written by the user (``${VAR}`` references unexpanded)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    ca_certificates: tuple[str, ...] = ()
    """Paths of extra PEM CA bundles trusted while downloading packages."""

    @classmethod
    def of(cls, environment: Environment | None) -> IndexOptions:
        options = getattr(environment, "pip_options", None)
        if options is None:
            return cls()
        return cls(
            options.index_url or None,
            tuple(options.extra_index_urls or ()),
            tuple(options.trusted_hosts or ()),
            tuple(options.ca_certificates or ()),
        )

    def uv_environment(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Variables that pass these settings to uv (URLs expanded; secrets stay off command lines)."""
        env: dict[str, str] = {}
        if self.index_url:
            env["UV_DEFAULT_INDEX"] = expand_references(self.index_url, "pip_index_url", environ)
        if self.extra_index_urls:
            env["UV_EXTRA_INDEX_URL"] = " ".join(
                expand_references(u, "pip_extra_index_urls", environ) for u in self.extra_index_urls
            )
        if self.trusted_hosts:
            env["UV_INSECURE_HOST"] = " ".join(self.trusted_hosts)
        return env


@dataclass(frozen=True)
class EnvironmentLock:
    """An environment resolved to exact versions with hashes (a requirements file ``uv pip sync`` installs)."""

    text: str
    """The lock file: ``name==version --hash=sha256:...`` for every distribution, the server's included."""
    digest: str
    """sha256 of :attr:`text`: what builds are keyed by."""
    key: str
    """Digest of the inputs it was resolved from (requirements, index settings as written, Python version)."""
    python_version: str
    packages: tuple[str, ...] = field(default=())
    """``name==version`` of every locked distribution, sorted, for showing to the user."""
    path: Path | None = None


def expand_references(value: str, what: str, environ: Mapping[str, str] | None = None) -> str:
    """``value`` with each ``${VAR}`` replaced from ``environ`` (default: this process's environment)."""
    env = os.environ if environ is None else environ

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise InvalidSpec(what, f"refers to ${{{name}}}, which is not set in this environment; export {name}=...")
        return env[name]

    return _VAR.sub(repl, value)


def python_version_of(environment: Environment | None, interpreter: str | None = None) -> str:
    """``X.Y``: ``interpreter`` (the version that will run it), else the environment's, else this interpreter's."""
    declared = getattr(environment, "python_version", None) if environment is not None else None
    for candidate in (interpreter, declared):
        match = _PY_VERSION.search(str(candidate or ""))
        if match:
            return f"{match.group(1)}.{match.group(2)}"
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def requirements_of(environment: Environment | None) -> list[str]:
    """The scoring server's pinned requirements, then the environment's pip packages."""
    user = list(getattr(environment, "pip_packages", None) or []) if environment is not None else []
    return list(SERVER_REQUIREMENTS) + [
        line.strip() for line in user if line.strip() and not line.strip().startswith("#")
    ]


def lock_key(requirements: Sequence[str], options: IndexOptions, python_version: str) -> str:
    doc = {
        "format": LOCK_FORMAT,
        "requirements": list(requirements),
        "python": python_version,
        "index_url": options.index_url,
        "extra_index_urls": list(options.extra_index_urls),
        "trusted_hosts": list(options.trusted_hosts),
        "ca": [_file_digest(p) for p in options.ca_certificates],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def lock_environment(
    workspace: Workspace,
    environment: Environment | None,
    progress: Progress | None = None,
    python_version: str | None = None,
    refresh: bool = False,
) -> EnvironmentLock:
    """The lock of ``environment`` (``None``: the scoring server alone), resolving it the first time only.

    ``python_version`` (``X.Y``) is the interpreter the lock is for (the base image's, the venv's); without
    it, the environment's declared Python, else the running interpreter's. ``refresh`` resolves again.
    """
    return lock_requirements(
        requirements_of(environment),
        IndexOptions.of(environment),
        python_version_of(environment, python_version),
        workspace.cache_dir / "locks",
        progress,
        refresh=refresh,
    )


def lock_requirements(
    requirements: Sequence[str],
    options: IndexOptions,
    python_version: str,
    folder: Path,
    progress: Progress | None = None,
    refresh: bool = False,
) -> EnvironmentLock:
    """Resolve ``requirements`` with uv into ``folder/<key>.txt``, or read the lock stored there."""
    key = lock_key(requirements, options, python_version)
    path = folder / f"{key[:32]}.txt"
    if not refresh and path.is_file():
        return _lock_from_text(path.read_text(), key, python_version, path)
    folder.mkdir(parents=True, exist_ok=True)
    if progress:
        progress(f"resolving the environment (Python {python_version}): {' '.join(requirements)}")
    with tempfile.TemporaryDirectory(prefix=".lock-", dir=folder) as tmp:
        source = Path(tmp) / "requirements.in"
        source.write_text("".join(line + "\n" for line in requirements))
        output = Path(tmp) / "lock.txt"
        env = uv_environment(options, Path(tmp) / "ca.pem")
        argv = [
            uv_binary(),
            "pip",
            "compile",
            "--generate-hashes",
            "--no-header",
            "--quiet",
            "--python-version",
            python_version,
            source.name,
            "-o",
            output.name,
        ]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tmp)  # relative: stable "# via"
        if result.returncode != 0:
            lines = (result.stdout + result.stderr).strip().splitlines()
            raise BuildError(
                f"Resolving the environment failed: {explain_resolution_failure(lines, requirements)}",
                lines,
                step="uv pip compile",
            )
        text = output.read_text()
    staging = path.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text(text)
    os.replace(staging, path)
    lock = _lock_from_text(text, key, python_version, path)
    meta = {
        "key": key,
        "digest": lock.digest,
        "python": python_version,
        "requirements": list(requirements),
        "packages": list(lock.packages),
        "format": LOCK_FORMAT,
    }
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    if progress:
        progress(f"locked {len(lock.packages)} packages: {' '.join(lock.packages)}")
    return lock


def explain_resolution_failure(lines: Sequence[str], requirements: Sequence[str]) -> str:
    """One line: the package that could not be found, else uv's own first error line."""
    text = "\n".join(lines)
    for regex in (_NOT_FOUND, _NO_VERSION):
        found = regex.search(text)
        if found:
            name = found.group(1).rstrip(",.")
            wanted = next((r for r in requirements if _name_of(r) == _name_of(name)), name)
            return f"could not find the package {wanted!r} (check its name and version, and the package index)"
    meaningful = [line.strip() for line in lines if line.strip()]
    causes = [line for line in meaningful if line.startswith(("cause:", "Caused by:"))]
    first = (causes or meaningful or ["uv pip compile failed"])[-1 if causes else 0]
    return first.removeprefix("cause:").strip()


def uv_binary() -> str:
    """The uv executable of the PyPI package ``uv`` (a core dependency)."""
    try:
        import uv
    except ModuleNotFoundError as exc:  # pragma: no cover - uv is a core dependency
        raise BuildError("Installing environments needs the Python package 'uv': pip install uv") from exc
    return str(uv.find_uv_bin())


def uv_environment(options: IndexOptions, ca_path: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment for a uv call: index settings as variables and a CA bundle in ``SSL_CERT_FILE``.

    The bundle is written to ``ca_path`` (host CAs + the environment's) when the environment adds CAs;
    otherwise ``SSL_CERT_FILE`` points to the host's bundle, so a TLS-inspecting proxy's CA is trusted.
    """
    env = dict(os.environ if base is None else base)
    settings = options.uv_environment(env)
    if "UV_DEFAULT_INDEX" in settings:
        env.pop("UV_INDEX_URL", None)  # the environment's index replaces a host-wide one
    for (
        pip_var,
        uv_var,
        alias,
    ) in PIP_TO_UV:  # the host's pip settings, where neither the environment nor uv's own set one
        if env.get(pip_var) and uv_var not in settings and uv_var not in env and (alias is None or alias not in env):
            settings[uv_var] = env[pip_var]
    env.update(settings)
    host_ca = host_ca_bundle(env)
    if options.ca_certificates:
        ca_path.write_text(combined_ca_bundle(host_ca, options.ca_certificates))
        env["SSL_CERT_FILE"] = str(ca_path)
    elif host_ca is not None:
        env["SSL_CERT_FILE"] = str(host_ca)
    env["UV_NO_PROGRESS"] = "1"
    return env


def host_ca_bundle(environ: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    for var in HOST_CA_CANDIDATES:
        if env.get(var) and os.path.isfile(env[var]):
            return Path(env[var])
    return Path(DEFAULT_HOST_CA) if os.path.isfile(DEFAULT_HOST_CA) else None


def combined_ca_bundle(host_ca: Path | None, extra: Sequence[str]) -> str:
    """PEM text: the host's CA bundle followed by each extra CA file."""
    parts = [host_ca.read_text()] if host_ca is not None else []
    for ca in extra:
        if not Path(ca).is_file():
            raise InvalidSpec("ca_certificates", f"{ca} does not exist")
        parts.append(Path(ca).read_text())
    return "\n".join(part.rstrip("\n") + "\n" for part in parts)


def _lock_from_text(text: str, key: str, python_version: str, path: Path | None) -> EnvironmentLock:
    packages = tuple(sorted(f"{m.group(1).lower()}=={m.group(2)}" for m in _PINNED.finditer(text)))
    return EnvironmentLock(text, hashlib.sha256(text.encode()).hexdigest(), key, python_version, packages, path)


def _name_of(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


def _file_digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return f"missing:{path}"


def describe_lock(lock: EnvironmentLock, shown: int = 6) -> str:
    """One line for progress output: how many packages are locked, and the first few (``nbdeploy env lock`` shows all)."""
    preview = ", ".join(lock.packages[:shown]) + (", ..." if len(lock.packages) > shown else "")
    return f"environment locked for Python {lock.python_version}: {len(lock.packages)} packages ({preview}); lock {lock.digest[:12]}"
