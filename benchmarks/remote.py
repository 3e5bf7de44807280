"""Shipping images to a remote Docker engine over TLS, without a registry.

Prints two tables:

1. bytes sent and time for ``ship_image`` of a first image (the remote has none of its layers, base included)
   and of a model-only update (a new model layer on the same base and score.py), against the anchor measured
   in the same run: the whole image as ``docker save | docker load`` would send it (the same local save,
   unfiltered, loaded on the same engine), with the ratio;
2. a model-only update shipped to every edge device (``tests/engines/edge.sh up``; skipped without devices)
   with :func:`ship_image_to_many` (the local image read once, devices in parallel), bytes per device, against
   the anchor ``ship_image`` to each device in turn;
3. TLS connect time to the remote engine (``EngineConnection.check()``: connect, handshake, ``/version``),
   median of N, against the same call to the local engine over its unix socket.

Needs ``bash tests/engines/docker.sh up`` and ``bash tests/engines/aci.sh up``. The first-image row removes
the base image from the aci engine first (``--warm`` keeps it: then the row shows a base already there).
Run: ``.venv/bin/python benchmarks/remote.py [--model-mb 20] [--connects 20] [--warm]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from nbdeploy.builders.docker_builder import docker_client
from nbdeploy.remote import EngineConnection, ship_image, ship_image_to_many

ROOT = Path(__file__).resolve().parents[1]
BASE = os.environ.get("NBDEPLOY_TEST_BASE_IMAGE", "nbdeploy/python-base:3.11-bookworm")
REPO = "nbdeploy-bench/remote"
RUN = uuid.uuid4().hex
SCORE = b"import os\nprint(os.path.getsize('/app/model.bin'))\n"


def aci_connection() -> EngineConnection:
    result = subprocess.run(["bash", str(ROOT / "tests/engines/aci.sh"), "env"], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit("the aci engine is not running: bash tests/engines/aci.sh up")
    env = dict(word.split("=", 1) for word in result.stdout.split()[1:])
    return EngineConnection.from_env(env, name="aci")


def edge_connections() -> dict[str, EngineConnection]:
    result = subprocess.run(["bash", str(ROOT / "tests/engines/edge.sh"), "list"], capture_output=True, text=True)
    found = {}
    for line in result.stdout.splitlines():
        words = line.split()
        opts = dict(zip(words[4::2], words[5::2]))
        found[words[3]] = EngineConnection(opts["--url"], tls_ca=opts["--tls-ca"], tls_cert=opts["--tls-cert"],
                                           tls_key=opts["--tls-key"], name=words[3])
    return found


def fleet_rows(local: Any, model_mb: int, folder: Path) -> list[str]:
    """Model-only update to every edge device: ship_image_to_many vs ship_image one device at a time."""
    conns = edge_connections()
    if not conns:
        return ["(no edge devices: bash tests/engines/edge.sh up 3)"]
    clients = {name: conn.client() for name, conn in conns.items()}
    tags = [build(local, f"{REPO}:fleet{i}", model_mb, folder) for i in range(3)]
    try:
        ship_image_to_many(local, clients, tags[0])  # the base (and score.py layer) on every device
        t = time.monotonic()
        many = ship_image_to_many(local, clients, tags[1])
        many_s = time.monotonic() - t
        t = time.monotonic()
        one_by_one = {name: ship_image(local, client, tags[2]) for name, client in clients.items()}
        seq_s = time.monotonic() - t
    finally:
        for client in clients.values():
            for tag in tags:
                remote_remove(client, tag)
        for tag in tags:
            local.images.remove(tag, force=True)
    per_device = [r.bytes_sent for r in many.values() if not isinstance(r, Exception)]
    errors = [f"{n}: {r}" for n, r in many.items() if isinstance(r, Exception)]
    rows = [
        "| model-only update to N devices | devices | bytes per device (max) | time | ratio |",
        "|---|---|---|---|---|",
        (f"| ship_image_to_many (image read once, parallel) | {len(per_device)}/{len(clients)} "
         f"| {fmt_mb(max(per_device, default=0))} | {many_s:.1f} s | x{many_s / seq_s:.2f} |"),
        (f"| anchor: ship_image to each device in turn | {len(one_by_one)} "
         f"| {fmt_mb(max(r.bytes_sent for r in one_by_one.values()))} | {seq_s:.1f} s | 1 |"),
    ]
    return rows + [f"error: {e}" for e in errors]


def build(local: Any, tag: str, model_mb: int, folder: Path) -> str:
    context = folder / tag.replace("/", "_").replace(":", "_")
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {BASE}\nCOPY score.py /app/score.py\nCOPY model.bin /app/model.bin\n")
    # a score.py unique to this run: the builder cache offers only this run's layer for it
    (context / "score.py").write_bytes(b"# " + RUN.encode() + b"\n" + SCORE)
    (context / "model.bin").write_bytes(os.urandom(model_mb * 1_000_000))
    local.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    return tag


def anchor_full_load(local: Any, remote: Any, image: str) -> tuple[int, float]:
    """The whole save archive loaded on the remote: what `docker save | docker load` sends."""
    remote_remove(remote, image)
    started = time.monotonic()
    sent = 0

    def counted() -> Any:
        nonlocal sent
        for chunk in local.api.get_image(image):
            sent += len(chunk)
            yield chunk

    for _ in remote.api.load_image(counted(), quiet=True):
        pass
    return sent, time.monotonic() - started


def remote_remove(remote: Any, image: str) -> None:
    try:
        remote.images.remove(image, force=True)
    except Exception:  # noqa: BLE001 - not there
        pass


def fmt_mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-mb", type=int, default=20)
    parser.add_argument("--connects", type=int, default=20)
    parser.add_argument("--warm", action="store_true", help="keep the base image on the remote engine")
    args = parser.parse_args()

    local = docker_client(base_url="unix:///var/run/docker.sock")
    conn = aci_connection()
    remote = conn.client()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        v1 = build(local, f"{REPO}:v1", args.model_mb, folder)
        v2 = build(local, f"{REPO}:v2", args.model_mb, folder)
        try:
            for tag in (v1, v2):
                remote_remove(remote, tag)
            if not args.warm:
                remote_remove(remote, BASE)
            first = ship_image(local, remote, v1)
            update = ship_image(local, remote, v2)
            out = remote.containers.run(v2, ["python3", "/app/score.py"], remove=True).decode().strip()
            assert out == str(args.model_mb * 1_000_000), out
            anchor_bytes, anchor_s = anchor_full_load(local, remote, v2)
        finally:
            for tag in (v1, v2):
                remote_remove(remote, tag)
                try:
                    local.images.remove(tag, force=True)
                except Exception:  # noqa: BLE001
                    pass
            ship_image(local, remote, BASE)  # leave the base on the remote, as the tests expect

    model = args.model_mb * 1_000_000
    print(f"\nShipping to {conn.url} over TLS (model {fmt_mb(model)}, base {BASE})\n")
    print("| image | layers sent | bytes sent | time | vs full save+load |")
    print("|---|---|---|---|---|")
    base_note = "base already there" if first.layer_bytes_skipped else "remote had none of it"
    print(f"| first image ({base_note}) | {first.layers_sent}/{first.layers} | {fmt_mb(first.bytes_sent)} "
          f"| {first.seconds:.1f} s | bytes x{first.bytes_sent / anchor_bytes:.2f} |")
    print(f"| model-only update | {update.layers_sent}/{update.layers} | {fmt_mb(update.bytes_sent)} "
          f"(model + {(update.bytes_sent - model) / 1e3:.0f} kB) | {update.seconds:.1f} s "
          f"| bytes x{update.bytes_sent / anchor_bytes:.3f}, time x{update.seconds / anchor_s:.2f} |")
    print(f"| anchor: model-only update as full save+load | {update.layers}/{update.layers} "
          f"| {fmt_mb(anchor_bytes)} | {anchor_s:.1f} s | 1 |")
    goal = "met" if update.bytes_sent <= model + 1_000_000 else "NOT met"
    print(f"\nGoal 'model-only update ships <= model size + 1 MB': {goal}.")

    with tempfile.TemporaryDirectory() as tmp:
        rows = fleet_rows(local, args.model_mb, Path(tmp))
    print()
    print("\n".join(rows))

    local_conn = EngineConnection("unix:///var/run/docker.sock")
    tls_times, unix_times = [], []
    for _ in range(args.connects):
        t = time.perf_counter()
        conn.check()
        tls_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        local_conn.check()
        unix_times.append(time.perf_counter() - t)
    tls_ms, unix_ms = statistics.median(tls_times) * 1e3, statistics.median(unix_times) * 1e3
    print(f"\n| connect + /version (median of {args.connects}) | time | ratio |")
    print("|---|---|---|")
    print(f"| remote engine, TCP + TLS (client certificate) | {tls_ms:.1f} ms | x{tls_ms / unix_ms:.1f} |")
    print(f"| anchor: local engine, unix socket | {unix_ms:.1f} ms | 1 |")


if __name__ == "__main__":
    main()
