"""Pure parts of the local target's host network mode: config, health check, the restart launcher."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nbdeploy.errors import InvalidSpec
from nbdeploy.specs import LocalDeploymentConfig, deployment_config_from_dict
from nbdeploy.targets import local_docker as ld


def test_network_mode_defaults_to_host_on_linux_and_round_trips():
    expected = "host" if sys.platform.startswith("linux") else "bridge"
    assert LocalDeploymentConfig().network_mode == expected
    config = LocalDeploymentConfig(port=6789, network_mode="bridge")
    assert config.to_dict()["networkMode"] == "bridge"
    assert deployment_config_from_dict(config.to_dict()) == config
    assert deployment_config_from_dict({"computeType": "local", "port": 1234}).network_mode == expected


def test_unknown_network_mode_is_refused():
    with pytest.raises(InvalidSpec, match="network_mode.*allowed: bridge, host"):
        LocalDeploymentConfig(network_mode="overlay")


def test_health_check_is_pointed_at_the_admin_port():
    probe = "u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:5001/health/ready', timeout=2)"
    image = {"Test": ["CMD", "/opt/nbdeploy/venv/bin/python", "-c", probe], "Interval": 10_000_000_000,
             "Timeout": 3_000_000_000, "StartPeriod": 60_000_000_000, "Retries": 3}
    check = ld._healthcheck_on(image, 41234)
    assert check is not None and "127.0.0.1:41234/health/ready" in check["test"][3]
    assert (check["interval"], check["timeout"], check["retries"], check["start_period"]) == (10**10, 3 * 10**9, 3, 6 * 10**10)
    assert ld._healthcheck_on({"Test": ["CMD", "true"]}, 41234) is None  # not ours: left alone
    assert ld._healthcheck_on(None, 41234) is None


def test_launcher_drops_hold_public_once_promoted(tmp_path):
    launcher = ld.LAUNCHER.replace(ld.STATE_IN_CONTAINER, str(tmp_path))
    show = [sys.executable, "-c", "import sys; print(sys.argv[1:])"]

    def argv() -> str:
        out = subprocess.run([sys.executable, "-c", launcher, *show, "--port", "1", "--hold-public"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    assert argv() == "['--port', '1', '--hold-public']"
    (tmp_path / "promoted").touch()
    assert argv() == "['--port', '1']"
