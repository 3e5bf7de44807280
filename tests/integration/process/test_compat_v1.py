"""A v1 deploy notebook's code, with only its ``azureml`` imports changed, runs on nbdeploy."""

from __future__ import annotations

import json
import os
import textwrap
import warnings
from pathlib import Path

import joblib
import pytest

from nbdeploy.errors import NbdeployError
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

# was: from azureml.core import Workspace / from azureml.core.model import Model, InferenceConfig / ...
from nbdeploy.compat.azureml.core import Workspace
from nbdeploy.compat.azureml.core.conda_dependencies import CondaDependencies
from nbdeploy.compat.azureml.core.environment import Environment
from nbdeploy.compat.azureml.core.model import InferenceConfig, Model
from nbdeploy.compat.azureml.core.webservice import AciWebservice, AksWebservice, LocalWebservice, Webservice

V1_SCORE = textwrap.dedent(
    """
    import json
    import numpy as np
    import os
    import joblib
    from azureml.core.model import Model

    from inference_schema.schema_decorators import input_schema, output_schema
    from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType

    def init():
        global model
        model_path = Model.get_model_path('sklearn_regression_model.pkl')
        model = joblib.load(model_path)

    input_sample = np.array([[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]])
    output_sample = np.array([3726.995])

    @input_schema('data', NumpyParameterType(input_sample))
    @output_schema(NumpyParameterType(output_sample))
    def run(data):
        try:
            result = model.predict(data)
            return result.tolist()
        except Exception as e:
            return str(e)
    """
)


@pytest.fixture
def v1_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    ws = Workspace.create(tmp_path / "workspace")
    ws.write_config(tmp_path)
    X, y = load_diabetes(return_X_y=True)
    joblib.dump(Ridge().fit(X, y), tmp_path / "sklearn_regression_model.pkl")
    (tmp_path / "source_directory").mkdir()
    (tmp_path / "source_directory" / "score.py").write_text(V1_SCORE)
    return tmp_path


def test_v1_local_deploy_notebook(v1_project):
    ws = Workspace.from_config()
    model = Model.register(model_path="sklearn_regression_model.pkl", model_name="sklearn_regression_model.pkl",
                           tags={"area": "diabetes", "type": "regression"}, description="Ridge regression", workspace=ws)
    assert model.version == 1 and Model(ws, name="sklearn_regression_model.pkl").id == "sklearn_regression_model.pkl:1"

    environment = Environment("LocalDeploy")
    environment.python.conda_dependencies = CondaDependencies.create(pip_packages=["scikit-learn", "joblib", "inference-schema[numpy-support]"])
    inference_config = InferenceConfig(entry_script="score.py", source_directory="./source_directory", environment=environment)
    deployment_config = LocalWebservice.deploy_configuration(port=None)

    os.environ["NBDEPLOY_V1_LOCAL_TARGET"] = "process"  # this test is about the v1 spelling, not Docker
    try:
        service = Model.deploy(ws, "test", [model], inference_config, deployment_config)
        service.wait_for_deployment(show_output=True)
    finally:
        del os.environ["NBDEPLOY_V1_LOCAL_TARGET"]
    assert service.state == "Healthy"

    sample_input = json.dumps({"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]})
    result = service.run(sample_input)
    assert isinstance(result, list) and len(result) == 2
    assert "sklearn_regression_model.pkl" in Webservice(ws, "test").serialize()["models"][0]
    assert [s.name for s in Webservice.list(ws)] == ["test"]
    assert service.get_logs()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        service.reload()  # v1's LocalWebservice.reload(): no spurious "update ignores show_output"
    assert [str(w.message) for w in caught] == []
    assert [r["outcome"] for r in service.revisions()][-1] == "serving"
    service.update(workers=2)  # v1's update(**deploy_configuration options): merged into the serving config
    assert service.deployment_config.workers == 2
    with pytest.warns(UserWarning, match="ignores enable_app_insights"):
        service.update(enable_app_insights=True)
    service.delete()
    assert Webservice.list(ws) == []


def test_v1_cloud_deploy_configurations_validate_like_v1():
    aci = AciWebservice.deploy_configuration(cpu_cores=1, memory_gb=1, auth_enabled=True, tags={"a": "b"})
    assert aci.cpu_cores == 1 and aci.auth_enabled and aci.tags == {"a": "b"}
    aks = AksWebservice.deploy_configuration(num_replicas=2, cpu_cores=0.5, memory_gb=1)
    assert aks.num_replicas == 2 and not aks.autoscaling
    from nbdeploy.errors import InvalidSpec

    with pytest.raises(InvalidSpec, match="num_replicas"):
        AksWebservice.deploy_configuration(autoscale_enabled=True, num_replicas=2)


def test_get_model_path_outside_a_deployment(v1_project):
    ws = Workspace.from_config()
    Model.register(ws, "sklearn_regression_model.pkl", "regressor")
    path = Model.get_model_path("regressor", _workspace=ws)
    assert Path(path).name == "sklearn_regression_model.pkl" and Path(path).is_file()


def test_v1_exception_types_are_nbdeploy_errors_too(v1_project):
    from nbdeploy.compat.azureml.exceptions import WebserviceException
    from nbdeploy.errors import ModelNotFound, ServiceNotFound

    ws = Workspace.from_config()
    with pytest.raises(WebserviceException) as info:
        Webservice(ws, "no-such-service")
    assert isinstance(info.value, ServiceNotFound)
    with pytest.raises(WebserviceException) as info:
        Model(ws, name="no-such-model")
    assert isinstance(info.value, ModelNotFound)


@pytest.mark.slow
def test_local_webservice_without_docker_installs_the_environment(v1_project, monkeypatch):
    """No Docker engine: LocalWebservice runs on the process target, in an environment with the Environment's packages."""
    monkeypatch.delenv("NBDEPLOY_V1_LOCAL_TARGET", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{v1_project}/no-docker.sock")
    (v1_project / "six_score.py").write_text(textwrap.dedent("""
        import sys
        import six
        def init():
            pass
        def run(raw):
            return {"six": six.__version__, "prefix": sys.prefix}
    """))
    ws = Workspace.from_config()
    model = Model.register(ws, "sklearn_regression_model.pkl", "regressor")
    env = Environment("needs-six")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["azureml-defaults", "six==1.16.0"])
    service = Model.deploy(ws, "six-local", [model], InferenceConfig(entry_script="six_score.py", environment=env),
                           LocalWebservice.deploy_configuration())
    try:
        service.wait_for_deployment(timeout_sec=300)
        answer = service.run("{}")
        assert answer["six"] == "1.16.0" and str(ws.cache_dir) in answer["prefix"]
        assert service.compute_type == "process"
    finally:
        service.delete()
