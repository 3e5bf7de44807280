"""Isolated environments built by uv from the environment's lock (real uv, real package index)."""

from __future__ import annotations

import subprocess

import pytest

import nbdeploy
from nbdeploy.builders.venv import isolated_python
from nbdeploy.errors import BuildError
from nbdeploy.specs import Environment


@pytest.fixture
def workspace(tmp_path):
    return nbdeploy.Workspace.create(tmp_path / "ws")


def test_venv_is_built_from_the_lock_once_and_runs_the_server(workspace, tmp_path):
    env = Environment.from_dict({"name": "e", "pip": ["six"]})
    log_path = tmp_path / "build.log"
    python, module, path = isolated_python(workspace, env, log_path)
    check = subprocess.run([python, "-c", f"import six, uvicorn, {module}; print({module}.__file__)"],
                           env={"PYTHONPATH": path}, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(path)
    log_text = log_path.read_text()
    assert "locked " in log_text and "from lock" in log_text
    marker = (workspace.cache_dir / "venvs").glob("*/.complete")
    stamp = next(marker).stat().st_mtime_ns
    assert isolated_python(workspace, Environment.from_dict({"name": "other-name", "pip": ["six"]}), log_path)[0] == python
    assert next((workspace.cache_dir / "venvs").glob("*/.complete")).stat().st_mtime_ns == stamp
    assert len(list((workspace.cache_dir / "venvs").iterdir())) == 1  # no staging folder left behind


def test_a_missing_package_is_named_in_one_line(workspace, tmp_path):
    env = Environment.from_dict({"name": "e", "pip": ["nbdeploy-no-such-package-xyz==0.0.1"]})
    with pytest.raises(BuildError) as info:
        isolated_python(workspace, env, tmp_path / "build.log")
    reason = info.value.reason
    assert "\n" not in reason and "'nbdeploy-no-such-package-xyz==0.0.1'" in reason
    assert reason.startswith("Building the isolated environment failed:")
    assert "nbdeploy-no-such-package-xyz" in (tmp_path / "build.log").read_text()
    assert not (workspace.cache_dir / "venvs").exists() or not any((workspace.cache_dir / "venvs").iterdir())
