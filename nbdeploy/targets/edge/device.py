"""One device: run a revision's container there, keeping the last-known-good one until the new one is Healthy.

Everything here talks to the device's own Docker engine over its saved TLS connection; nothing of ours runs
on the device. :func:`converge` is idempotent: a device already Healthy on the revision is left alone.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from nbdeploy.builders.image import CONTAINER_PORT
from nbdeploy.errors import EngineUnavailable, NbdeployError
from nbdeploy.remote.connection import EngineConnection
from nbdeploy.targets.edge.policy import DeviceRecord, DeviceState, now_iso
from nbdeploy.targets.edge.waves import backoff_delay
from nbdeploy.targets.net import probe

log = logging.getLogger(__name__)

ENGINE_TIMEOUT_S = 5.0
"""An engine that does not answer within this is Offline (devices lose their network; do not hang on them)."""
OP_TIMEOUT_S = 300.0
PORT_BASE, PORT_SPAN, PORT_TRIES = 20000, 10000, 20
KEYS_DIR = "/run/nbdeploy-keys"
STOP_GRACE_S = 5
IMAGE_UID = 1000
Report = Callable[[str], None]


@dataclass
class ModulePlan:
    """What to run on every device for one revision (kept in the handle)."""

    service: str
    revision: int
    image: str
    image_id: str
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    cpu_cores: float | None = None
    memory_gb: float | None = None
    restart_policy: str = "always"
    keys: tuple[str, str] | None = None
    max_retries: int = 2
    retry_backoff_s: float = 2.0
    device_timeout_s: float = 120.0

    @property
    def container_name(self) -> str:
        return container_name(self.service, self.revision)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ModulePlan:
        doc = dict(doc)
        if doc.get("keys"):
            doc["keys"] = tuple(doc["keys"])
        return cls(**doc)


def container_name(service: str, revision: int) -> str:
    return f"nbdeploy-{service}-r{revision}"


def device_host(conn: EngineConnection) -> str:
    """The address the device's published ports are reached at: its engine URL's host."""
    return urlsplit(conn.url.replace("tcp://", "http://", 1)).hostname or "127.0.0.1"


def connect(conn: EngineConnection, timeout: float = ENGINE_TIMEOUT_S, op_timeout: float = OP_TIMEOUT_S) -> Any:
    """A client for the device's engine: EngineUnavailable when it does not answer within ``timeout``; later
    calls (loading an image, stopping a container) may take up to ``op_timeout``."""
    client = conn.client(timeout=timeout)
    client.api.timeout = op_timeout
    return client


def service_containers(client: Any, service: str) -> list[Any]:
    """This service's containers on the device (any revision), newest revision first."""
    found = client.containers.list(all=True, filters={"label": [f"nbdeploy.service={service}", "nbdeploy.target=edge"]})
    return sorted(found, key=lambda c: int(c.labels.get("nbdeploy.revision", "0")), reverse=True)


def observe(client: Any, plan: ModulePlan, record: DeviceRecord) -> DeviceRecord:
    """The device's state for ``plan``'s revision now (one inspect and, when running, one health probe)."""
    docker = _docker()
    try:
        container = client.containers.get(plan.container_name)
    except docker.errors.NotFound:
        running = [c for c in service_containers(client, plan.service) if c.status == "running"]
        runs = int(running[0].labels.get("nbdeploy.revision", "0")) if running else None
        if record.state == DeviceState.FAILED:
            return replace(record, runs=runs)
        also = f"runs revision {runs}; " if runs else ""
        return _with(
            record,
            DeviceState.PENDING,
            f"{also}not started on this device yet (nbdeploy service reconcile)",
            idle=True,
            runs=runs,
        )
    state = container.attrs["State"]
    if state["Status"] in ("exited", "dead"):
        return _with(
            record,
            DeviceState.FAILED,
            f"the container exited with code {state.get('ExitCode')}",
            evidence=_logs(container, 30),
        )
    port = record.port or published_port(container)
    ok, detail = probe(f"http://{record.address}:{port}/health/ready", timeout=2)
    if ok:
        return _with(record, DeviceState.HEALTHY, "", port=port, runs=plan.revision)
    return _with(record, DeviceState.PENDING, f"init() is running ({detail})", port=port)


