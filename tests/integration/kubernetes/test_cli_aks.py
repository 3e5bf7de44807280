"""``nbdeploy service deploy --target aks`` with the Kubernetes options, end to end from a shell."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import BASE_IMAGE, NAMESPACE, SCORE, kubeconfig_path, labelled_objects, service_name


def nbdeploy(ws: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "nbdeploy", "--workspace", str(ws), *args],
                            capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"nbdeploy {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def test_cli_deploys_scores_and_deletes_on_kubernetes(cluster, workspace, model, tmp_path):
    name = service_name()
    (tmp_path / "score.py").write_text(SCORE.format(init_extra="pass"))
    (tmp_path / "env.yml").write_text(f"name: k8s-cli\nbase_image: {BASE_IMAGE}\n")
    out = nbdeploy(workspace.path, "service", "deploy", "-n", name, "-m", "weights:1", "--entry-script", str(tmp_path / "score.py"),
                   "--env", str(tmp_path / "env.yml"), "--target", "aks", "--replicas", "1", "--kubeconfig", kubeconfig_path(),
                   "--namespace", NAMESPACE, "--cpu", "0.05", "--memory-gb", "0.1", "--service-type", "NodePort", "--no-auth").stdout
    assert "Healthy" in out
    shown = json.loads(nbdeploy(workspace.path, "service", "show", name, "-o", "json").stdout)
    assert shown["computeType"] == "AKS" and shown["target"] == "aks" and shown["state"] == "Healthy" and shown["image"]
    answer = json.loads(nbdeploy(workspace.path, "service", "run", name, "--data", '{"data": [1, 2]}').stdout)
    assert answer["y"] == [2.0, 4.0]
    bad = nbdeploy(workspace.path, "service", "update", name, "--workers", "2", check=False)
    assert bad.returncode != 0 and "--workers is not an option of target 'aks' (it is one of process)" in bad.stderr
    nbdeploy(workspace.path, "service", "delete", name)
    assert labelled_objects(cluster, name) == []
