"""The air-gapped bundle's install.sh (pure rendering; tests/integration/edge/test_bundle.py runs it)."""

from __future__ import annotations

import shlex

from nbdeploy.targets.edge.bundle import render_install_script
from nbdeploy.targets.edge.manifest import EdgeModuleSpec


def test_install_script_loads_replaces_and_runs_the_module_as_the_manifest_says() -> None:
    spec = EdgeModuleSpec(module="iris-svc", image="nbdeploy/iris-svc:3", host_port=23001,
                          env={"SERVICE_NAME": "iris-svc", "GREETING": "it's here"}, memory_gb=0.5, cpu_cores=1.5,
                          restart_policy="unless-stopped")
    script = render_install_script(spec)
    lines = script.splitlines()
    assert lines[0] == "#!/bin/sh" and "set -eu" in lines
    assert 'docker load -i "$here/image.tar"' in lines
    run = next(shlex.split(line) for line in lines if line.startswith("docker run"))
    assert run[-1] == "nbdeploy/iris-svc:3"
    assert run[run.index("-p") + 1] == "23001:5001"
    assert run[run.index("--restart") + 1] == "unless-stopped"
    assert "GREETING=it's here" in run and "--memory" in run and run[run.index("--cpus") + 1] == "1.5"
    assert "docker rm -f iris-svc >/dev/null 2>&1 || true" in lines
