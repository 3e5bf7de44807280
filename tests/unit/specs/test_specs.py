"""Environment, CondaDependencies, InferenceConfig and deployment configs: v1 files in and out, validation."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest

from nbdeploy.errors import InvalidInput, InvalidSpec
from nbdeploy.specs import (
    AksDeploymentConfig,
    CondaDependencies,
    Environment,
    InferenceConfig,
    LocalDeploymentConfig,
    ProcessDeploymentConfig,
    deployment_config_from_dict,
    load_deployment_config,
    load_inference_config,
)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "score.py"
    path.write_text("def init():\n    pass\ndef run(x):\n    return x\n")
    return path


def test_conda_dependencies_v1_api(tmp_path):
    deps = CondaDependencies.create(pip_packages=["scikit-learn==1.9.1", "joblib"], conda_packages=["numpy"], python_version="3.11")
    deps.add_pip_package("joblib>=1.3")  # replaces, does not duplicate
    assert deps.pip_packages == ["scikit-learn==1.9.1", "joblib>=1.3"]
    assert deps.conda_packages == ["numpy"] and deps.get_python_version() == "3.11"
    deps.remove_pip_package("joblib")
    saved = deps.save(tmp_path / "env.yml")
    again = CondaDependencies(saved)
    assert again.pip_packages == ["scikit-learn==1.9.1"] and again == deps


def test_environment_short_yaml_form(tmp_path):
    ca = tmp_path / "corp.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env = Environment.from_yaml(
        f"pip: [scikit-learn==1.9.*, joblib]\nvariables: {{OMP_NUM_THREADS: 1}}\nbase_image: python:3.11-slim\n"
        f"pip_index_url: https://mirror.example/simple\nca_certificates: [{ca}]\n",
        name="sk",
    )
    assert env.name == "sk" and env.pip_packages == ["scikit-learn==1.9.*", "joblib"]
    assert env.environment_variables == {"OMP_NUM_THREADS": "1"}
    assert env.docker.base_image == "python:3.11-slim"
    assert env.pip_options.index_url == "https://mirror.example/simple" and env.pip_options.ca_certificates == [str(ca)]
    restored = Environment.from_stored_dict(json.loads(json.dumps(env.to_dict())))
    assert restored.digest() == env.digest() and restored.pip_options == env.pip_options


@pytest.mark.parametrize("text, key", [
    ("pip: [a]\npipp: [b]\n", "pipp"),
    ("pip: 5\n", "pip"),
    ("variables: [1, 2]\n", "variables"),
    ("base_image: a\nbase_dockerfile: b\n", "base_image"),
    ("ca_certificates: [/nonexistent.pem]\n", "ca_certificates"),
    ("- just a list\n", "environment"),
])
def test_environment_yaml_errors_name_the_key(text, key):
    with pytest.raises(InvalidSpec) as info:
        Environment.from_yaml(text, name="bad")
    assert info.value.key == key


def test_environment_from_pip_requirements(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("# comment\nscikit-learn==1.9.1\n\njoblib  # trailing\n")
    assert Environment.from_pip_requirements("r", req).pip_packages == ["scikit-learn==1.9.1", "joblib"]
    with pytest.raises(InvalidInput, match="does not exist"):
        Environment.from_pip_requirements("r", tmp_path / "missing.txt")


def test_environment_from_current_kernel_pins_imported_packages(tmp_path):
    import joblib

    script = tmp_path / "score.py"
    script.write_text("import os, json\nimport joblib\nfrom yaml import safe_load\nimport not_installed_anywhere\n")
    env = Environment.from_current_kernel("k", entry_script=script)
    assert f"joblib=={joblib.__version__}" in env.pip_packages
    assert any(p.lower().startswith("pyyaml==") for p in env.pip_packages)
    assert not any(p.startswith(("os", "json", "not_installed")) for p in env.pip_packages)
    assert env.python_version == f"{sys.version_info.major}.{sys.version_info.minor}"
    import sklearn

    with_sklearn = Environment.from_current_kernel("k", entry_script=script, packages=["scikit-learn"])
    assert f"scikit-learn=={sklearn.__version__}" in with_sklearn.pip_packages
    with pytest.raises(InvalidInput, match="not installed"):
        Environment.from_current_kernel("k", entry_script=script, packages=["nbdeploy-no-such-dist"])


def test_environment_names_are_validated():
    with pytest.raises(InvalidSpec, match="environment name"):
        Environment("has space")


def test_environment_save_and_load_directory(tmp_path):
    env = Environment.from_yaml("pip: [joblib]\n", name="saved")
    env.save_to_directory(tmp_path / "e")
    assert Environment.load_from_directory(tmp_path / "e").pip_packages == ["joblib"]
    with pytest.raises(InvalidInput, match="overwrite"):
        env.save_to_directory(tmp_path / "e")


def test_inference_config_validation(script, tmp_path):
    with pytest.raises(InvalidSpec, match="entry_script"):
        InferenceConfig("")
    with pytest.raises(InvalidInput, match="does not exist"):
        InferenceConfig("missing.py", source_directory=str(tmp_path))
    with pytest.raises(InvalidInput, match="source_directory"):
        InferenceConfig("score.py", source_directory=str(tmp_path / "nope"))
    with pytest.raises(InvalidSpec, match="cannot be combined with environment"):
        InferenceConfig(str(script), environment=Environment("e"), conda_file="x.yml")
    ic = InferenceConfig("score.py", source_directory=str(tmp_path))
    assert ic.entry_script_path == script.resolve()


def test_inference_config_json_current_form(script, tmp_path):
    env = Environment.from_yaml("pip: [joblib]\nvariables: {A: b}\n", name="env1")
    doc = {"entryScript": "score.py", "sourceDirectory": ".", "environment": env.to_v1_document()}
    (tmp_path / "inferenceconfig.json").write_text(json.dumps(doc))
    ic = load_inference_config(tmp_path / "inferenceconfig.json")
    assert ic.entry_script_path == script.resolve()
    assert ic.environment.pip_packages == ["joblib"] and ic.environment.environment_variables == {"A": "b"}
    assert ic.to_dict()["environment"]["python"]["condaDependencies"]["dependencies"][-1] == {"pip": ["joblib"]}


def test_inference_config_json_legacy_form(script, tmp_path):
    (tmp_path / "env.yml").write_text("dependencies:\n  - python=3.11\n  - pip:\n    - joblib\n")
    (tmp_path / "ic.json").write_text(json.dumps({"entryScript": "score.py", "runtime": "python", "condaFile": "env.yml", "enableGpu": False}))
    ic = load_inference_config(tmp_path / "ic.json")
    assert ic.environment.pip_packages == ["joblib"] and ic.environment.python_version == "3.11"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        InferenceConfig(str(script), runtime="python")
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)


def test_inference_config_unknown_key_names_allowed(tmp_path, script):
    (tmp_path / "ic.json").write_text(json.dumps({"entryScript": "score.py", "enviroment": {}}))
    with pytest.raises(InvalidSpec, match=r"enviroment in .*ic.json: unknown inference config key.*allowed: .*environment"):
        load_inference_config(tmp_path / "ic.json")


def test_deployment_configs_round_trip(tmp_path):
    for config in (ProcessDeploymentConfig(port=8890, workers=2), LocalDeploymentConfig(port=6789, memory_gb=1.5),
                   LocalDeploymentConfig(cpu_cores=1, memory_gb=2, auth_enabled=True, primary_key="k" * 10),
                   AksDeploymentConfig(num_replicas=2, namespace="team-a", cpu_cores_limit=1)):
        doc = config.to_dict()
        (tmp_path / "dc.json").write_text(json.dumps(doc))
        assert load_deployment_config(tmp_path / "dc.json") == config


def test_v1_deploymentconfig_compute_types_are_case_insensitive():
    assert isinstance(deployment_config_from_dict({"computeType": "LOCAL", "port": 6789}), LocalDeploymentConfig)
    assert isinstance(deployment_config_from_dict({"computeType": "aks", "numReplicas": 1}), AksDeploymentConfig)
    assert isinstance(deployment_config_from_dict({"computeType": "AKSENDPOINT", "numReplicas": 1}), AksDeploymentConfig)


def test_unbuilt_compute_type_is_refused_with_the_supported_ones():
    with pytest.raises(InvalidSpec, match=r"computeType: 'FPGA' is not supported \(allowed: ACI, AKS, IOT, local, process\)"):
        deployment_config_from_dict({"computeType": "FPGA"})


@pytest.mark.parametrize("kwargs, key", [
    ({"num_replicas": 2, "autoscale_enabled": True}, "num_replicas"),
    ({"autoscale_enabled": False}, "num_replicas"),
    ({"num_replicas": 2, "autoscale_max_replicas": 4}, "autoscale_max_replicas"),
    ({"autoscale_min_replicas": 5, "autoscale_max_replicas": 2}, "autoscale_min_replicas"),
    ({"cpu_cores": 1, "cpu_cores_limit": 0.5}, "cpu_cores_limit"),
    ({"memory_gb": 2, "memory_gb_limit": 1}, "memory_gb_limit"),
    ({"namespace": "Bad_NS"}, "namespace"),
    ({"token_auth_enabled": True}, "token_auth_enabled"),
    ({"cpu_cores": 0}, "cpu_cores"),
    ({"service_type": "Ingress"}, "service_type"),
])
def test_aks_validation_rules(kwargs, key):
    with pytest.raises(InvalidSpec) as info:
        AksDeploymentConfig(**kwargs)
    assert info.value.key == key


def test_aks_defaults_follow_v1():
    config = AksDeploymentConfig()
    assert config.autoscaling and config.auth_enabled and config.initial_delay_seconds == 310
    assert not AksDeploymentConfig(num_replicas=3).autoscaling


def test_stored_environments_keep_no_index_password():
    env = Environment("private")
    env.pip_options.index_url = "https://alice:s3cret@pypi.example.com/simple"
    env.pip_options.extra_index_urls = ["https://bob:${TOKEN}@extra.example.com/simple"]
    doc = env.to_dict()
    assert doc["pipOptions"]["index_url"] == "https://pypi.example.com/simple"
    assert doc["pipOptions"]["extra_index_urls"] == ["https://bob:${TOKEN}@extra.example.com/simple"]  # a reference
    assert "s3cret" not in json.dumps(doc)
    assert env.pip_options.index_url.startswith("https://alice:s3cret@")  # the build in this process still has it


def test_names_ending_in_a_newline_are_refused():
    with pytest.raises(InvalidSpec):
        Environment("env\n")
    with pytest.raises(InvalidSpec):
        AksDeploymentConfig(namespace="team-a\n")
