"""Isolated Python environments (the process target's `isolated` mode): a virtual environment per environment lock.

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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from nbdeploy.builders.lock import (
    EnvironmentLock,
    IndexOptions,
    explain_resolution_failure,
    lock_environment,
    uv_binary,
    uv_environment,
)
from nbdeploy.errors import BuildError

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
    shutil.copytree(
        server_package_dir(), dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True
    )
    return dest


def isolated_python(
    workspace: Workspace, environment: Environment | None, log_path: Path, lock: EnvironmentLock | None = None
) -> tuple[str, str, str]:
    """(python executable, server module, PYTHONPATH entry) for ``environment``, building it once.

    The environment is locked first (:func:`~nbdeploy.builders.lock.lock_environment`, once per
    environment) unless ``lock`` is given; the virtual environment is then made by uv from the lock and
    kept under the workspace cache, keyed by the lock's digest and the scoring server's hash.
    """
    server_hash = server_hash_of()
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
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if lock is None:
        lock = _with_log(
            log_path, lambda: lock_environment(workspace, environment, _log_to(log_path), python_version=python_version)
        )
    venv = workspace.cache_dir / "venvs" / hashlib.sha256(f"{lock.digest}\0{server_hash}".encode()).hexdigest()[:24]
    python = venv / "bin" / "python"
    if not (venv / ".complete").is_file():
        _build_venv(venv, lock, IndexOptions.of(environment), log_path)
    return str(python), "nbdeploy_server", str(server_root)


def _build_venv(venv: Path, lock: EnvironmentLock, options: IndexOptions, log_path: Path) -> None:
    """``uv venv`` + ``uv pip sync --require-hashes`` of the lock into a staging folder, renamed into place."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{venv.name}-", dir=venv.parent))
    lock_file = staging.with_suffix(".lock.txt")
    lock_file.write_text(lock.text)
    env = uv_environment(options, staging.with_suffix(".ca.pem"))
    interpreter = (
        sys.executable
        if lock.python_version == f"{sys.version_info.major}.{sys.version_info.minor}"
        else lock.python_version
    )
    uv = uv_binary()
    sync = [
        uv,
        "pip",
        "sync",
        "--quiet",
        "--require-hashes",
        "--python",
        str(staging / "bin" / "python"),
        str(lock_file),
    ]
    steps = [
        [uv, "venv", "--quiet", "--relocatable", "--python", interpreter, "--no-python-downloads", str(staging)],
        sync,
    ]
    try:
        with open(log_path, "ab") as out:
            out.write(
                f"[nbdeploy] building virtual environment {venv} from lock {lock.digest[:12]}: "
                f"{' '.join(lock.packages)}\n".encode()
            )
            out.flush()
            for argv in steps:
                if argv is sync and subprocess.run([*sync, "--offline"], env=env, capture_output=True).returncode == 0:
                    break  # every locked file was in uv's cache: no index request at all
                result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
                if result.returncode != 0:
                    log_lines = log_path.read_text(errors="replace").splitlines()[-40:]
                    reason = explain_resolution_failure(log_lines, list(lock.packages))
                    raise BuildError(
                        f"Building the isolated environment failed: {reason}", log_lines, step=" ".join(argv[1:3])
                    )
        (staging / ".complete").write_text(lock.digest + "\n")
        _relocate(staging, venv)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        lock_file.unlink(missing_ok=True)
        staging.with_suffix(".ca.pem").unlink(missing_ok=True)


def _relocate(staging: Path, venv: Path) -> None:
    """Move the built (relocatable) venv to its final folder."""
    shutil.rmtree(venv, ignore_errors=True)
    try:
        os.rename(staging, venv)
    except OSError:
        if not (venv / ".complete").is_file():  # not a concurrent twin: a real failure
            raise


def _log_to(log_path: Path) -> Callable[[str], None]:
    def write(line: str) -> None:
        with open(log_path, "a") as out:
            out.write(f"[nbdeploy] {line}\n")

    return write


def _with_log(log_path: Path, make: Callable[[], EnvironmentLock]) -> EnvironmentLock:
    try:
        return make()
    except BuildError as exc:
        with open(log_path, "a") as out:
            out.write("\n".join(exc.build_log) + "\n")
        raise BuildError(
            f"Building the isolated environment failed: {exc.reason.split(': ', 1)[-1]}", exc.build_log, step=exc.step
        ) from None


def server_hash_of() -> str:
    """sha256 of the scoring server package's source files (what images and venvs carry)."""
    return _tree_hash(server_package_dir())


def _tree_hash(folder: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        sha.update(path.relative_to(folder).as_posix().encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()
