"""The process target's isolated mode: a virtual environment built from the Environment, cached by digest."""

from __future__ import annotations

import pytest

import nbdeploy
from nbdeploy.errors import BuildError
from nbdeploy.specs import ProcessDeploymentConfig

from .conftest import write_script

pytestmark = pytest.mark.slow


def test_isolated_environment_runs_the_server_alone(workspace, model, tmp_path):
    script = write_script(tmp_path, """
        import sys
        import six  # installed only in the isolated environment
        def init():
            pass
        def run(raw):
            return {"prefix": sys.prefix, "six": six.__version__, "nbdeploy_importable": _importable("nbdeploy")}
        def _importable(name):
            import importlib.util
            return importlib.util.find_spec(name) is not None
    """, "iso.py")
    env = nbdeploy.Environment.from_yaml("pip: [six==1.16.0]\n", name="iso-env")
    ic = nbdeploy.InferenceConfig(str(script), environment=env)
    svc = nbdeploy.deploy("isolated", [model], ic, ProcessDeploymentConfig(isolated=True), workspace=workspace)
    svc.wait_for_deployment(timeout_sec=300)
    answer = svc.run("{}")
    assert answer["six"] == "1.16.0"
    assert str(workspace.cache_dir) in answer["prefix"]
    assert answer["nbdeploy_importable"] is False  # the server travels alone, as in images
    venvs = list((workspace.cache_dir / "venvs").iterdir())
    svc.update()  # same environment digest: the venv is reused, not rebuilt
    assert list((workspace.cache_dir / "venvs").iterdir()) == venvs


def test_isolated_environment_with_a_missing_package_names_it(workspace, model, score_py):
    env = nbdeploy.Environment.from_yaml("pip: [nbdeploy-no-such-package-xyz==9.9]\n", name="broken-env")
    ic = nbdeploy.InferenceConfig(str(score_py), environment=env)
    with pytest.raises(BuildError, match="nbdeploy-no-such-package-xyz"):
        nbdeploy.deploy("iso-broken", [model], ic, ProcessDeploymentConfig(isolated=True), workspace=workspace)
    assert nbdeploy.Webservice.list(workspace) == []
