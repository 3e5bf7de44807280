"""Write the example notebooks (outputs stripped): ``python examples/make_notebooks.py``.

The .ipynb files are committed; edit this script and re-run it rather than editing them by hand.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}

SCRATCH = '''import os, tempfile
from pathlib import Path

# every run works in its own scratch folder, so runs never collide
scratch = Path(tempfile.mkdtemp(prefix="nbdeploy-{name}-"))
workspace = workspace or str(scratch / "workspace")
os.chdir(scratch)'''

SCORE_PY = '''%%score_script score.py
import json, os
import joblib

def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))

def run(raw_data):
    data = json.loads(raw_data)["data"]
    return {"predictions": model.predict(data).tolist()}'''


def params(source: str) -> nbformat.NotebookNode:
    cell = new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    return cell


def quickstart() -> nbformat.NotebookNode:
    return new_notebook(metadata={"kernelspec": KERNEL}, cells=[
        new_markdown_cell("# nbdeploy quickstart\n\nTrain a model, register it, write its scoring script, deploy it, "
                          "score it, update it without downtime and clean up, all from this notebook. The `process` "
                          "target needs no Docker: it runs the scoring server as a local subprocess."),
        params('target = "process"      # process | local | aks (nbdeploy service targets lists them)\n'
               'port = 0                # 0: any free port\n'
               'workspace = ""          # a folder; empty: a fresh scratch workspace\n'
               'service_name = "diabetes-svc"\n'
               'cleanup = True          # delete the service at the end'),
        new_code_cell(SCRATCH.format(name="quickstart") + "\n\n%load_ext nbdeploy\n%nbdeploy_workspace $workspace"),
        new_markdown_cell("## Train and register"),
        new_code_cell('import joblib\nfrom sklearn.datasets import load_diabetes\nfrom sklearn.linear_model import Ridge\n\n'
                      'X, y = load_diabetes(return_X_y=True)\njoblib.dump(Ridge(alpha=0.5).fit(X, y), "model.joblib")'),
        new_code_cell("%register_model model.joblib --name diabetes --tag area=health --if-changed"),
        new_markdown_cell("## The scoring script\n\n`%%score_script` checks the cell (it parses, defines `init()` and "
                          "`run(data)`) before writing it, and `%deploy` uses it by default."),
        new_code_cell(SCORE_PY),
        new_markdown_cell("## Deploy\n\nThe cell blocks until the service is Healthy. In JupyterLab a live panel shows "
                          "the state, progress, endpoints, a test box and the log tail; under papermill it prints "
                          "progress lines, and raises if the service ends anything but Healthy."),
        new_code_cell('port_option = f"--port {port}" if port else ""\n'
                      'temporary = "--temporary" if cleanup else ""  # deleted when the kernel exits, even after a failing cell\n'
                      "%deploy $service_name --model diabetes --target $target $port_option $temporary"),
        new_markdown_cell("## Score"),
        new_code_cell('payload = {"data": X[:3].tolist()}\n%score $service_name $payload'),
        new_code_cell("%services"),
        new_markdown_cell("## Update without downtime\n\nRegister a retrained model and roll it out: the new revision "
                          "starts beside the serving one and takes the traffic only once it is Healthy."),
        new_code_cell('import nbdeploy\n\njoblib.dump(Ridge(alpha=0.1).fit(X, y), "model.joblib")\n'
                      '%register_model model.joblib --name diabetes --tag area=health --tag retrained=yes --if-changed\n'
                      "svc = nbdeploy.Webservice(service_name)\n"
                      'svc.update(models=["diabetes:2"], show_output=True)\n'
                      'assert svc.revision == 2 and svc.models == ["diabetes:2"]\nsvc'),
        new_code_cell("%score $service_name $payload"),
        new_code_cell("%logs $service_name -n 5"),
        new_markdown_cell("## Clean up"),
        new_code_cell("if cleanup:\n    %undeploy $service_name"),
    ])


def migration() -> nbformat.NotebookNode:
    return new_notebook(metadata={"kernelspec": KERNEL}, cells=[
        new_markdown_cell("# Migrating an Azure ML SDK v1 deployment notebook\n\nThe cells below are a typical v1 "
                          "local-deployment notebook. Only the imports changed: `azureml.` became "
                          "`nbdeploy.compat.azureml.`. The first two cells stand in for the portal's `config.json`."),
        params('workspace = ""          # a folder; empty: a fresh scratch workspace\n'
               'port = 6789\n'
               'local_target = "process"  # where LocalWebservice runs: process (no Docker) or local (Docker)'),
        new_code_cell(SCRATCH.format(name="migration") + "\n\n"
                      'os.environ["NBDEPLOY_V1_LOCAL_TARGET"] = local_target\n'
                      "import nbdeploy\nnbdeploy.Workspace.create(workspace, exist_ok=True).write_config()  # config.json"),
        new_markdown_cell("## The v1 notebook"),
        new_code_cell("# was: from azureml.core import Workspace, Model, Environment\n"
                      "from nbdeploy.compat.azureml.core import Workspace, Model, Environment\n"
                      "# was: from azureml.core.conda_dependencies import CondaDependencies\n"
                      "from nbdeploy.compat.azureml.core.conda_dependencies import CondaDependencies\n"
                      "# was: from azureml.core.model import InferenceConfig\n"
                      "from nbdeploy.compat.azureml.core.model import InferenceConfig\n"
                      "# was: from azureml.core.webservice import LocalWebservice, Webservice\n"
                      "from nbdeploy.compat.azureml.core.webservice import LocalWebservice, Webservice"),
        new_code_cell('ws = Workspace.from_config()\nprint(ws.name, "loaded")'),
        new_code_cell("import joblib\nfrom sklearn.datasets import load_diabetes\nfrom sklearn.linear_model import Ridge\n\n"
                      "X, y = load_diabetes(return_X_y=True)\nos.makedirs('outputs', exist_ok=True)\n"
                      "joblib.dump(Ridge().fit(X, y), 'outputs/sklearn_regression_model.pkl')\n\n"
                      "model = Model.register(workspace=ws, model_path='outputs/sklearn_regression_model.pkl',\n"
                      "                       model_name='sklearn_regression_model', tags={'area': 'diabetes', 'type': 'regression'},\n"
                      "                       description='Ridge regression model to predict diabetes')\n"
                      "print(model.name, model.version)"),
        new_code_cell("%%writefile score.py\nimport json\nimport numpy as np\nimport os\nimport joblib\n\n"
                      "def init():\n    global model\n"
                      "    model_path = os.path.join(os.getenv('AZUREML_MODEL_DIR'), 'sklearn_regression_model.pkl')\n"
                      "    model = joblib.load(model_path)\n\n"
                      "def run(raw_data):\n    data = np.array(json.loads(raw_data)['data'])\n"
                      "    result = model.predict(data)\n    return result.tolist()"),
        new_code_cell("env = Environment('diabetes-env')\n"
                      "env.python.conda_dependencies = CondaDependencies.create(pip_packages=['scikit-learn', 'joblib', 'numpy'])\n"
                      "inference_config = InferenceConfig(entry_script='score.py', environment=env)\n"
                      "deployment_config = LocalWebservice.deploy_configuration(port=port)"),
        new_code_cell("service = Model.deploy(ws, 'local-diabetes', [model], inference_config, deployment_config, overwrite=True)\n"
                      "service.wait_for_deployment(show_output=True)\nprint(service.state)"),
        new_code_cell("import json\ntest_sample = json.dumps({'data': X[:2].tolist()})\n"
                      "prediction = service.run(input_data=test_sample)\nprint(prediction)"),
        new_code_cell("print(service.get_logs()[-2000:])"),
        new_code_cell("print(Webservice(ws, 'local-diabetes').scoring_uri)\nservice.delete()"),
    ])


def update_and_rollback() -> nbformat.NotebookNode:
    broken = ('%%score_script broken.py\nimport json\n\ndef init():\n'
              '    raise RuntimeError("the new feature store is not reachable")\n\ndef run(raw_data):\n    return []')
    return new_notebook(metadata={"kernelspec": KERNEL}, cells=[
        new_markdown_cell("# Update and roll back\n\nAn update starts the new revision beside the serving one and "
                          "switches only when it is Healthy and answers a smoke request. A broken update never "
                          "takes traffic; rolling back is one more update to the previous models."),
        params('target = "process"\nworkspace = ""          # a folder; empty: a fresh scratch workspace\n'
               'service_name = "rollback-demo"'),
        new_code_cell(SCRATCH.format(name="rollback") + "\n\nimport nbdeploy\n%load_ext nbdeploy\n%nbdeploy_workspace $workspace"),
        new_code_cell('import json, joblib\nfrom sklearn.datasets import load_diabetes\nfrom sklearn.linear_model import Ridge\n\n'
                      'X, y = load_diabetes(return_X_y=True)\nfor alpha in (1.0, 0.1):\n'
                      '    joblib.dump(Ridge(alpha=alpha).fit(X, y), "model.joblib")\n'
                      '    %register_model model.joblib --name diabetes --tag alpha=$alpha --if-changed\n%models'),
        new_code_cell(SCORE_PY),
        new_code_cell("%deploy $service_name --model diabetes:1 --target $target --temporary\n"
                      'payload = {"data": X[:1].tolist()}\nbefore = %score $service_name $payload\nbefore'),
        new_markdown_cell("## A good update: model version 2"),
        new_code_cell("svc = nbdeploy.Webservice(service_name)\nsvc.update(models=['diabetes:2'], show_output=True)\n"
                      "after = %score $service_name $payload\nassert svc.revision == 2 and after != before\nafter"),
        new_markdown_cell("## A broken update: its init() fails, revision 2 keeps serving"),
        new_code_cell(broken),
        new_code_cell("from nbdeploy.errors import UpdateFailed\n\ntry:\n"
                      "    svc.update(inference_config=nbdeploy.InferenceConfig('broken.py'), show_output=True)\n"
                      "except UpdateFailed as exc:\n    print('update refused:', exc.reason)\n"
                      "else:\n    raise AssertionError('the broken update should have failed')\n"
                      "assert svc.revision == 2 and svc.state == 'Healthy'\n%score $service_name $payload"),
        new_markdown_cell("## Roll back to model version 1"),
        new_code_cell("svc.update(models=['diabetes:1'], inference_config=nbdeploy.InferenceConfig('score.py'), show_output=True)\n"
                      "rolled_back = %score $service_name $payload\nassert rolled_back == before\n"
                      "import pandas as pd\npd.DataFrame(svc.revisions())[['revision', 'outcome', 'state', 'models', 'reason']]"),
        new_code_cell("%undeploy $service_name"),
    ])


def main() -> None:
    for name, make in (("quickstart", quickstart), ("migration-from-azureml-v1", migration),
                       ("update-and-rollback", update_and_rollback)):
        nb = make()
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"{name[:12]}-{i:02d}"
        nbformat.validate(nb)
        nbformat.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
