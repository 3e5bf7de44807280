"""The opt-in ``azureml`` alias: a meta path finder, off unless asked, never shadowing a real Azure ML SDK."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nbdeploy.errors import NbdeployError

from .conftest import fake_azureml_distribution

ROOT = Path(__file__).resolve().parents[3]


def _python(code: str, extra_path: list[str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*(extra_path or []), str(ROOT)])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


def test_one_line_makes_every_v1_module_importable() -> None:
    import nbdeploy.compat.v1 as v1

    v1.install()
    import azureml
    import azureml.core
    import azureml.core.compute
    import azureml.core.compute_target
    import azureml.core.conda_dependencies
    import azureml.core.environment
    import azureml.core.image
    import azureml.core.model
    import azureml.core.webservice
    import azureml.core.workspace
    import azureml.exceptions
    from azureml.contrib.services.aml_request import AMLRequest, rawhttp
    from azureml.contrib.services.aml_response import AMLResponse

    import nbdeploy.compat.azureml.core as compat_core
    import nbdeploy.server.request

    assert azureml.core is compat_core  # the same module object, not a second copy
    assert azureml.core.VERSION.startswith("1.61.0+nbdeploy")
    assert azureml.core.model.Model is compat_core.Model
    assert azureml.core.webservice.LocalWebservice.deploy_configuration(port=1234).port == 1234
    assert azureml.core.compute.AksCompute.type == "AKS"
    assert azureml.core.compute_target.ComputeTargetException is azureml.exceptions.ComputeTargetException
    assert rawhttp is nbdeploy.server.request.rawhttp and AMLRequest and AMLResponse
    with pytest.raises(ModuleNotFoundError, match="azureml.core.nothing"):
        importlib.import_module("azureml.core.nothing")


def test_uninstall_removes_the_alias() -> None:
    import nbdeploy.compat.v1 as v1

    v1.install()
    import azureml.core  # noqa: F401

    v1.uninstall()
    assert not v1.installed() and "azureml" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("azureml.core")


def test_off_unless_asked() -> None:
    result = _python("""
        import nbdeploy, nbdeploy.compat.azureml, nbdeploy.compat.azureml.core
        try:
            import azureml
        except ModuleNotFoundError:
            print("not importable")
    """)
    assert result.stdout.strip() == "not importable", result.stderr


def test_first_cell_route_in_a_fresh_interpreter() -> None:
    result = _python("""
        import nbdeploy.compat.v1
        import azureml.core
        from azureml.core import Workspace, Model, Environment
        from azureml.core.webservice import Webservice, LocalWebservice
        print(azureml.core.VERSION)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1.61.0+nbdeploy")


def test_import_change_route_binds_azureml_and_has_version() -> None:
    result = _python("""
        from nbdeploy.compat import azureml
        import nbdeploy.compat.azureml.core
        print(azureml.core.VERSION, nbdeploy.compat.azureml.core.VERSION)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == result.stdout.split()[1]


def test_refuses_when_a_real_azureml_is_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = fake_azureml_distribution(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    import nbdeploy.compat.v1 as v1

    v1.uninstall()
    with pytest.raises(v1.AzuremlInstalled) as info:
        v1.install()
    assert isinstance(info.value, ImportError) and isinstance(info.value, NbdeployError)
    message = str(info.value)
    assert str(site / "azureml") in message and "azureml-core" in message and "nbdeploy.compat.azureml.core" in message
    assert not v1.installed()


def test_never_shadows_a_real_azureml_that_appears_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbdeploy.compat.v1 as v1

    v1.install()
    site = fake_azureml_distribution(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))  # e.g. pip install azureml-core in the running kernel
    with pytest.raises(v1.AzuremlInstalled):
        importlib.import_module("azureml")


def test_refusal_in_a_fresh_interpreter_with_real_import_machinery(tmp_path: Path) -> None:
    site = fake_azureml_distribution(tmp_path / "site")
    result = _python("""
        try:
            import nbdeploy.compat.v1
        except ImportError as exc:
            print(type(exc).__name__, "|", exc)
        import azureml
        print("real" if getattr(azureml, "REAL", False) else "alias")
    """, extra_path=[str(site)])
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.strip().splitlines()
    assert first.startswith("AzuremlInstalled | The Azure ML SDK is installed here") and "azureml-core" in first
    assert second == "real"  # the real package is untouched


def test_refuses_when_a_real_azureml_is_imported_already(tmp_path: Path) -> None:
    site = fake_azureml_distribution(tmp_path / "site")
    result = _python("""
        import sys
        import azureml
        sys.path.remove(sys.path[1])  # gone from the path, but imported
        try:
            import nbdeploy.compat.v1
        except ImportError as exc:
            print(type(exc).__name__)
    """, extra_path=[str(site)])
    assert result.stdout.strip() == "AzuremlInstalled", result.stderr


def test_entry_script_shims_keep_working_beside_the_alias(tmp_path: Path) -> None:
    """The scoring server's shims in a process where the alias is on: scripts get the same names."""
    (tmp_path / "azureml-models" / "m" / "3").mkdir(parents=True)
    (tmp_path / "azureml-models" / "m" / "3" / "model.pkl").write_text("x")
    result = _python(f"""
        import os, json
        os.environ["AML_APP_ROOT"] = {str(tmp_path)!r}
        import nbdeploy.compat.v1
        from nbdeploy.server import shims
        shims.register()
        from azureml.contrib.services.aml_request import rawhttp
        from azureml.core.model import Model
        import nbdeploy.server.request
        print(json.dumps([rawhttp is nbdeploy.server.request.rawhttp, Model.get_model_path("m")]))
    """)
    assert result.returncode == 0, result.stderr
    same, path = json.loads(result.stdout.strip().splitlines()[-1])
    assert same and path == str(tmp_path / "azureml-models" / "m" / "3" / "model.pkl")


def test_load_ext_nbdeploy_v1_installs_the_alias_and_the_magics() -> None:
    result = _python("""
        from IPython.testing.globalipapp import get_ipython
        ip = get_ipython()
        ip.run_line_magic("load_ext", "nbdeploy.v1")
        ip.run_cell("import azureml.core; v = azureml.core.VERSION", store_history=False).raise_error()
        print(ip.user_ns["v"], "deploy" in ip.magics_manager.magics["line"])
    """)
    assert result.returncode == 0, result.stderr
    version, magics = result.stdout.strip().splitlines()[-1].split()
    assert version.startswith("1.61.0+nbdeploy") and magics == "True"
