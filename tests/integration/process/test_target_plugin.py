"""A third-party target installed as a package (examples/target-plugin) plugs in through the entry point.

Nothing in nbdeploy names it: the CLI and ``%deploy`` find it, show its options, deploy to it and delete it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLUGIN = ROOT / "examples" / "target-plugin"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin pip-installed into its own folder (a real wheel build and install)."""
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(PLUGIN)], check=True, capture_output=True, timeout=300)
    assert list(target.glob("nbdeploy_target_nice-*.dist-info"))
    return target


def run(plugin_path: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(plugin_path), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=180, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_cli_finds_shows_deploys_and_deletes_the_plugin_target(plugin_path, workspace, model, score_py):
    ws = str(workspace.path)
    listing = run(plugin_path, "-m", "nbdeploy", "service", "targets").stdout
    assert "nice" in listing and "an example plugin" in listing
    help_text = run(plugin_path, "-m", "nbdeploy", "service", "deploy", "--target", "nice", "--help").stdout
    assert "--niceness" in help_text and "--workers" in help_text and "--replicas" not in help_text
    refused = run(plugin_path, "-m", "nbdeploy", "-w", ws, "service", "deploy", "-n", "nice-svc", "-m", "diabetes",
                  "--entry-script", str(score_py), "--target", "nice", "--niceness", "40", check=False)
    assert refused.returncode == 1 and "niceness: must be an integer from 0 to 19, got 40" in refused.stderr
    out = run(plugin_path, "-m", "nbdeploy", "-w", ws, "service", "deploy", "-n", "nice-svc", "-m", "diabetes",
              "--entry-script", str(score_py), "--target", "nice", "--niceness", "7").stdout
    assert "niceness 7" in out and "Healthy" in out
    shown = json.loads(run(plugin_path, "-m", "nbdeploy", "-w", ws, "service", "show", "nice-svc", "-o", "json").stdout)
    assert shown["target"] == "nice" and shown["state"] == "Healthy"
    record = workspace.db().execute("SELECT handle FROM service_revisions WHERE service = 'nice-svc'").fetchone()
    assert niceness(json.loads(record[0])["pid"]) == 7
    run(plugin_path, "-m", "nbdeploy", "-w", ws, "service", "delete", "nice-svc")


def test_deploy_magic_uses_the_plugin_target(plugin_path, workspace, model, score_py):
    script = textwrap.dedent(f"""
        from IPython.testing.globalipapp import start_ipython
        ip = start_ipython()
        ip.run_line_magic("load_ext", "nbdeploy")
        ip.run_line_magic("nbdeploy_workspace", {str(workspace.path)!r})
        svc = ip.run_line_magic("deploy", "magic-nice --model diabetes --entry {score_py} --target nice --niceness 3")
        print("STATE", svc.state, "TARGET", svc.target)
        ip.run_line_magic("deploy", "--target nice --help")
        svc.delete()
    """)
    out = run(plugin_path, "-c", script).stdout
    assert "STATE Healthy TARGET nice" in out
    assert "options of --target nice" in out and "--niceness" in out
