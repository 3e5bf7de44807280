"""The v1 spelling (``AciWebservice.deploy_configuration`` + ``Model.deploy`` + ``service.run``, only imports
changed) and the CLI surface of ``--target aci``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

# was: from azureml.core import Workspace / ... / from azureml.core.webservice import AciWebservice, Webservice
from nbdeploy.compat.azureml.core import Workspace
from nbdeploy.compat.azureml.core.environment import Environment
from nbdeploy.compat.azureml.core.model import InferenceConfig, Model
from nbdeploy.compat.azureml.core.webservice import AciWebservice, Webservice

from .conftest import BASE_IMAGE

pytestmark = pytest.mark.remote

SCORE = textwrap.dedent(
    """
    import json
    from azureml.core.model import Model

    def init():
        global w
        with open(Model.get_model_path('weights.json')) as f:
            w = json.load(f)['w']

    def run(raw_data):
        return [w * x for x in json.loads(raw_data)['data']]
    """
)


def test_v1_aci_cell_runs_with_only_imports_changed(tmp_path, monkeypatch, aci_env, services, local, remote):
    from nbdeploy.remote import EngineConnection, EngineStore

    monkeypatch.chdir(tmp_path)
    ws = Workspace.create(tmp_path / "workspace")
    ws.write_config(tmp_path)
    # the team saved its container host once (`nbdeploy host add lab ...`)
    EngineStore("host", tmp_path / "workspace").add("lab", EngineConnection.from_env(aci_env))
    (tmp_path / "weights.json").write_text(json.dumps({"w": 4}))
    (tmp_path / "score.py").write_text(SCORE)
    name = services.name()

    # -- the v1 cell --------------------------------------------------------------------------------
    ws = Workspace.from_config()
    model = Model.register(model_path="weights.json", model_name="weights.json", workspace=ws)
    env = Environment("aci-env")
    env.docker.base_image = BASE_IMAGE
    inference_config = InferenceConfig(entry_script="score.py", environment=env)
    aciconfig = AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1, tags={"area": "test"},
                                                   description="v1 cell on the aci target")
    service = Model.deploy(ws, name, [model], inference_config, aciconfig)
    service.wait_for_deployment(show_output=True)
    assert service.state == "Healthy"
    assert service.run(input_data=json.dumps({"data": [1, 2]})) == [4, 8]
    # -----------------------------------------------------------------------------------------------
    assert isinstance(Webservice(ws, name), AciWebservice)
    assert service.scoring_uri.startswith("http://10.231.1.2:")
    assert service.auth_enabled and len(service.get_keys()) == 2
    service.update(description="updated by v1 update()")
    assert service.run(input_data=json.dumps({"data": [1]})) == [4]
    service.delete()
    assert [c.name for c in remote.containers.list(all=True, filters={"label": f"nbdeploy.service={name}"})] == []


def test_v1_parameters_nbdeploy_cannot_honour_are_refused_by_name():
    from nbdeploy.compat.azureml.exceptions import WebserviceException
    from nbdeploy.errors import InvalidSpec

    with pytest.raises(InvalidSpec, match="enable_app_insights"):
        AciWebservice.deploy_configuration(enable_app_insights=True)
    with pytest.raises(InvalidSpec, match="collect_model_data"):
        AciWebservice.deploy_configuration(collect_model_data=True)
    with pytest.raises(WebserviceException, match="vnet_name"):
        AciWebservice.deploy_configuration(vnet_name="v", subnet_name="s")
    config = AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1, location="westeurope", dns_name_label="svc1")
    assert (config.cpu_cores, config.memory_gb, config.location, config.auth_enabled) == (1, 1, "westeurope", True)


def test_target_help_shows_its_options():
    result = subprocess.run([sys.executable, "-m", "nbdeploy", "service", "deploy", "--target", "aci", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for flag in ("--host-name", "--engine-url", "--cpu", "--memory-gb", "--ssl", "--ssl-cert", "--dns-name-label"):
        assert flag in result.stdout, flag
    assert "--network-mode" not in result.stdout  # the local target's own option


def test_v1_aci_cells_run_with_the_one_added_line(tmp_path, aci_env, services):
    """The same cells in a fresh interpreter, imports untouched (`from azureml.core ...`) after the one added line."""
    from nbdeploy.remote import EngineConnection, EngineStore

    (tmp_path / "weights.json").write_text(json.dumps({"w": 5}))
    (tmp_path / "score.py").write_text(SCORE)
    ws_path = tmp_path / "workspace"
    Workspace.create(ws_path).write_config(tmp_path)
    EngineStore("host", ws_path).add("lab", EngineConnection.from_env(aci_env))  # `nbdeploy host add lab ...`
    name = services.name()
    notebook = textwrap.dedent(f"""
        import nbdeploy.compat.v1  # the one added line
        import json
        import azureml.core
        from azureml.core import Workspace, Environment
        from azureml.core.model import InferenceConfig, Model
        from azureml.core.webservice import AciWebservice, Webservice
        print("SDK version:", azureml.core.VERSION)
        ws = Workspace.from_config()
        model = Model.register(model_path="weights.json", model_name="weights.json", workspace=ws)
        env = Environment("aci-env")
        env.docker.base_image = {BASE_IMAGE!r}
        inference_config = InferenceConfig(entry_script="score.py", environment=env)
        aciconfig = AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1)
        service = Model.deploy(ws, {name!r}, [model], inference_config, aciconfig)
        service.wait_for_deployment(show_output=True)
        print("STATE", service.state, type(Webservice(ws, {name!r})).__name__)
        print("ANSWER", service.run(input_data=json.dumps({{"data": [1, 2]}})))
        service.delete()
    """)
    result = subprocess.run([sys.executable, "-c", notebook], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "STATE Healthy AciWebservice" in result.stdout and "ANSWER [5, 10]" in result.stdout
