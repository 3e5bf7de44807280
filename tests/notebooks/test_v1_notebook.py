"""A v1-style deploy notebook (written here, not copied from a sample) runs under papermill on nbdeploy.

Two routes, same cells: the one added first line ``import nbdeploy.compat.v1`` with every ``azureml`` import
untouched, and the import-change route (``azureml.`` -> ``nbdeploy.compat.azureml.``). No Docker engine answers
(``DOCKER_HOST`` points nowhere), so LocalWebservice runs on the process target and says so once, and
``Model.package`` says clearly that building needs Docker. The config.json is v1's (subscription, resource group,
name); the nbdeploy workspace behind it is the default one (``NBDEPLOY_WORKSPACE``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import require

CELLS = [
    # 0: the one added line
    "import nbdeploy.compat.v1",
    # 1: every v1 sample starts like this
    "import azureml.core\n"
    "print('SDK version:', azureml.core.VERSION)",
    "from azureml.core import Workspace\n"
    "ws = Workspace.from_config()\n"
    "print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep='\\n')",
    # register two models (multi-model sample shape)
    "import joblib, json, os\n"
    "from sklearn.datasets import load_diabetes\n"
    "from sklearn.linear_model import Ridge, Lasso\n"
    "from azureml.core.model import Model\n"
    "X, y = load_diabetes(return_X_y=True)\n"
    "joblib.dump(Ridge().fit(X, y), 'first_model.pkl')\n"
    "joblib.dump(Lasso().fit(X, y), 'second_model.pkl')\n"
    "first = Model.register(workspace=ws, model_path='first_model.pkl', model_name='my_first_model')\n"
    "second = Model.register(ws, 'second_model.pkl', 'my_second_model', tags={'area': 'diabetes'})\n"
    "print(first.id, second.id, Model(ws, name='my_second_model').tags)",
    "%%writefile score.py\n"
    "import json\n"
    "import joblib\n"
    "import numpy as np\n"
    "from azureml.core.model import Model\n"
    "\n"
    "def init():\n"
    "    global first, second\n"
    "    first = joblib.load(Model.get_model_path('my_first_model'))\n"
    "    second = joblib.load(Model.get_model_path('my_second_model'))\n"
    "\n"
    "def run(raw_data):\n"
    "    data = np.array(json.loads(raw_data)['data'])\n"
    "    return {'first': first.predict(data).tolist(), 'second': second.predict(data).tolist()}\n",
    "from azureml.core import Environment\n"
    "from azureml.core.conda_dependencies import CondaDependencies\n"
    "from azureml.core.model import InferenceConfig\n"
    "env = Environment('deploy-env')\n"
    "env.python.conda_dependencies = CondaDependencies.create(pip_packages=['azureml-defaults', 'scikit-learn', 'joblib', 'numpy'])\n"
    "inference_config = InferenceConfig(entry_script='score.py', environment=env)",
    # LocalWebservice: no Docker engine answers here, so the process target
    "from azureml.core.webservice import LocalWebservice, Webservice\n"
    "deployment_config = LocalWebservice.deploy_configuration(port=None)\n"
    "service = Model.deploy(ws, 'multi-local', [first, second], inference_config, deployment_config)\n"
    "service.wait_for_deployment(show_output=True)\n"
    "print('state:', service.state)",
    "test_sample = json.dumps({'data': X[:2].tolist()})\n"
    "prediction = service.run(input_data=test_sample)\n"
    "print('prediction:', json.dumps(prediction))",
    "from azureml.exceptions import WebserviceException\n"
    "print('services:', [s.name for s in Webservice.list(ws)])\n"
    "print('class:', type(Webservice(ws, 'multi-local')).__name__)\n"
    "print('log lines:', len(service.get_logs().splitlines()) > 0)\n"
    "try:\n"
    "    Webservice(ws, 'no-such-service')\n"
    "except WebserviceException as e:\n"
    "    print('lookup failed as in v1:', e)",
    # edit the script, reload (no rebuild), then update
    "source = open('score.py').read()\n"
    "open('score.py', 'w').write(source.replace(\"'second': second\", \"'reloaded': True, 'second': second\"))\n"
    "service.reload()\n"
    "print('after reload:', json.dumps(service.run(input_data=test_sample)))",
    "service.update(models=[first, second], inference_config=inference_config)\n"
    "print('after update:', service.state, len(service.revisions()))",
    # profile and package
    "profile = Model.profile(ws, 'diabetes-profile', [first, second], inference_config, input_dataset=[test_sample])\n"
    "profile.wait_for_completion(show_output=True)\n"
    "details = profile.get_details()\n"
    "print('profile:', details['state'], details['totalQueries'], details['latencyPercentile50InMs'] > 0,\n"
    "      details['maxUtilizedMemoryInGB'] is not None and details['maxUtilizedMemoryInGB'] > 0)",
    "try:\n"
    "    package = Model.package(ws, [first, second], inference_config)\n"
    "    package.wait_for_creation(show_output=True)\n"
    "    print('image:', package.location)\n"
    "except WebserviceException as e:\n"
    "    print('package refused:', e)\n"
    "files = Model.package(ws, [first, second], inference_config, generate_dockerfile=True)\n"
    "files.save('./imagefiles')\n"
    "print('dockerfile:', os.path.isfile('./imagefiles/Dockerfile'))",
    # the pre-1.0 image API
    "from azureml.core.image import ContainerImage, Image\n"
    "with open('myenv.yml', 'w') as f:\n"
    "    f.write(CondaDependencies.create(pip_packages=['scikit-learn', 'joblib', 'numpy']).serialize_to_string())\n"
    "image_config = ContainerImage.image_configuration(execution_script='score.py', runtime='python', conda_file='myenv.yml',\n"
    "                                                  description='diabetes image')\n"
    "image = ContainerImage.create(name='diabetes-image', models=[first, second], image_config=image_config, workspace=ws)\n"
    "image.wait_for_creation(show_output=True)\n"
    "print('image state:', image.creation_state, Image(ws, name='diabetes-image').version)\n"
    "from_image = Webservice.deploy_from_image(ws, 'from-image', image, LocalWebservice.deploy_configuration())\n"
    "from_image.wait_for_deployment(show_output=True)\n"
    "print('from image:', sorted(from_image.run(test_sample)))\n"
    "from_image.delete()",
    # compute: lookup, provisioning refused, attach (a kubeconfig context)
    "from azureml.core.compute import ComputeTarget, AksCompute\n"
    "from azureml.core.compute_target import ComputeTargetException\n"
    "try:\n"
    "    aks_target = ComputeTarget(workspace=ws, name='myaks')\n"
    "except ComputeTargetException as e:\n"
    "    print('no cluster yet:', type(e).__name__)\n"
    "    try:\n"
    "        AksCompute.provisioning_configuration(vm_size='Standard_D3_v2')\n"
    "    except ComputeTargetException as refused:\n"
    "        print('provisioning:', refused)\n"
    "    attach_config = AksCompute.attach_configuration(resource_group=ws.resource_group, cluster_name='nbx',\n"
    "                                                    kubeconfig=kubeconfig_path)\n"
    "    aks_target = ComputeTarget.attach(ws, 'myaks', attach_config)\n"
    "print('compute:', type(ComputeTarget(ws, 'myaks')).__name__, list(ws.compute_targets))",
    "service.delete()\n"
    "print('left:', Webservice.list(ws))",
]

KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: nbx
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: nbx, context: {cluster: c, user: u}}]
"""


