"""render_edge_manifest against the published IoT Edge deployment manifest schemas (vendored, MIT)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from nbdeploy.errors import InvalidSpec
from nbdeploy.targets.edge.manifest import EdgeModuleSpec, render_edge_manifest

DATA = Path(__file__).parent / "data"


def _validate(manifest: dict) -> None:
    content = manifest["modulesContent"]
    for schema_file, key in (("azure-iot-edgeagent-deployment-1.1.json", "$edgeAgent"),
                             ("azure-iot-edgehub-deployment-1.1.json", "$edgeHub")):
        schema = json.loads((DATA / schema_file).read_text())
        jsonschema.validate({key: content[key]}, schema)


def test_manifest_is_valid_and_carries_the_module() -> None:
    spec = EdgeModuleSpec(module="iris-svc", image="nbdeploy/iris-svc:3", host_port=5001,
                          env={"SERVICE_NAME": "iris-svc", "SCORING_TIMEOUT_MS": "5000"}, cpu_cores=0.5,
                          memory_gb=1.0, routes={"toCloud": "FROM /messages/modules/iris-svc/outputs/* INTO $upstream"})
    manifest = render_edge_manifest(spec)
    _validate(manifest)
    module = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["iris-svc"]
    assert module["settings"]["image"] == "nbdeploy/iris-svc:3"
    options = json.loads(module["settings"]["createOptions"])
    assert options["HostConfig"]["PortBindings"] == {"5001/tcp": [{"HostPort": "5001"}]}
    assert options["HostConfig"]["Memory"] == 2**30 and options["HostConfig"]["NanoCpus"] == 500_000_000
    assert module["env"]["SCORING_TIMEOUT_MS"] == {"value": "5000"}
    assert module["restartPolicy"] == "always"
    assert manifest["modulesContent"]["$edgeHub"]["properties.desired"]["routes"] == dict(spec.routes)


def test_default_route_sends_the_module_outputs_upstream() -> None:
    manifest = render_edge_manifest(EdgeModuleSpec(module="m1", image="i:1"))
    _validate(manifest)
    assert manifest["modulesContent"]["$edgeHub"]["properties.desired"]["routes"] == {
        "m1ToUpstream": "FROM /messages/modules/m1/outputs/* INTO $upstream"}


def test_long_create_options_are_split_in_512_character_parts() -> None:
    labels = {f"label{i}": "x" * 40 for i in range(20)}
    manifest = render_edge_manifest(EdgeModuleSpec(module="m1", image="i:1", labels=labels))
    _validate(manifest)
    settings = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["m1"]["settings"]
    parts = [settings[k] for k in sorted(settings) if k.startswith("createOptions")]
    assert len(parts) > 1 and all(len(p) <= 512 for p in parts)
    assert json.loads("".join(parts))["Labels"] == labels


def test_the_schema_check_catches_a_broken_manifest() -> None:
    manifest = render_edge_manifest(EdgeModuleSpec(module="m1", image="i:1"))
    del manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["m1"]["restartPolicy"]
    with pytest.raises(jsonschema.ValidationError):
        _validate(manifest)


@pytest.mark.parametrize("spec, key", [
    (EdgeModuleSpec(module="bad.name", image="i"), "module"),
    (EdgeModuleSpec(module="m", image="i", env={"A.B": "1"}), "env"),
    (EdgeModuleSpec(module="m", image="i", routes={"a b": "FROM /* INTO $upstream"}), "routes"),
    (EdgeModuleSpec(module="m", image="i", restart_policy="sometimes"), "restart_policy"),
])
def test_bad_values_are_refused_naming_the_key(spec: EdgeModuleSpec, key: str) -> None:
    with pytest.raises(InvalidSpec, match=key):
        render_edge_manifest(spec)
