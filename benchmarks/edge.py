"""The edge target on the three ``tests/engines/edge.sh`` devices (TLS engines in their own network namespaces).

Prints one table, each row against an anchor measured in the same run:

1. deploy to 3 devices whose engines already hold the base image (``edge.sh seed``) until all are Healthy
   (build, ship, canary wave, second wave), against the same app deployed to the ``local`` target;
2. bytes shipped per device for a model-only update (a new model of ``--model-mb`` MB), against the model's
   size (goal: <= model + 1 MB);
3. a device that was offline during an update, back online: ``reconcile()`` until it is Healthy on the new
   revision, against that update's time on the two online devices.

Needs ``bash tests/engines/docker.sh up`` and ``bash tests/engines/edge.sh up 3``.
Run: ``.venv/bin/python benchmarks/edge.py [--model-mb 20] [--steps]``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from nbdeploy.registry import Model
from nbdeploy.remote import EngineConnection
from nbdeploy.remote.store import EngineStore
from nbdeploy.service import Webservice, deploy
from nbdeploy.specs import Environment, InferenceConfig
from nbdeploy.targets.edge import EdgeDeploymentConfig
from nbdeploy.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
EDGE = ROOT / "tests" / "engines" / "edge.sh"
BASE = os.environ.get("NBDEPLOY_TEST_BASE_IMAGE", "nbdeploy/python-base:3.11-bookworm")
RUN = uuid.uuid4().hex[:6]
SCORE = ("import os, json\n\ndef init():\n    global size\n"
         "    size = os.path.getsize(os.path.join(os.environ['AZUREML_MODEL_DIR'], 'model.bin'))\n\n"
         "def run(raw):\n    return size\n")


class Lines:
    """A progress sink that keeps the lines (the shipped bytes are read from them)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.t0 = time.monotonic()
        self.timed: list[tuple[float, str]] = []

    def state(self, service: str, state: str, reason: str = "") -> None:
        pass

    def line(self, service: str, text: str) -> None:
        self.lines.append(text)
        self.timed.append((time.monotonic() - self.t0, text))

    def finish(self, service: str, state: str, reason: str = "", scoring_uri: str | None = None) -> None:
        pass

    def shipped(self) -> dict[str, int]:
        out = {}
        for line in self.lines:
            if m := re.match(r"(\S+): image there \(\d+/\d+ layers sent, (\d+) bytes\)", line):
                out[m.group(1)] = int(m.group(2))
        return out


def edge(*args: str) -> str:
    return subprocess.run(["bash", str(EDGE), *args], capture_output=True, text=True, check=True, timeout=300).stdout


def model(ws: Workspace, folder: Path, mb: int, n: int) -> Model:
    path = folder / f"m{n}" / "model.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(mb * 2**20))
    return Model.register(workspace=ws, model_path=str(path), model_name=f"bench{RUN}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-mb", type=int, default=20)
    parser.add_argument("--steps", action="store_true", help="print the first deploy's progress lines, timed")
    args = parser.parse_args()
    lines = [line for line in edge("list").splitlines() if line.startswith("nbdeploy device add")]
    if len(lines) < 3:
        sys.exit("needs 3 devices: bash tests/engines/edge.sh up 3")
    edge("seed")
    folder = Path(tempfile.mkdtemp(prefix="nbdeploy-bench-edge-"))
    ws = Workspace.create(folder / "ws")
    store = EngineStore("device", ws)
    for line in lines[:3]:
        words = line.split()
        opts = dict(zip(words[4::2], words[5::2]))
        store.add(words[3], EngineConnection(opts["--url"], tls_ca=opts["--tls-ca"], tls_cert=opts["--tls-cert"],
                                             tls_key=opts["--tls-key"]), tags={"bench": RUN})
    (folder / "score.py").write_text(SCORE)
    env = Environment("bench-edge")
    env.docker.base_image = BASE
    ic = InferenceConfig(entry_script=str(folder / "score.py"), environment=env)
    m1 = model(ws, folder, args.model_mb, 1)
    name, anchor_name = f"be{RUN}", f"bl{RUN}"
    rows = []
    try:
        config = EdgeDeploymentConfig(device_selector=f"bench={RUN}", policy="at least 2", canary=1)
        t0 = time.monotonic()
        first = Lines()
        svc = deploy(name, [m1], ic, config, workspace=ws, sink=first)
        status = svc.wait_for_deployment(timeout_sec=300)
        fleet_s = time.monotonic() - t0
        assert status.details["healthy"] == 3, status.reason
        from nbdeploy.targets.local_docker import LocalDeploymentConfig

        t0 = time.monotonic()
        local = deploy(anchor_name, [m1], ic, LocalDeploymentConfig(), workspace=ws)
        local.wait_for_deployment(timeout_sec=300)
        local_s = time.monotonic() - t0
        built = next(at for at, text in first.timed if text.startswith("docker-image "))
        waves = next(at for at, text in first.timed if text.startswith("wave 1/"))
        rows.append(("3 devices, base image there -> all Healthy",
                     (f"{fleet_s:.1f} s (build {built:.1f} + connect/save/ship {waves - built:.1f} + waves "
                      f"{fleet_s - waves:.1f})"), "<= 20 s",
                     f"local target: {local_s:.1f} s", f"x{fleet_s / local_s:.2f}"))

        m2 = model(ws, folder, args.model_mb, 2)
        sink = Lines()
        t0 = time.monotonic()
        Webservice(name, ws).update(models=[m2], sink=sink)
        update_s = time.monotonic() - t0
        shipped = sink.shipped()
        worst = max(shipped.values())
        size = args.model_mb * 2**20
        rows.append(("bytes shipped per device, model-only update (max of 3)", f"{worst / 1e6:.2f} MB",
                     f"<= {(size + 2**20) / 1e6:.2f} MB", f"model: {size / 1e6:.2f} MB", f"x{worst / size:.3f}"))

        m3 = model(ws, folder, args.model_mb, 3)
        edge("offline", "edge3")
        t0 = time.monotonic()
        Webservice(name, ws).update(models=[m3], sink=Lines())
        online_update_s = time.monotonic() - t0
        edge("online", "edge3")
        t0 = time.monotonic()
        status = Webservice(name, ws).reconcile()
        reconcile_s = time.monotonic() - t0
        assert status.details["healthy"] == 3, status.reason
        rows.append(("offline device back online -> converged after reconcile", f"{reconcile_s:.1f} s", "<= 10 s",
                     f"the update on 2 online devices: {online_update_s:.1f} s",
                     f"x{reconcile_s / online_update_s:.2f}"))
        rows.append(("(model-only update to 3 devices, for reference)", f"{update_s:.1f} s", "", "", ""))
    finally:
        edge("online", "edge3")
        for service in (name, anchor_name):
            try:
                Webservice(service, ws).delete(delete_image=True)
            except Exception as exc:  # noqa: BLE001 - not deployed
                print(f"cleanup of {service}: {exc}", file=sys.stderr)
        for saved in store.list():  # the images shipped to the devices (the seeded base image stays)
            client = saved.connection.client(timeout=30)
            for image in client.images.list(name=f"nbdeploy/{name}"):
                client.images.remove(image.id, force=True)
            client.close()
    if args.steps:
        for at, text in first.timed:
            print(f"{at:6.1f} s  {text}")
    print("| measure | value | goal | anchor | ratio |\n|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