def converge(
    conn: EngineConnection,
    plan: ModulePlan,
    record: DeviceRecord,
    report: Report,
    sleep: Callable[[float], None] = time.sleep,
    remove_old: bool = True,
) -> DeviceRecord:
    """Make the device run ``plan``'s revision, or leave it on its last-known-good container.

    Per attempt: stop the last-known-good container (kept, not removed), run the new one, wait until it is
    Healthy (``device_timeout_s``); then remove the old one (``remove_old``; an update leaves it stopped for
    ``retire``, or for ``abort`` to start again). A failed attempt removes the new container, starts the old
    one again, and waits the backoff before the next attempt. The image must be on the device.
    """
    name = record.name
    try:
        client = connect(conn)
    except EngineUnavailable as exc:
        return offline(record, str(exc))
    try:
        current = _get(client, plan.container_name)
        if current is not None and current.status == "running":
            seen = observe(client, plan, record)
            if seen.state == DeviceState.HEALTHY:
                if remove_old:
                    _remove_older(client, plan, keep=current)
                return seen
        last_good = _last_good(client, plan)
        port = plan.port or record.port or (published_port(last_good) if last_good is not None else None)
        failure = ""
        evidence = ""
        for attempt in range(1, plan.max_retries + 2):
            if attempt > 1:
                wait = backoff_delay(attempt - 1, plan.retry_backoff_s)
                report(
                    f"{name}: attempt {attempt - 1} failed ({failure}); retry {attempt - 1}/{plan.max_retries} "
                    f"in {wait:.0f} s"
                )
                sleep(wait)
            if last_good is not None:
                last_good.reload()
                if last_good.status == "running":
                    last_good.stop(timeout=STOP_GRACE_S)
            container, port = _run(client, plan, port)
            ok, failure, evidence = _wait_healthy(container, record.address or "", port, plan.device_timeout_s)
            if ok:
                if plan.restart_policy != "no":
                    container.update(restart_policy={"Name": plan.restart_policy})
                if remove_old:
                    _remove_older(client, plan, keep=container)
                report(
                    f"{name}: revision {plan.revision} Healthy on port {port}"
                    + (f" after {attempt} attempts" if attempt > 1 else "")
                )
                return DeviceRecord(
                    name, DeviceState.HEALTHY, "", now_iso(), record.address, port, attempt, runs=plan.revision
                )
            container.remove(force=True)
            if last_good is not None:
                last_good.start()
        kept, runs = "", None
        if last_good is not None:
            runs = int(last_good.labels.get("nbdeploy.revision", "0")) or None
            back, why, _ = _wait_healthy(
                last_good, record.address or "", published_port(last_good) or port or 0, plan.device_timeout_s
            )
            kept = f"; rolled back to revision {last_good.labels.get('nbdeploy.revision')}" + (
                "" if back else f", which is not Healthy either ({why})"
            )
        report(f"{name}: revision {plan.revision} failed after {plan.max_retries + 1} attempt(s): {failure}{kept}")
        return DeviceRecord(
            name,
            DeviceState.FAILED,
            failure + kept,
            now_iso(),
            record.address,
            port,
            plan.max_retries + 1,
            evidence,
            runs=runs,
        )
    except EngineUnavailable as exc:
        return offline(record, str(exc))
    except NbdeployError as exc:
        return _with(record, DeviceState.FAILED, str(exc))
    except Exception as exc:  # noqa: BLE001 - the engine's API errors, a connection lost mid-way
        if _is_connection_error(exc):
            return offline(record, str(exc))
        return _with(
            record, DeviceState.FAILED, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        )
    finally:
        client.close()


def offline(record: DeviceRecord, why: str) -> DeviceRecord:
    """The record of a device that did not answer (keeps the first time it was seen offline, and what it ran)."""
    since = record.since if record.state == DeviceState.OFFLINE and record.since else now_iso()
    return DeviceRecord(
        record.name, DeviceState.OFFLINE, why, since, record.address, record.port, record.attempts, runs=record.runs
    )


def remove_revision(client: Any, service: str, revision: int) -> None:
    container = _get(client, container_name(service, revision))
    if container is not None:
        container.remove(force=True)


def ensure_running(client: Any, service: str, revision: int) -> None:
    container = _get(client, container_name(service, revision))
    if container is not None and container.status != "running":
        container.start()


def published_port(container: Any) -> int | None:
    container.reload()
    bindings = (container.attrs["NetworkSettings"].get("Ports") or {}).get(f"{CONTAINER_PORT}/tcp") or []
    if not bindings:
        bindings = (container.attrs["HostConfig"].get("PortBindings") or {}).get(f"{CONTAINER_PORT}/tcp") or []
    for binding in bindings:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


def container_logs(client: Any, service: str, revision: int, num_lines: int) -> str:
    container = _get(client, container_name(service, revision))
    return _logs(container, num_lines) if container is not None else ""


# -- helpers -------------------------------------------------------------------------------------------


