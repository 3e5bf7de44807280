"""Hostile-user probes on the process target (issue 11): killed masters, killed CLIs, concurrent updates,
updates that would break a healthy service, binary bodies. Real processes, real HTTP on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import nbdeploy
from nbdeploy.errors import Conflict, UpdateFailed
from nbdeploy.locks import service_lock
from nbdeploy.service import Webservice
from nbdeploy.specs import ProcessDeploymentConfig

from .conftest import write_script

REVISION_SCRIPT = """
import os
def init():
    pass
def run(raw):
    return "revision " + os.environ["SERVICE_VERSION"]
"""

SLOW_INIT = """
import os, time
def init():
    time.sleep(120)
def run(raw):
    return "slow " + os.environ["SERVICE_VERSION"]
"""


def cli(ws: nbdeploy.Workspace, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``nbdeploy --workspace WS ...`` in a subprocess (this checkout's nbdeploy: PYTHONPATH is inherited)."""
    return subprocess.Popen([sys.executable, "-m", "nbdeploy", "--workspace", str(ws.path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})


def answers(port: int, n: int = 40) -> set[str]:
    """What ``n`` new connections to the port are answered (each its own connection: SO_REUSEPORT spreads them)."""
    seen = set()
    for _ in range(n):
        try:
            seen.add(httpx.post(f"http://127.0.0.1:{port}/score", content="{}", timeout=10,
                                headers={"Connection": "close"}).text)
        except httpx.TransportError as exc:
            seen.add(f"error: {type(exc).__name__}")
    return seen


def port_answers(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
        return True
    except httpx.TransportError:
        return False


def wait_until(predicate, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def master_dead(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def server_revisions(ws: nbdeploy.Workspace, name: str) -> set[int]:
    """Revisions of ``name`` with a live server process (master or worker), from /proc: what really runs."""
    folder = str(ws.service_dir(name))
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace").split("\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z" or "--status-file" not in argv:
            continue
        status_file = argv[argv.index("--status-file") + 1]
        if status_file.startswith(folder + "/revision-"):
            found.add(int(status_file[len(folder) + len("/revision-"):].split(".")[0]))
    return found


def deploy_revision_script(ws, tmp_path, name, **config) -> Webservice:
    script = write_script(tmp_path, REVISION_SCRIPT, "rev.py")
    svc = nbdeploy.deploy(name, [], nbdeploy.InferenceConfig(str(script)), ProcessDeploymentConfig(**config), workspace=ws)
    svc.wait_for_deployment()
    return svc


# -- 1: a dead master leaves no orphaned workers ---------------------------------------------------------

def test_sigkill_master_then_delete_frees_the_port(workspace, tmp_path):
    svc = deploy_revision_script(workspace, tmp_path, "orphans", workers=2)
    port, pid = svc.port, svc._current()[0]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: master_dead(pid), 10, "the master to die")
    # its workers die with it (PR_SET_PDEATHSIG; before that they served on, re-parented to pid 1)
    wait_until(lambda: not port_answers(port), 15, "the workers to follow their master")
    Webservice("orphans", workspace).delete()  # no status() before: delete itself must reap the group
    assert not port_answers(port)
    assert server_revisions(workspace, "orphans") == set()
    again = deploy_revision_script(workspace, tmp_path, "orphans", port=port)
    assert again.port == port and again.run("{}") == "revision 1"


def test_sigkill_master_is_failed_with_its_signal_and_stops_serving(workspace, tmp_path):
    svc = deploy_revision_script(workspace, tmp_path, "killed", workers=2)
    port, pid = svc.port, svc._current()[0]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: master_dead(pid), 10, "the master to die")
    status = svc.status()
    assert status.state == "Failed"
    assert "SIGKILL" in status.reason, status.reason  # this process started it: the exit status is known
    wait_until(lambda: not port_answers(port), 15, "the orphaned workers to stop")
    # an update brings it back on the same port (a dead master is not restarted by itself)
    svc.update(inference_config=nbdeploy.InferenceConfig(str(write_script(tmp_path, REVISION_SCRIPT, "rev2.py"))))
    assert svc.port == port and svc.state == "Healthy"
    assert answers(port, 10) == {'"revision 2"'}


def test_a_server_started_by_another_process_says_its_exit_status_is_unknown(workspace, model, score_py):
    proc = cli(workspace, "service", "deploy", "-n", "elsewhere", "-m", "diabetes:1", "--entry-script", str(score_py))
    assert proc.wait(300) == 0, proc.stdout.read()
    svc = Webservice("elsewhere", workspace)
    pid = svc._current()[0]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: svc.status().state == "Failed", 10, "Failed")
    reason = svc.status().reason
    assert "exit status unknown: started by another process" in reason, reason


# -- 2: one lifecycle operation at a time ----------------------------------------------------------------

def test_second_update_is_refused_while_the_lock_is_held(workspace, tmp_path):
    svc = deploy_revision_script(workspace, tmp_path, "busy")
    with service_lock(workspace, "busy", "test-holder"):
        proc = cli(workspace, "service", "reload", "busy", env={"NBDEPLOY_LOCK_WAIT_S": "1"})
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "is busy: test-holder (pid " in out and f"pid {os.getpid()}" in out, out
    assert "waiting for test-holder" in out, out
    assert "Traceback" not in out
    assert svc.refresh().revision == 1


def test_lock_dies_with_its_holder(workspace, tmp_path):
    deploy_revision_script(workspace, tmp_path, "holder")
    code = ("import sys, time; from nbdeploy import Workspace; from nbdeploy.locks import service_lock\n"
            f"ws = Workspace({str(workspace.path)!r})\n"
            "with service_lock(ws, 'holder', 'sleeper'):\n    print('held', flush=True); time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Conflict, match="sleeper"), service_lock(workspace, "holder", "update", wait_s=0.3):
            pass
    finally:
        holder.kill()
        holder.wait()
    with service_lock(workspace, "holder", "update", wait_s=5):  # SIGKILLed holder: the lock is free
        pass


def test_two_concurrent_updates_leave_one_revision_serving(workspace, tmp_path):
    svc = deploy_revision_script(workspace, tmp_path, "racing")
    port = svc.port
    scripts = [write_script(tmp_path, REVISION_SCRIPT, f"r{i}.py") for i in (2, 3)]
    procs = [cli(workspace, "service", "update", "racing", "--entry-script", str(s)) for s in scripts]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs  # serialized: the second waited, then updated
    svc.refresh()
    assert svc.revision == 3
    assert server_revisions(workspace, "racing") == {3}
    assert answers(port) == {'"revision 3"'}
    assert [r["outcome"] for r in svc.revisions()] == ["replaced", "replaced", "serving"]


# -- 3: a killed CLI leaves nothing serving beside the current revision ----------------------------------

def test_cli_killed_during_init_leaves_nothing_after_the_next_operation(workspace, tmp_path):
    svc = deploy_revision_script(workspace, tmp_path, "initkill")
    port = svc.port
    slow = write_script(tmp_path, SLOW_INIT, "slow.py")
    proc = cli(workspace, "service", "update", "initkill", "--entry-script", str(slow))
    status_file = workspace.service_dir("initkill") / "revision-2.status.json"
    wait_until(lambda: status_file.exists() and 2 in server_revisions(workspace, "initkill"), 120, "revision 2's init()")
    proc.kill()
    proc.wait()
    assert server_revisions(workspace, "initkill") == {1, 2}  # the probe: the held server outlived its CLI
    svc.reload()  # any later lifecycle operation reconciles first
    assert server_revisions(workspace, "initkill") == {3}
    outcomes = {r["revision"]: (r["outcome"], r["reason"]) for r in svc.refresh().revisions()}
    assert outcomes[2][0] == "aborted" and "ended before finishing" in outcomes[2][1]
    assert outcomes[3][0] == "serving" and answers(port) == {'"revision 3"'}


def test_cli_killed_right_after_promotion_leaves_one_revision_after_the_next_operation(workspace, tmp_path):
    svc = deploy_revision_script(workspace, tmp_path, "promokill")
    port = svc.port
    proc = cli(workspace, "service", "update", "promokill", "--entry-script", str(write_script(tmp_path, REVISION_SCRIPT, "r2.py")))
    status_file = workspace.service_dir("promokill") / "revision-2.status.json"

    def promoted() -> bool:
        try:
            return json.loads(status_file.read_text()).get("state") == "serving"
        except (OSError, ValueError):
            return False

    deadline = time.monotonic() + 120
    while not promoted():  # a tight loop: the CLI notices "serving" within 20 ms, records, then retires
        assert time.monotonic() < deadline, "timed out waiting for revision 2 to take the public port"
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    svc = Webservice("promokill", workspace)
    svc.reload()
    current = svc.refresh().revision
    assert server_revisions(workspace, "promokill") == {current}
    assert answers(port) == {f'"revision {current}"'}
    outcomes = [r["outcome"] for r in svc.revisions()]
    assert outcomes.count("serving") == 1 and "starting" not in outcomes, outcomes


# -- 8: an update that breaks run() is refused with the last answered request ----------------------------

def test_update_whose_run_always_raises_is_refused_with_the_last_request(workspace, model, score_py, tmp_path, diabetes):
    X, _ = diabetes
    svc = nbdeploy.deploy("sampled", [model], nbdeploy.InferenceConfig(str(score_py)), workspace=workspace)
    svc.wait_for_deployment()
    body = json.dumps({"data": X[:2]})
    expected = svc.run(body)
    sample = workspace.service_dir("sampled") / "last-request.body"
    assert sample.read_bytes() == body.encode() and (sample.stat().st_mode & 0o777) == 0o600
    broken = write_script(tmp_path, """
        def init():
            pass
        def run(raw):
            raise RuntimeError("nbdeploy-test: run() always fails")
    """, "broken_run.py")
    with pytest.raises(UpdateFailed) as info:
        svc.update(inference_config=nbdeploy.InferenceConfig(str(broken)))
    assert "the last request the serving revision answered" in str(info.value)
    assert svc.revision == 1 and svc.run(body) == expected
    # an explicit smoke input is the way to change what is checked
    fine = write_script(tmp_path, "def init():\n    pass\ndef run(raw):\n    return 'new format'\n", "fine.py")
    svc.update(inference_config=nbdeploy.InferenceConfig(str(fine)),
               deployment_config=svc.deployment_config.merged(smoke_input='{"x": 1}'))
    assert svc.revision == 3 and svc.run('{"x": 1}') == "new format"


# -- 17: binary bodies from the CLI ----------------------------------------------------------------------

def test_cli_run_sends_a_binary_file_as_it_is(workspace, tmp_path):
    raw = write_script(tmp_path, """
        from azureml.contrib.services.aml_request import rawhttp
        def init():
            pass
        @rawhttp
        def run(request):
            data = request.get_data()
            return {"length": len(data), "first": data[0]}
    """, "raw.py")
    nbdeploy.deploy("binary", [], nbdeploy.InferenceConfig(str(raw)), workspace=workspace).wait_for_deployment()
    payload = bytes([0xFF, 0xD8, 0xFF, 0xE0]) + bytes(range(256)) * 4
    (tmp_path / "image.jpg").write_bytes(payload)
    proc = cli(workspace, "service", "run", "binary", "--data", f"@{tmp_path / 'image.jpg'}")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert json.loads(out) == {"length": len(payload), "first": 0xFF}


# -- 25 and 27: updates keep what they are not given; show gives one line and a pointer ------------------

def test_update_keeps_every_setting_it_is_not_given(workspace, model, score_py, tmp_path):
    (tmp_path / "requirements.txt").write_text("joblib\n")
    proc = cli(workspace, "service", "deploy", "-n", "keeper", "-m", "diabetes:1", "--entry-script", str(score_py),
               "--requirements", str(tmp_path / "requirements.txt"), "--workers", "2")
    assert proc.wait(300) == 0, proc.stdout.read()
    svc = Webservice("keeper", workspace)
    env = svc.environment
    assert env is not None and "joblib" in json.dumps(env.to_dict())
    v2 = write_script(tmp_path, "import joblib\ndef init():\n    pass\ndef run(raw):\n    return 'v2'\n", "v2.py")
    proc = cli(workspace, "service", "update", "keeper", "--entry-script", str(v2))
    assert proc.wait(300) == 0, proc.stdout.read()
    svc.refresh()
    assert svc.environment.to_dict() == env.to_dict() and svc.deployment_config.workers == 2
    (tmp_path / "requirements2.txt").write_text("joblib\nhttpx\n")
    proc = cli(workspace, "service", "update", "keeper", "--requirements", str(tmp_path / "requirements2.txt"))
    assert proc.wait(300) == 0, proc.stdout.read()
    svc.refresh()
    assert svc.revision == 3 and "httpx" in json.dumps(svc.environment.to_dict())  # given: changed
    assert svc.inference_config_doc["entry_script"] == str(v2) and svc.run("{}") == "v2"  # not given: kept


def test_show_gives_a_failed_revision_one_line_and_where_the_rest_is(workspace, tmp_path):
    deploy_revision_script(workspace, tmp_path, "shown")
    broken = write_script(tmp_path, "def init():\n    raise ValueError('nbdeploy-test: broken ' + 'x' * 3000)\n"
                                    "def run(raw):\n    return raw\n", "broken.py")
    proc = cli(workspace, "service", "update", "shown", "--entry-script", str(broken))
    proc.communicate(timeout=300)
    assert proc.returncode != 0
    proc = cli(workspace, "service", "show", "shown")
    out, _ = proc.communicate(timeout=120)
    line = next(line for line in out.splitlines() if line.strip().startswith("2 "))
    assert "failed" in line and "nbdeploy service logs shown --revision 2" in line, out
    assert len(line) < 300 and "Traceback" not in out, out  # one line, not the whole message or log
    proc = cli(workspace, "service", "logs", "shown", "--revision", "2")
    logs, _ = proc.communicate(timeout=120)
    assert "nbdeploy-test: broken" in logs and "Traceback" in logs


# -- 24: a connection reset before any answer is retried once --------------------------------------------

def test_run_retries_a_connection_reset_once(workspace, tmp_path):
    """A listener that closes with queued connections resets them (SO_REUSEPORT handover): run() sends again."""
    import socket
    import struct
    import threading

    from nbdeploy.targets.endpoint import Endpoint

    svc = deploy_revision_script(workspace, tmp_path, "resets")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    served = []

    def serve() -> None:
        for attempt in range(2):
            conn, _ = listener.accept()
            data = b""
            while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < 2:  # the whole request
                data += conn.recv(65536)
            if attempt == 0:  # RST, no answer: what a closing listener does to a queued connection
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n"ok"')
            served.append(attempt)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    svc._endpoint_cache = (svc.revision, Endpoint(f"http://127.0.0.1:{listener.getsockname()[1]}"))
    try:
        assert svc.run("{}") == "ok"
    finally:
        listener.close()
    assert served == [0, 1]
