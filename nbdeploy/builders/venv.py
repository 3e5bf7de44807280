"""Isolated Python environments (the process target's `isolated` mode): a virtual environment per Environment digest.

The scoring server is copied next to it as the top-level package ``nbdeploy_server`` (exactly as images
carry it), so the environment needs only the server's three dependencies plus the user's packages.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from nbdeploy.errors import BuildError
from nbdeploy.server import REQUIREMENTS as SERVER_REQUIREMENTS

if TYPE_CHECKING:
    from nbdeploy.specs import Environment
    from nbdeploy.workspace import Workspace

log = logging.getLogger(__name__)



def server_package_dir() -> Path:
    """The folder of the scoring server package inside this installation."""
    import nbdeploy.server

    return Path(nbdeploy.server.__file__).parent


def copy_server(dest_parent: Path, name: str = "nbdeploy_server") -> Path:
    """Copy the scoring server into ``dest_parent/name`` (without caches); returns that folder."""
    dest = dest_parent / name
    shutil.copytree(server_package_dir(), dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
    return dest


def isolated_python(workspace: Workspace, environment: Environment | None, log_path: Path) -> tuple[str, str, str]:
    """(python executable, server module, PYTHONPATH entry) for ``environment``, building it once."""
    server_hash = _tree_hash(server_package_dir())
    server_root = workspace.cache_dir / "server" / server_hash[:16]
    target = server_root / "nbdeploy_server"
    if not (target / "__main__.py").is_file():
        server_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=server_root))
        copy_server(staging)
        try:
            os.rename(staging / "nbdeploy_server", target)
        except OSError:  # a concurrent copy won
            pass
        shutil.rmtree(staging, ignore_errors=True)
    digest = environment.digest() if environment is not None else "default"
    venv = workspace.cache_dir / "venvs" / digest[:24]
    python = venv / "bin" / "python"
    if not (venv / ".complete").is_file():
        _build_venv(venv, environment, log_path)
    return str(python), "nbdeploy_server", str(server_root)


def _build_venv(venv: Path, environment: Environment | None, log_path: Path) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    requirements = list(SERVER_REQUIREMENTS) + (environment.pip_packages if environment else [])
    pip_args: list[str] = []
    env = dict(os.environ)
    if environment is not None:
        options = environment.pip_options
        if options.index_url:
            pip_args += ["--index-url", options.index_url]
        for url in options.extra_index_urls:
            pip_args += ["--extra-index-url", url]
        for host in options.trusted_hosts:
            pip_args += ["--trusted-host", host]
        if options.ca_certificates:
            bundle = venv.parent / f"{venv.name}-ca.pem"
            base = Path(os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
            parts = [base.read_text()] if base.is_file() else []
            parts += [Path(ca).read_text() for ca in options.ca_certificates]
            bundle.write_text("\n".join(parts))
            env["PIP_CERT"] = str(bundle)
    with open(log_path, "ab") as out:
        out.write(f"[nbdeploy] building virtual environment {venv} with: {' '.join(requirements)}\n".encode())
        out.flush()
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", *pip_args, *requirements],
        ]
        for argv in steps:
            result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
            if result.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                log_lines = log_path.read_text(errors="replace").splitlines()[-40:]
                missing = [line for line in log_lines if "No matching distribution found for" in line]
                reason = missing[-1].split("ERROR: ", 1)[-1] if missing else f"{' '.join(argv[:4])} exited with {result.returncode}"
                raise BuildError(f"Building the isolated environment failed: {reason}", log_lines, step=" ".join(argv[2:5]))
    (venv / ".complete").write_text("ok\n")


def _tree_hash(folder: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        sha.update(path.relative_to(folder).as_posix().encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()
