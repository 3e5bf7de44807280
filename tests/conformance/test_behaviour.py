"""nbdeploy-only behaviour (what azmlinfsrv lacks or does differently), against real server processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from .harness import ROOT, SCRIPTS, Server, free_port, start, wait_ready

TEXT = {"Content-Type": "text/plain"}


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slow")
    server = start("ours", SCRIPTS / "slow.py", tmp, args=["--workers", "2"],
                   env={"SCORING_TIMEOUT_MS": "500", "NBDEPLOY_HANG_GRACE_MS": "1000", "NBDEPLOY_MAX_BODY_BYTES": "1000"})
    yield server
    server.stop()


@pytest.mark.parametrize("script", ["init_fail.py", "no_run.py"])
def test_init_failure_exits_3_and_never_listens(tmp_path, script):
    (tmp_path / "model.pkl").write_bytes(b"x")
    server = start("ours", SCRIPTS / script, tmp_path, model_dir=tmp_path, wait=False,
                   args=["--status-file", str(tmp_path / "status.json")])
    assert server.proc.wait(30) == 3
    log = server.log()
    assert "User's init function failed" in log and "Traceback" in log
    assert "model.pkl" in log  # the model folder listing
    with pytest.raises(OSError):
        server.request("GET", "/", timeout=1)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "failed" and status["error"]


def test_scoring_timeout_answers_500_and_server_survives(slow):
    r = slow.request("POST", "/score", b"sleep:3", TEXT)
    assert r.status == 500 and r.json() == {"message": "Scoring timeout after 500 ms"}
    assert r.headers["x-ms-run-function-failed"] == "True"
    assert slow.request("POST", "/score", b"ok", TEXT).json() == "ok"


def test_busy_loop_is_interrupted_by_the_timeout(slow):
    r = slow.request("POST", "/score", b"spin", TEXT)
    assert r.status == 500 and "Scoring timeout" in r.json()["message"]


def test_run_stuck_in_c_gets_its_worker_replaced(slow):
    before = {slow.request("POST", "/score", b"pid", TEXT, ).json() for _ in range(20)}
    with pytest.raises((OSError, Exception)):
        slow.request("POST", "/score", b"hang-c", TEXT, timeout=10)
    deadline = time.monotonic() + 20
    resets = 0
    while time.monotonic() < deadline:  # the server keeps answering, with a fresh worker among them
        try:
            r = slow.request("POST", "/score", b"pid", TEXT)
        except ConnectionResetError:
            # A connection the kernel queued on the killed worker's listening socket in the instant it
            # died is reset (the server does not turn on net.ipv4.tcp_migrate_req); clients retry.
            resets += 1
            assert resets <= 3
            time.sleep(0.05)
            continue
        assert r.status == 200
        if r.json() not in before:
            break
    else:
        pytest.fail("no replacement worker appeared")
    assert "replacing it" in slow.log()


def test_crashing_worker_is_replaced(slow):
    with pytest.raises(Exception):
        slow.request("POST", "/score", b"crash", TEXT, timeout=10)
    deadline = time.monotonic() + 20
    ok = 0
    while time.monotonic() < deadline and ok < 5:
        try:
            ok += slow.request("POST", "/score", b"x", TEXT, timeout=5).status == 200
        except OSError:
            time.sleep(0.1)
    assert ok == 5
    wait_for(lambda: "exited with code 17" in slow.log(), 20)  # the other worker may answer before the master logs


def test_body_over_limit_is_413(slow):
    r = slow.request("POST", "/score", b"x" * 1001, TEXT)
    assert r.status == 413 and "limit" in r.json()["message"]
    assert slow.request("POST", "/score", b"x" * 1000, TEXT).status == 200


def test_chunked_body_over_limit_is_413(slow):
    # Raw socket: the server may answer 413 and close as soon as the limit (1000 bytes) is passed, so the
    # client sends just past it and then reads (an http.client upload could hit a broken pipe first).
    chunk = b"190\r\n" + b"y" * 400 + b"\r\n"  # 0x190 = 400 bytes
    head = (b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    with socket.create_connection(("127.0.0.1", slow.port), timeout=10) as s:
        s.sendall(head + chunk * 3)
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_client_disconnecting_mid_body(slow):
    with socket.create_connection(("127.0.0.1", slow.port)) as s:
        s.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\nContent-Type: text/plain\r\n\r\nabc")
    assert slow.request("POST", "/score", b"still", TEXT).json() == "still"


def test_health_routes_and_metrics(slow):
    assert slow.request("GET", "/health/live").status == 200
    assert slow.request("GET", "/health/ready").status == 200
    # metrics are per worker: score and scrape on one kept-alive connection, so one worker answers both
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", slow.port, timeout=10)
    try:
        conn.request("POST", "/score", b"x", TEXT)
        assert conn.getresponse().read() == b'"x"'
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    assert 'nbdeploy_requests_total{route="/score",status="200"}' in text
    assert "nbdeploy_run_duration_seconds_bucket" in text and "nbdeploy_requests_in_flight" in text


def test_print_and_logging_carry_the_request_id(tmp_path):
    server = start("ours", SCRIPTS / "plain.py", tmp_path, args=["--log-format", "json"])
    try:
        r = server.request("POST", "/score", b"print", {**TEXT, "x-request-id": "rid-42"})
        assert r.status == 200
        time.sleep(0.3)
        records = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        printed = [r for r in records if r["message"] == "printed from run"]
        assert printed and printed[0]["request_id"] == "rid-42" and printed[0]["logger"] == "nbdeploy.server.print"
        assert any(r["logger"] == "plain" and r.get("request_id") == "rid-42" for r in records)
    finally:
        server.stop()


def test_key_auth_file_rotation_and_env_keys(tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"primaryKey": "p1", "secondaryKey": "s1"}))
    server = start("ours", SCRIPTS / "plain.py", tmp_path,
                   env={"NBDEPLOY_AUTH_KEYS_FILE": str(keys), "NBDEPLOY_PRIMARY_KEY": "envkey"})
    try:
        assert server.request("GET", "/").status == 200
        assert server.request("GET", "/health/ready").status == 200
        r = server.request("POST", "/score", b"a", TEXT)
        assert r.status == 401 and "message" in r.json()
        assert server.request("GET", "/swagger.json").status == 401
        assert server.request("GET", "/metrics").status == 401
        for key in ("p1", "s1", "envkey"):
            assert server.request("POST", "/score", b"a", {**TEXT, "Authorization": f"Bearer {key}"}).status == 200
        assert server.request("POST", "/score", b"a", {**TEXT, "Authorization": "Bearer nope"}).status == 401
        keys.write_text(json.dumps({"primaryKey": "p2", "secondaryKey": "s2"}))
        os.utime(keys, (time.time() + 5, time.time() + 5))
        time.sleep(1.2)
        assert server.request("POST", "/score", b"a", {**TEXT, "Authorization": "Bearer p1"}).status == 401
        assert server.request("POST", "/score", b"a", {**TEXT, "Authorization": "Bearer p2"}).status == 200
    finally:
        server.stop()


def test_sigterm_drains_in_flight_requests(tmp_path):
    server = start("ours", SCRIPTS / "slow.py", tmp_path)
    result = {}

    def slow_call():
        result["r"] = server.request("POST", "/score", b"sleep:1.5", TEXT)

    t = threading.Thread(target=slow_call)
    t.start()
    time.sleep(0.4)
    server.proc.send_signal(signal.SIGTERM)
    t.join(10)
    assert result["r"].status == 200 and result["r"].json() == "slept"
    assert result["r"].headers.get("connection") == "close"
    assert server.proc.wait(10) == 0


def test_hold_public_then_sigusr1_and_status_file(tmp_path):
    status = tmp_path / "status.json"
    server = start("ours", SCRIPTS / "plain.py", tmp_path, wait=False,
                   args=["--hold-public", "--admin-port", "0", "--status-file", str(status), "--reuse-port",
                         "--workers", "2"])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if status.exists() and json.loads(status.read_text())["state"] == "ready":
                break
            time.sleep(0.05)
        data = json.loads(status.read_text())
        assert data["state"] == "ready" and data["admin_port"] and data["pid"] == server.proc.pid
        admin = data["admin_port"]
        assert server.request("POST", "/score", b"a", TEXT, port=admin).status == 200
        public = data["public_port"]
        with pytest.raises(OSError):
            server.request("GET", "/", port=public, timeout=1)
        server.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while json.loads(status.read_text())["state"] != "serving" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.request("POST", "/score", b"b", TEXT, port=public).json() == {"got": "b"}
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(15) == 0
        assert json.loads(status.read_text())["state"] == "stopping"
    finally:
        server.stop()


def test_two_servers_share_a_port_with_reuse_port(tmp_path):
    port = free_port()
    servers = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            servers.append(start("ours", SCRIPTS / "slow.py", tmp_path / name, args=["--reuse-port"], port=port,
                                 wait=False))
        for server in servers:  # both booted (each one's log says so), both still running
            wait_for(lambda server=server: "ready for serving traffic" in server.log(), 30)
        pids: set = set()
        deadline = time.monotonic() + 20
        while len(pids) < 2 and time.monotonic() < deadline:  # the kernel spreads new connections over both
            pids.add(servers[0].request("POST", "/score", b"pid", TEXT).json())
        assert len(pids) == 2
        assert all(s.proc.poll() is None for s in servers)
    finally:
        for s in servers:
            s.stop()


def wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def read_status(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def test_replaced_worker_after_release_binds_the_public_port(tmp_path):
    """After SIGUSR1, a worker that dies is replaced by one that serves the public port at once; the status
    file keeps saying serving, for the same master."""
    status = tmp_path / "status.json"
    server = start("ours", SCRIPTS / "slow.py", tmp_path, wait=False,
                   args=["--hold-public", "--admin-port", "0", "--status-file", str(status), "--reuse-port"])
    try:
        wait_for(lambda: read_status(status).get("state") == "ready", 30)
        server.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: read_status(status).get("state") == "serving", 10)
        first = server.request("POST", "/score", b"pid", TEXT).json()
        with pytest.raises(OSError):
            server.request("POST", "/score", b"crash", TEXT)
        deadline = time.monotonic() + 30
        pid = first
        while pid == first and time.monotonic() < deadline:
            try:
                pid = server.request("POST", "/score", b"pid", TEXT, timeout=5).json()
            except OSError:
                time.sleep(0.1)
        assert pid != first, "the replacement worker never answered on the public port"
        data = read_status(status)
        assert data["state"] == "serving" and data["pid"] == server.proc.pid and data["error"] is None
        assert server.request("POST", "/score", b"pid", TEXT, port=data["admin_port"]).json() == pid
        assert "exited with code 17" in server.log()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(15) == 0
    finally:
        server.stop()


def test_sigterm_while_holding_the_public_port(tmp_path):
    status = tmp_path / "status.json"
    server = start("ours", SCRIPTS / "plain.py", tmp_path, wait=False,
                   args=["--hold-public", "--admin-port", "0", "--status-file", str(status), "--reuse-port",
                         "--workers", "2"])
    try:
        wait_for(lambda: read_status(status).get("state") == "ready", 30)
        admin = read_status(status)["admin_port"]
        assert server.request("POST", "/score", b"a", TEXT, port=admin).status == 200
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(15) == 0
        assert read_status(status)["state"] == "stopping"
        for port in (admin, server.port):  # nothing listens any more, and the public port never did
            with pytest.raises(OSError):
                server.request("GET", "/", port=port, timeout=1)
        assert "Traceback" not in server.log()
    finally:
        server.stop()


def test_head_sends_no_body_on_a_kept_alive_connection(slow):
    """HEAD answers carry the GET's content-length but no body: the next answer on the connection is intact."""
    with socket.create_connection(("127.0.0.1", slow.port), timeout=5) as s:
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"Healthy"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    assert b"content-length: 7" in head.lower()
    assert rest.startswith(b"HTTP/1.1 200")  # no "Healthy" between the two answers
    assert rest.endswith(b"\r\n\r\nHealthy")


