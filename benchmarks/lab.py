"""The side panel's server side: push latency, idle watcher CPU, panel data load (200 services, 2,000 versions).

    .venv/bin/python benchmarks/lab.py [--services 200] [--versions 2000] [--repeat 5] [--idle-s 10]

Starts a real Jupyter server (subprocess, loopback, token auth) with the nbdeploy server extension and
reads its event stream like the panel does. Prints one table:

- change -> client, ``--repeat`` times each, to the event arriving on the stream: a tag added to a model
  version (one commit; from the call), a real process-target service deployed (from the deploy() call:
  includes its bundle), the same service turning Healthy with no database write (from the moment this
  script, asking the target every 10 ms, saw it Healthy: the watcher's fast poll of starting services),
  and deleted (from the delete() call to its Deleting or removed event).
  Anchor: a plain authenticated GET /nbdeploy/api/version round trip in the same run.
- watcher CPU when nothing changes: a watcher (default timing) in this process over ``--idle-s`` seconds
  on a workspace with ``--live`` Healthy process services, as % of one core (process CPU time, the main
  thread asleep); anchor: the same process over the same time without the watcher.
- panel data load: the REST calls the panel makes when it opens (version, services, models, targets, in
  parallel as the browser does), on a workspace with ``--services`` service RECORDS (never started:
  deploying 200 real servers is too heavy for this machine; they read as Transitioning "starting") and
  ``--versions`` model versions (inserted straight into the registry tables). First open as soon as the
  server answers (racing the extension's prewarm: the watcher's first scan and the registry document),
  first open 5 s after start (JupyterLab's own page load takes longer than that), then warm opens.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from nbdeploy import InferenceConfig, Model, ProcessDeploymentConfig, Workspace, deploy
from nbdeploy.jupyter.watcher import WorkspaceWatcher
from nbdeploy.registry import store
from nbdeploy.registry.store import FileEntry, ModelRecord
from nbdeploy.service import Webservice
from nbdeploy.service_records import ServiceStore

TOKEN = "nbdeploy-bench-token"
SCORE = "import time\n\ndef init():\n    time.sleep(1)  # Transitioning for a second: Healthy arrives without a database write\n\ndef run(raw):\n    return raw\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, workspace: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = root / "jupyter_config.json"
    config.write_text(json.dumps({"ServerApp": {"jpserver_extensions": {"nbdeploy.jupyter": True}},
                                  "NbdeployLab": {"workspace": str(workspace)}}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / "jupyter-config-dir")}
    env.pop("NBDEPLOY_WORKSPACE", None)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--config={config}",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=open(root / f"server-{port}.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115 - the server keeps it
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/api/status", headers={"Authorization": f"token {TOKEN}"}, trust_env=False).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the Jupyter server did not start: " + (root / f"server-{port}.log").read_text()[-2000:])


class Stream:
    """The event stream, read in a thread; every event with its arrival time (perf_counter)."""

    def __init__(self, base: str) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.client = httpx.Client(headers={"Authorization": f"token {TOKEN}"}, trust_env=False, timeout=httpx.Timeout(60, read=None))
        self.ready = threading.Event()
        threading.Thread(target=self._read, args=(f"{base}/nbdeploy/api/events",), daemon=True).start()

    def _read(self, url: str) -> None:
        try:
            with self.client.stream("GET", url) as response:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                        self.events.append((time.perf_counter(), event))
                        if event["type"] == "snapshot":
                            self.ready.set()
        except httpx.HTTPError:
            pass

    def wait(self, after: float, match: Any, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, event in list(self.events):
                if at >= after and match(event):
                    return at
            time.sleep(0.002)
        raise SystemExit("no matching event arrived in time")


def service_event(name: str, **fields: Any) -> Any:
    return lambda e: e["type"] == "service" and e["service"]["name"] == name and all(e["service"].get(k) == v for k, v in fields.items())


def push_latency(root: Path, repeat: int) -> tuple[dict[str, list[float]], float, float]:
    """Seconds from a change to its event on the stream, per kind of change (see the module docstring)."""
    ws = Workspace.create(root / "push-ws")
    (root / "m.txt").write_text("1")
    model = Model.register(root / "m.txt", "m", workspace=ws)
    (root / "score.py").write_text(SCORE)
    proc, base = start_server(root, ws.path)
    stream = Stream(base)
    times: dict[str, list[float]] = {"tag": [], "deploy": [], "healthy": [], "delete": []}
    try:
        stream.ready.wait(60)
        for i in range(repeat):
            t = time.perf_counter()
            model.add_tags({"round": str(i)})  # one commit
            times["tag"].append(stream.wait(t, lambda e: e["type"] == "models") - t)
            name = f"push-{i}"
            t = time.perf_counter()
            svc = deploy(name, ["m:1"], InferenceConfig(str(root / "score.py")), ProcessDeploymentConfig(), workspace=ws)
            times["deploy"].append(stream.wait(t, service_event(name)) - t)
            observer = Webservice(name, ws)
            assert str(observer.status().state) == "Transitioning", "init() sleeps 1 s: the service must still be starting"
            while str(observer.status().state) != "Healthy":  # the target's own answer, every 10 ms; no commit
                time.sleep(0.01)
            t = time.perf_counter()
            times["healthy"].append(stream.wait(t - 0.02, service_event(name, state="Healthy")) - t)
            svc.wait_for_deployment()
            t = time.perf_counter()
            svc.delete()
            times["delete"].append(stream.wait(t, lambda e, n=name: (e.get("service") or {}).get("name") == n
                                               or e == {"type": "removed", "name": n}) - t)
        with httpx.Client(headers={"Authorization": f"token {TOKEN}"}, trust_env=False) as client:
            trips = []
            for _ in range(20):
                t = time.perf_counter()
                client.get(f"{base}/nbdeploy/api/version").raise_for_status()
                trips.append(time.perf_counter() - t)
        return times, statistics.median(trips), max(trips)
    finally:
        stream.client.close()
        proc.terminate()
        proc.wait(30)


def idle_cpu(root: Path, live: int, seconds: float) -> tuple[float, float, int]:
    """(% of one core with the watcher, % without, rescans during the idle window)."""
    ws = Workspace.create(root / "idle-ws")
    (root / "m2.txt").write_text("1")
    Model.register(root / "m2.txt", "m", workspace=ws)
    services = [deploy(f"idle-{i}", ["m:1"], InferenceConfig(str(root / "score.py")), ProcessDeploymentConfig(), workspace=ws)
                for i in range(live)]
    try:
        for svc in services:
            svc.wait_for_deployment()
        c0, t0 = time.process_time(), time.perf_counter()
        time.sleep(seconds)
        without = (time.process_time() - c0) / (time.perf_counter() - t0) * 100
        watcher = WorkspaceWatcher(Workspace(ws.path)).start()
        watcher.snapshot()
        time.sleep(1)  # past the first scan
        scans = watcher.scans
        c0, t0 = time.process_time(), time.perf_counter()
        time.sleep(seconds)
        with_watcher = (time.process_time() - c0) / (time.perf_counter() - t0) * 100
        rescans = watcher.scans - scans
        watcher.stop()
        return with_watcher, without, rescans
    finally:
        for svc in services:
            svc.delete()


def seed(ws: Workspace, services: int, versions: int) -> None:
    with ws.transaction() as conn:
        for i in range(versions):
            rec = ModelRecord(name=f"model-{i % 20}", version=0, created_time="2026-01-01T00:00:00+00:00", created_by="bench",
                              description=f"version {i}", framework="ScikitLearn", framework_version=None, kind="file",
                              root="m.pkl", size=1000 + i, digest="sha256:" + "0" * 64,
                              tags={"team": f"t{i % 10}", "idx": str(i)}, properties={})
            store.insert_model(conn, rec, [FileEntry("m.pkl", "0" * 64, 1000 + i, 0o644)])
    spec = {"models": ["model-0:1"], "inference_config": {}, "deployment_config": {"computeType": "process"}, "bundle": {}}
    records = ServiceStore(ws)
    for i in range(services):
        records.create(f"rec-{i:03d}", "process", spec, ["model-0:1"], {"idx": str(i)}, {}, None, None)


def panel_load(root: Path, services: int, versions: int, repeat: int) -> tuple[float, float, list[float], dict[str, int]]:
    """(first open as soon as the server answers, first open 5 s after start, warm opens, answer sizes)."""
    ws = Workspace.create(root / "load-ws")
    seed(ws, services, versions)
    routes = ["version", "services", "models", "targets"]
    sizes: dict[str, int] = {}

    def open_panel(client: httpx.Client, base: str, pool: ThreadPoolExecutor) -> float:
        def get(route: str) -> None:
            answer = client.get(f"{base}/nbdeploy/api/{route}")
            answer.raise_for_status()
            sizes[route] = len(answer.content)
        t = time.perf_counter()
        list(pool.map(get, routes))
        return time.perf_counter() - t

    firsts: list[float] = []
    warm: list[float] = []
    try:
        for delay in (0.0, 5.0):
            proc, base = start_server(root, ws.path)
            try:
                time.sleep(delay)
                with httpx.Client(headers={"Authorization": f"token {TOKEN}"}, trust_env=False, timeout=120) as client, \
                        ThreadPoolExecutor(len(routes)) as pool:
                    firsts.append(open_panel(client, base, pool))
                    if delay:
                        warm = [open_panel(client, base, pool) for _ in range(repeat)]
                        docs = client.get(f"{base}/nbdeploy/api/services").json()["services"]
                        models = client.get(f"{base}/nbdeploy/api/models").json()["models"]
                        assert len(docs) == services and sum(len(m["versions"]) for m in models) == versions
            finally:
                proc.terminate()
                proc.wait(30)
        return firsts[0], firsts[1], warm, sizes
    finally:
        for name in ServiceStore(ws).names():
            ServiceStore(ws).delete(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--versions", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--live", type=int, default=3, help="Healthy process services while measuring idle CPU")
    ap.add_argument("--idle-s", type=float, default=10.0)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nbdeploy-bench-lab-")).absolute()
    try:
        latency, trip, trip_max = push_latency(root, args.repeat)
        cpu, cpu_anchor, rescans = idle_cpu(root, args.live, args.idle_s)
        cold, after_start, warm, sizes = panel_load(root, args.services, args.versions, args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:7.1f} ms (max {max(values) * 1000:.1f})"
    rows = [
        ("change -> client: Model.add_tags() called -> models event", ms(latency["tag"]), f"{statistics.median(latency['tag']):.2f} of 1 s"),
        ("change -> client: deploy() called -> service event", ms(latency["deploy"]), f"{statistics.median(latency['deploy']):.2f} of 1 s"),
        ("change -> client: target turns Healthy (no commit) -> Healthy event", ms(latency["healthy"]), f"{statistics.median(latency['healthy']):.2f} of 1 s"),
        ("change -> client: delete() called -> Deleting/removed event", ms(latency["delete"]), f"{statistics.median(latency['delete']):.2f} of 1 s"),
        ("  anchor: GET /nbdeploy/api/version round trip", f"{trip * 1000:7.1f} ms (max {trip_max * 1000:.1f})", ""),
        (f"watcher CPU, nothing changes ({args.live} Healthy services, {args.idle_s:.0f} s)", f"{cpu:7.2f} % of a core",
         f"{cpu / 2.0:.2f} of 2 %; {rescans} rescans"),
        ("  anchor: same process, no watcher", f"{cpu_anchor:7.2f} % of a core", ""),
        (f"panel data load, first open as the server answers ({args.services} service records, {args.versions} versions)",
         f"{cold * 1000:7.1f} ms", f"{cold:.2f} of 1 s"),
        ("panel data load, first open 5 s after server start (prewarmed)", f"{after_start * 1000:7.1f} ms", f"{after_start:.2f} of 1 s"),
        ("panel data load, warm", ms(warm), f"{statistics.median(warm):.2f} of 1 s"),
        ("  answer sizes", ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in sizes.items()), ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':<28}  ratio to budget")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:<28}  {ratio}")


if __name__ == "__main__":
    main()