def _import_changed(source: str) -> str:
    """The import-change route: what a user edits by hand."""
    source = source.replace("import azureml.core\n", "from nbdeploy.compat import azureml\n")
    return re.sub(r"\bfrom azureml\.", "from nbdeploy.compat.azureml.", source)


def _outputs(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            parts.append(text if isinstance(text, str) else "".join(text))
            parts.extend(str(v) for v in out.get("data", {}).values())
            parts.extend(out.get("traceback", []))
    return "\n".join(parts)


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cells: list[str]) -> str:
    require("papermill")
    import nbformat
    import papermill as pm
    from nbformat.v4 import new_code_cell, new_notebook

    from nbdeploy.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws")
    monkeypatch.setenv("NBDEPLOY_WORKSPACE", str(ws.path))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker-here.sock")  # no engine answers
    monkeypatch.delenv("NBDEPLOY_V1_LOCAL_TARGET", raising=False)
    monkeypatch.setenv("NBDEPLOY_WIDGETS", "0")
    (tmp_path / "config.json").write_text(json.dumps(
        {"subscription_id": "0000-1111", "resource_group": "rg-demo", "workspace_name": "ws-demo"}))
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    parameters = new_code_cell(f"kubeconfig_path = {str(tmp_path / 'kubeconfig')!r}", metadata={"tags": ["parameters"]})
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                      cells=[parameters, *[new_code_cell(c) for c in cells]])
    src, out = tmp_path / "v1.ipynb", tmp_path / "v1.out.ipynb"
    nbformat.write(nb, src)
    try:
        pm.execute_notebook(str(src), str(out), cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    finally:
        from nbdeploy.service import Webservice

        for svc in Webservice.list(ws):
            svc.delete()
    return _outputs(nbformat.read(out, as_version=4))


def _check(text: str) -> None:
    assert "SDK version: 1.61.0+nbdeploy" in text
    assert "ws-demo\nrg-demo\nlocal\n0000-1111" in text  # v1 config.json mapped
    assert "my_first_model:1 my_second_model:1 {'area': 'diabetes'}" in text
    assert text.count("LocalWebservice runs on the process target (no container)") == 1  # said once, for two deployments
    assert "azureml-defaults not installed" in text
    assert "state: Healthy" in text and '"first": [' in text.split("prediction:")[1].splitlines()[0]
    assert "services: ['multi-local']" in text and "class: LocalWebservice" in text and "log lines: True" in text
    assert "lookup failed as in v1: No service named 'no-such-service'" in text
    assert '"reloaded": true' in text.split("after reload:")[1].splitlines()[0]
    assert "ignores show_output" not in text and "Warning" not in text  # reload() warns nothing
    assert "after update: Healthy 3" in text
    assert "profile: Succeeded 50 True True" in text
    assert "package refused: Docker is not reachable: " in text and "Building an image needs a Docker engine" in text
    assert "dockerfile: True" in text
    assert "image state: NotBuilt 1" in text and "from image: ['first', 'reloaded', 'second']" in text
    assert "no cluster yet: ComputeTargetNotFound" in text
    assert "provisioning: AksCompute.provisioning_configuration: nbdeploy does not provision clusters" in text
    assert "compute: AksCompute ['myaks']" in text
    assert "left: []" in text


@pytest.mark.slow
def test_v1_notebook_with_the_one_added_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _run(tmp_path, monkeypatch, CELLS)
    print(text)  # shown when an assertion fails
    _check(text)


@pytest.mark.slow
def test_v1_notebook_with_imports_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cells = [_import_changed(c) for c in CELLS[1:]]
    assert not any(re.search(r"^\s*(from|import) azureml", c, re.M) for c in cells)
    cells.append("import sys\nprint('alias used:', 'azureml' in sys.modules)")
    text = _run(tmp_path, monkeypatch, cells)
    print(text)
    _check(text)
    assert "alias used: False" in text