def test_legacy_get_model_path_shim(tmp_path):
    app_root = tmp_path / "app"
    for version, text in ((1, "old"), (2, "new")):
        folder = app_root / "azureml-models" / "my_model" / str(version)
        folder.mkdir(parents=True)
        (folder / "model.txt").write_text(text)
    server = start("ours", SCRIPTS / "legacy.py", tmp_path, env={"AML_APP_ROOT": str(app_root)})
    try:
        r = server.request("POST", "/score", b"x", TEXT)
        assert r.json() == {"path": "azureml-models/my_model/2/model.txt", "content": "new"}
    finally:
        server.stop()


def test_adaptive_batching_merges_concurrent_requests(tmp_path):
    server = start("ours", SCRIPTS / "batched.py", tmp_path)
    try:
        results: list = []

        def call(i: int) -> None:
            results.append(server.request("POST", "/score", json.dumps({"x": i}).encode(), TEXT))

        threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(r.json()["echo"] for r in results) == list(range(40))
        assert max(r.json()["batch"] for r in results) > 1
        assert all(r.json()["batch"] <= 16 for r in results)
        r = server.request("POST", "/score", b"raise", TEXT)
        assert r.status == 500 and r.headers["x-ms-run-function-failed"] == "True"
        assert "nbdeploy_batch_size_count" in server.request("GET", "/metrics").body.decode()
    finally:
        server.stop()


def test_nbdeploy_serve_cli(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nbdeploy", "serve", "--entry-script", str(SCRIPTS / "plain.py"),
                             "--model-dir", str(tmp_path), "--port", str(port)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    server = Server(proc, port, tmp_path / "x.log", "ours")
    try:
        wait_ready(server)
        assert server.request("POST", "/score", b"hi", TEXT).json() == {"got": "hi"}
    finally:
        assert server.stop() == 0
