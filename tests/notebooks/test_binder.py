"""Binder's steps in a fresh virtual environment: pip install binder/requirements.txt, run binder/postBuild
(which installs nbdeploy from this checkout), then run the quickstart there with papermill. Needs PyPI."""

from __future__ import annotations

import os
import subprocess
import sys
import venv

import pytest

from .conftest import ROOT


@pytest.mark.slow
def test_binder_steps_then_quickstart_under_papermill(tmp_path):
    env_dir = tmp_path / "binder-venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "VIRTUAL_ENV": str(env_dir),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for key in ("NBDEPLOY_WORKSPACE", "NBDEPLOY_WIDGETS", "PYTHONPATH", "JPY_SESSION_NAME"):
        env.pop(key, None)

    def run(*argv: str, cwd=ROOT) -> None:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=1500)
        assert done.returncode == 0, f"{argv} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    run(str(bin_dir / "python"), "-m", "pip", "install", "-q", "-r", "binder/requirements.txt")
    run("bash", "binder/postBuild")
    assert "quickstart.ipynb" in (tmp_path / "jupyter-config" / "jupyter_server_config.py").read_text()
    out = tmp_path / "quickstart.out.ipynb"
    run(str(bin_dir / "python"), "-m", "papermill", "examples/quickstart.ipynb", str(out),
        "-p", "workspace", str(tmp_path / "ws"), "--cwd", str(tmp_path))
    assert "Healthy, scoring at" in out.read_text()
    assert sys.prefix != str(env_dir)
