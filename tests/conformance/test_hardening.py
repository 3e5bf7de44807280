"""Hostile clients against a real nbdeploy server over loopback: idle and half-sent connections, huge request
heads, JSON nested too deeply, broken key files; and what the server reports about itself (Allow on 405,
the status file's exit information, a port it picked)."""

from __future__ import annotations

import json
import os
import resource
import selectors
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from .harness import SCRIPTS, Server, start

TEXT = {"Content-Type": "text/plain"}


def workers(server: Server) -> list[int]:
    path = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children")
    return [int(p) for p in path.read_text().split()]


def proc_status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` value in KiB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def wait_for(predicate, timeout: float, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def closed_by_server(socks: list[socket.socket], timeout: float) -> tuple[int, list[bytes]]:
    """Wait until the server closes each socket; returns how many it closed and what they read first."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, bytearray())
    closed, answers = 0, []
    deadline = time.monotonic() + timeout
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            try:
                chunk = key.fileobj.recv(65536)  # type: ignore[union-attr]
            except ConnectionResetError:
                chunk = b""
            if chunk:
                key.data.extend(chunk)
                continue
            sel.unregister(key.fileobj)
            closed += 1
            answers.append(bytes(key.data))
    sel.close()
    return closed, answers


def open_idle(port: int, count: int, head: bytes = b"") -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if head:
            s.sendall(head)
        socks.append(s)
    return socks


def test_stuck_and_idle_connections_are_closed_while_real_clients_are_served(tmp_path):
    """Issue 11 item 6: connections that never finish their request head are closed after the header
    timeout (408 when part of a head came), and real requests are answered meanwhile."""
    server = start("ours", SCRIPTS / "plain.py", tmp_path, env={"NBDEPLOY_HEADER_TIMEOUT_S": "1"})
    socks: list[socket.socket] = []
    try:
        socks += open_idle(server.port, 150, b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: text/pl")
        socks += open_idle(server.port, 150)  # connected, nothing sent
        for i in range(10):
            assert server.request("POST", "/score", f"real-{i}".encode(), TEXT, timeout=5).json() == {"got": f"real-{i}"}
        closed, answers = closed_by_server(socks, timeout=15)
        assert closed == 300, f"only {closed} of 300 stuck connections were closed"
        partial = [a for a in answers if a]
        assert len(partial) == 150 and all(a.startswith(b"HTTP/1.1 408") for a in partial), partial[:1]
        # a kept-alive connection that starts a request and stalls is closed the same way
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
            s.sendall(b"GET / HTTP/1.1\r\nHo")
            assert s.recv(4096).startswith(b"HTTP/1.1 408")
        assert server.request("GET", "/").status == 200
    finally:
        for s in socks:
            s.close()
        server.stop()


def test_idle_sockets_cannot_use_up_the_workers_file_descriptors(tmp_path):
    """Issue 11 item 6 (20,100 idle sockets made real requests fail), scaled down: a worker allowed 256 open
    files gets 400 idle connections; the connection cap closes the oldest idle ones and real requests
    are still answered."""
    def low_file_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    server = start("ours", SCRIPTS / "plain.py", tmp_path, env={"NBDEPLOY_HEADER_TIMEOUT_S": "120"},
                   preexec_fn=low_file_limit)
    socks: list[socket.socket] = []
    try:
        socks = open_idle(server.port, 400)
        time.sleep(0.5)  # let the worker accept them
        for i in range(20):
            assert server.request("POST", "/score", f"r{i}".encode(), TEXT, timeout=5).status == 200
        closed, _ = closed_by_server(socks, timeout=2)
        assert closed >= 400 - 256, closed  # the oldest idle connections made room
        assert "Connection cap" in server.log()
    finally:
        for s in socks:
            s.close()
        server.stop()


def test_huge_request_head_gets_431_without_growing_the_worker(tmp_path):
    """Issue 11 item 7: past the head limit the answer is 431 and close, and the excess is not buffered."""
    server = start("ours", SCRIPTS / "plain.py", tmp_path, env={"NBDEPLOY_MAX_HEADER_BYTES": "16384"})
    try:
        pid = workers(server)[0]
        before = proc_status(pid, "VmHWM")
        answer = bytearray()
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
            def send() -> None:
                try:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
                    for _ in range(32):  # 32 MiB of one header value, never finished
                        s.sendall(b"a" * (1 << 20))
                except OSError:
                    pass  # the server may close once it has answered

            sender = threading.Thread(target=send)
            sender.start()
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
            sender.join(30)
        assert answer.startswith(b"HTTP/1.1 431"), bytes(answer[:200])
        assert b"connection: close" in answer.lower() and b"16384 bytes" in answer
        grown_mib = (proc_status(pid, "VmHWM") - before) / 1024
        assert grown_mib < 8, f"the worker's peak memory grew by {grown_mib:.1f} MiB"
        # a head under the limit is fine, and so is a large body after a small head
        assert server.request("GET", "/", headers={"X-Fine": "b" * 12000}).status == 200
        big = b"c" * 1_000_000
        assert server.request("POST", "/score", big, TEXT).json() == {"got": big.decode()}
        # a head over the limit that arrives complete in one read is refused too
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"d" * 20000 + b"\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 431")
        assert workers(server) == [pid]  # the same worker, still serving
        assert server.request("GET", "/").status == 200
    finally:
        server.stop()


@pytest.mark.parametrize("depth", [1000, 5000])
def test_json_nested_too_deeply_is_400_with_the_contract_headers(tmp_path, depth):
    """Issue 11 item 9: a ~2 KB request nested ~1,000 deep gets 400 (not a bare 500) with the ids."""
    deep = "[" * depth + "]" * depth
    servers = [start("ours", SCRIPTS / name, tmp_path) for name in ("plain.py", "schema_std.py")]
    try:
        answers = [servers[0].request("GET", "/score?a=" + deep, headers={"x-request-id": "deep-1"}),
                   servers[1].request("GET", "/score?text=" + deep, headers={"x-request-id": "deep-1"}),
                   servers[1].request("POST", "/score", f'{{"text": {deep}}}',
                                      {"Content-Type": "application/json", "x-request-id": "deep-1"})]
        for r in answers:
            assert r.status == 400, (r.status, r.body[:200])
            assert "nested too deeply" in r.json()["message"]
            assert r.headers["x-request-id"] == "deep-1" and r.headers["x-ms-run-function-failed"] == "False"
            assert "x-ms-server-version" in r.headers
        assert "Traceback" not in servers[0].log() + servers[1].log()
    finally:
        for s in servers:
            s.stop()


def test_body_not_utf8_to_an_inference_schema_script_is_400(tmp_path):
    """A deliberate difference (docs/server.md): azmlinfsrv answers 500, the client's input is at fault."""
    server = start("ours", SCRIPTS / "schema_std.py", tmp_path)
    try:
        for body in (b'{"text": "\xff"}', b"\xff", b'{"text": "caf\xe9"}'):
            r = server.request("POST", "/score", body, {"Content-Type": "application/json"})
            assert r.status == 400 and "could not be decoded as JSON" in r.json()["message"], r.body
            assert "x-request-id" in r.headers and r.headers["x-ms-run-function-failed"] == "False"
    finally:
        server.stop()


def test_keys_file_emptied_or_garbled_in_place_lets_nobody_in(tmp_path):
    """Issue 11 item 10: docs/server.md says a missing or empty keys file lets nobody in; so does a garbled
    one, even with a key in the environment. The reason is logged."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"primaryKey": "p1", "secondaryKey": "s1"}))
    server = start("ours", SCRIPTS / "plain.py", tmp_path,
                   env={"NBDEPLOY_AUTH_KEYS_FILE": str(keys), "NBDEPLOY_PRIMARY_KEY": "envkey"})

    def status(key: str) -> int:
        return server.request("POST", "/score", b"a", {**TEXT, "Authorization": f"Bearer {key}"}).status

    try:
        assert status("p1") == 200 and status("envkey") == 200
        for content, reason in (("", "is empty"), ("{not json", "is not valid JSON"), ("[]", "not a JSON object"),
                                ('{"primaryKey": ""}', "holds no primaryKey")):
            with open(keys, "w") as fh:  # in place: same inode
                fh.write(content)
            seen = server.log().count(reason)
            # the file is looked at (at most once a second) when a request needs a key
            wait_for(lambda reason=reason, seen=seen: status("p1") == 401 and server.log().count(reason) > seen,
                     5, f"the file re-read after writing {content!r}")
            assert status("p1") == 401 and status("s1") == 401 and status("envkey") == 401
        keys.write_text(json.dumps({"primaryKey": "p2"}))
        wait_for(lambda: status("p2") == 200, 5, "the new key accepted")
        assert status("p1") == 401 and status("envkey") == 200
        keys.unlink()
        wait_for(lambda: status("p2") == 401, 5, "a missing file refusing everyone")
        assert status("envkey") == 401
        assert "cannot be read" in server.log()
        assert server.request("GET", "/").status == 200  # never needs a key
    finally:
        server.stop()


def test_405_answers_carry_allow(tmp_path):
    """Issue 11 item 16: RFC 9110 asks for Allow on 405."""
    servers = [start("ours", SCRIPTS / name, tmp_path) for name in ("plain.py", "raw.py")]
    try:
        plain, raw = servers
        for method, path, allow in (("PUT", "/score", "GET, OPTIONS, POST"), ("DELETE", "/score", "GET, OPTIONS, POST"),
                                    ("HEAD", "/score", "GET, OPTIONS, POST"), ("POST", "/", "GET, HEAD, OPTIONS"),
                                    ("POST", "/swagger.json", "GET, HEAD, OPTIONS"),
                                    ("PUT", "/health/ready", "GET, HEAD, OPTIONS")):
            r = plain.request(method, path)
            assert r.status == 405 and r.headers.get("allow") == allow, (method, path, r.headers)
        r = raw.request("PUT", "/score")
        assert r.status == 405 and r.headers["allow"] == "GET, HEAD, OPTIONS, POST"
        assert "allow" not in plain.request("GET", "/nope").headers
    finally:
        for s in servers:
            s.stop()


def read_status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def test_status_file_records_exit_codes_and_signals(tmp_path):
    """Issue 11 item 15 (server part): the status file says how workers ended and how the server exited."""
    status = tmp_path / "status.json"
    server = start("ours", SCRIPTS / "slow.py", tmp_path, args=["--status-file", str(status)])
    try:
        assert read_status(status)["exit_code"] is None and read_status(status)["worker_restarts"] == 0
        with pytest.raises(OSError):
            server.request("POST", "/score", b"crash", TEXT, timeout=10)  # os._exit(17)
        wait_for(lambda: read_status(status).get("worker_restarts") == 1, 20, "the crashed worker replaced")
        assert read_status(status)["last_worker_exit"]["exit_code"] == 17
        assert read_status(status)["last_worker_exit"]["reason"] == "crashed"
        wait_for(lambda: len(workers(server)) == 1, 20, "a new worker")
        victim = workers(server)[0]
        os.kill(victim, signal.SIGKILL)  # as the OOM killer would
        wait_for(lambda: read_status(status).get("worker_restarts") == 2, 20, "the killed worker replaced")
        last = read_status(status)["last_worker_exit"]
        assert (last["pid"], last["signal"], last["exit_code"]) == (victim, "SIGKILL", None)
        assert "was killed by SIGKILL" in server.log()
        wait_for(lambda: read_status(status).get("state") == "serving", 20, "serving again")
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0
        final = read_status(status)
        assert (final["state"], final["exit_code"], final["stop_signal"]) == ("stopping", 0, "SIGTERM")
    finally:
        server.stop()
    failed = tmp_path / "failed.json"
    server = start("ours", SCRIPTS / "init_fail.py", tmp_path, args=["--status-file", str(failed)], wait=False)
    assert server.proc.wait(30) == 3
    data = read_status(failed)
    assert (data["state"], data["exit_code"], data["last_worker_exit"]["reason"]) == ("failed", 3, "init failed")


def test_port_zero_is_picked_by_the_server_and_reported(tmp_path):
    """Issue 11 item 17: with --port 0 the server picks the port (no race) and reports it in the status
    file and in the ready log line; every worker serves that one port."""
    status = tmp_path / "status.json"
    server = start("ours", SCRIPTS / "slow.py", tmp_path, wait=False,
                   args=["--port", "0", "--workers", "2", "--status-file", str(status)])
    try:
        wait_for(lambda: read_status(status).get("state") == "serving", 30, "serving")
        port = read_status(status)["public_port"]
        assert port and port != server.port
        pids = set()
        deadline = time.monotonic() + 20
        while len(pids) < 2 and time.monotonic() < deadline:
            pids.add(server.request("POST", "/score", b"pid", TEXT, port=port).json())
        assert len(pids) == 2  # both workers on the picked port
        assert f"ready for serving traffic on 127.0.0.1:{port}" in server.log()
        with pytest.raises(OSError):  # nobody else can take it
            socket.create_server(("127.0.0.1", port))
    finally:
        server.stop()
    held = tmp_path / "held.json"
    server = start("ours", SCRIPTS / "plain.py", tmp_path, wait=False,
                   args=["--port", "0", "--hold-public", "--admin-port", "0", "--status-file", str(held)])
    try:
        wait_for(lambda: read_status(held).get("state") == "ready", 30, "ready")
        data = read_status(held)
        assert data["public_port"] and data["admin_port"] and data["public_port"] != data["admin_port"]
        with pytest.raises(OSError):
            server.request("GET", "/", port=data["public_port"], timeout=1)
        server.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: read_status(held).get("state") == "serving", 10, "serving")
        assert server.request("POST", "/score", b"x", TEXT, port=data["public_port"]).json() == {"got": "x"}
    finally:
        server.stop()



def test_workers_die_with_their_master(tmp_path):
    """SIGKILL the master: its workers get SIGTERM from the kernel (PR_SET_PDEATHSIG) and the port goes quiet,
    with nobody calling nbdeploy (before: they were re-parented to pid 1 and kept serving)."""
    server = start("ours", SCRIPTS / "plain.py", tmp_path, args=["--workers", "2"])
    children = workers(server)
    assert len(children) == 2
    server.proc.kill()
    server.proc.wait()
    deadline = time.monotonic() + 30
    alive = children
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in children if Path(f"/proc/{pid}").exists()
                 and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
        time.sleep(0.1)
    assert alive == [], f"workers {alive} outlived their master"
    with pytest.raises(OSError):
        server.request("GET", "/", timeout=2)