def _run(client: Any, plan: ModulePlan, port: int | None) -> tuple[Any, int]:
    """Create the revision's container (keys put in before it starts), start it; (container, host port)."""
    _remove(client, plan.container_name)
    env = dict(plan.env)
    if plan.keys:
        env["NBDEPLOY_AUTH_KEYS_FILE"] = f"{KEYS_DIR}/keys.json"
    kwargs: dict[str, Any] = {
        "name": plan.container_name,
        "environment": env,
        "detach": True,
        "labels": {
            **plan.labels,
            "nbdeploy.managed": "true",
            "nbdeploy.target": "edge",
            "nbdeploy.service": plan.service,
            "nbdeploy.revision": str(plan.revision),
        },
        "ports": {f"{CONTAINER_PORT}/tcp": port},
        "restart_policy": {"Name": "no"},
    }
    if plan.memory_gb:
        kwargs["mem_limit"] = kwargs["memswap_limit"] = f"{int(plan.memory_gb * 1024)}m"
    if plan.cpu_cores:
        kwargs["nano_cpus"] = int(plan.cpu_cores * 1e9)
    docker = _docker()
    candidates = [port] if port else [stable_port(plan.service) + i for i in range(PORT_TRIES)]
    for candidate in candidates:
        kwargs["ports"] = {f"{CONTAINER_PORT}/tcp": candidate}
        container = client.containers.create(plan.image, **kwargs)
        if plan.keys:
            container.put_archive("/", _keys_archive(plan.keys))
        try:
            container.start()
        except docker.errors.APIError as exc:
            container.remove(force=True)
            if len(candidates) > 1 and ("already allocated" in str(exc) or "address already in use" in str(exc)):
                continue
            raise
        return container, candidate
    raise NbdeployError(f"no free port on the device among {candidates[0]}-{candidates[-1]}; give one with --port")


def stable_port(service: str) -> int:
    """The port a service publishes on devices unless told (the same on every device and revision, so a
    restarted container keeps it; Docker gives an unpinned published port a new number at each start)."""
    import hashlib

    return PORT_BASE + int(hashlib.sha256(service.encode()).hexdigest(), 16) % PORT_SPAN


def _keys_archive(keys: tuple[str, str]) -> bytes:
    """A tar with ``run/nbdeploy-keys/keys.json`` readable by the image's user only."""
    data = json.dumps({"primaryKey": keys[0], "secondaryKey": keys[1]}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = tarfile.TarInfo(KEYS_DIR.lstrip("/"))
        folder.type, folder.mode, folder.uid, folder.gid = tarfile.DIRTYPE, 0o700, IMAGE_UID, IMAGE_UID
        tar.addfile(folder)
        info = tarfile.TarInfo(f"{KEYS_DIR.lstrip('/')}/keys.json")
        info.size, info.mode, info.uid, info.gid = len(data), 0o600, IMAGE_UID, IMAGE_UID
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _wait_healthy(container: Any, host: str, port: int, timeout: float) -> tuple[bool, str, str]:
    """(healthy, why not, evidence) after polling the container and its /health/ready."""
    deadline = time.monotonic() + timeout
    detail = "init() is running"
    while time.monotonic() < deadline:
        container.reload()
        state = container.attrs["State"]
        if state["Status"] in ("exited", "dead"):
            return False, f"the container exited with code {state.get('ExitCode')}", _logs(container, 40)
        ok, detail = probe(f"http://{host}:{port}/health/ready", timeout=2)
        if ok:
            return True, "", ""
        time.sleep(0.2)
    return False, f"not Healthy after {timeout:.0f} s ({detail})", _logs(container, 40)


def _last_good(client: Any, plan: ModulePlan) -> Any | None:
    """The newest container of another revision of this service (running, or stopped by an interrupted swap)."""
    for container in service_containers(client, plan.service):
        if container.labels.get("nbdeploy.revision") != str(plan.revision):
            return container
    return None


def _remove_older(client: Any, plan: ModulePlan, keep: Any) -> None:
    for container in service_containers(client, plan.service):
        if container.id != keep.id:
            container.remove(force=True)


def _get(client: Any, name: str) -> Any | None:
    docker = _docker()
    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


def _remove(client: Any, name: str) -> None:
    container = _get(client, name)
    if container is not None:
        container.remove(force=True)


def _logs(container: Any, num_lines: int) -> str:
    try:
        return container.logs(tail=num_lines).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - evidence is best effort
        return ""


def _with(
    record: DeviceRecord,
    state: DeviceState,
    reason: str,
    port: int | None = None,
    evidence: str = "",
    idle: bool = False,
    runs: int | None = None,
) -> DeviceRecord:
    since = record.since if record.state == state and record.since else now_iso()
    return DeviceRecord(
        record.name,
        state,
        reason,
        since,
        record.address,
        port or record.port,
        record.attempts,
        evidence or record.evidence,
        idle,
        runs,
    )


def _is_connection_error(exc: BaseException) -> bool:
    import requests

    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, TimeoutError)):
            return True
        current = current.__cause__ or current.__context__
    return False


def _docker() -> Any:
    from nbdeploy.builders.docker_builder import import_docker

    return import_docker()
