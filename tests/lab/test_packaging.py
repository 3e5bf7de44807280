"""The wheel's lab pieces are wired: the prebuilt extension and the server-extension config land where
JupyterLab and jupyter_server look, and the build output stays out of git."""

from __future__ import annotations

import json
import subprocess

import tomllib

from .conftest import LABEXT_OUT, LABEXT_SRC, ROOT


def test_shared_data_installs_the_prebuilt_extension_and_enables_the_server_extension() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shared = project["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]
    assert shared["nbdeploy/labextension"] == "share/jupyter/labextensions/nbdeploy"
    assert shared["jupyter-config/jupyter_server_config.d"] == "etc/jupyter/jupyter_server_config.d"
    config = json.loads((ROOT / "jupyter-config/jupyter_server_config.d/nbdeploy.json").read_text())
    assert config == {"ServerApp": {"jpserver_extensions": {"nbdeploy.jupyter": True}}}
    from nbdeploy.jupyter import _jupyter_server_extension_points

    assert _jupyter_server_extension_points() == [{"module": "nbdeploy.jupyter"}]


def test_the_lab_extension_builds_into_the_python_package_under_its_python_name() -> None:
    package = json.loads((LABEXT_SRC / "package.json").read_text())
    assert package["name"] == "nbdeploy"  # the folder name under share/jupyter/labextensions
    assert (LABEXT_SRC / package["jupyterlab"]["outputDir"]).resolve() == LABEXT_OUT
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert package["version"] == project["project"]["version"]
    assert "lab" in project["project"]["optional-dependencies"]
    hook = project["tool"]["hatch"]["build"]["hooks"]["jupyter-builder"]
    assert "nbdeploy/labextension/package.json" in hook["ensured-targets"]


def test_build_outputs_are_ignored_by_git() -> None:
    for path in ("nbdeploy/labextension/package.json", "labextension/node_modules/x", "labextension/lib/index.js"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], check=False, cwd=ROOT)
        assert ignored.returncode == 0, f"{path} is not ignored"
