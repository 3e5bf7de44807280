"""The ``edge`` target: one module on a fleet of devices (Docker engines saved with ``nbdeploy device add``).

``start`` ships the image to every device that answers (each gets only the layers it lacks), refuses
devices of another architecture before shipping, then converges the devices in waves: the canary devices
first, the rest only when no canary failed. Each device keeps its last-known-good container until the new
one is Healthy there and goes back to it after ``max_retries`` failed attempts. Devices that do not answer
are Offline; :meth:`EdgeTarget.converge` (``nbdeploy service reconcile NAME``) converges them once they are
back: nothing of ours runs on the devices. The service state comes from the policy (``policy.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from nbdeploy.errors import EngineUnavailable, InvalidInput, InvalidSpec, NbdeployError
from nbdeploy.remote.connection import EngineConnection
from nbdeploy.remote.ship import progress_lines, ship_image, ship_image_to_many
from nbdeploy.remote.store import EngineStore, SavedEngine
from nbdeploy.targets.base import (
    Availability,
    Handle,
    RevisionSpec,
    Status,
    Target,
)
from nbdeploy.targets.edge import device as dev
from nbdeploy.targets.edge.arch import refuse_foreign_platforms
from nbdeploy.targets.edge.config import EdgeDeploymentConfig
from nbdeploy.targets.edge.policy import DeviceRecord, DeviceState, Policy, summarize
from nbdeploy.targets.edge.records import load_records, save_records
from nbdeploy.targets.edge.waves import plan_waves
from nbdeploy.targets.endpoint import Endpoint
from nbdeploy.targets.options import Option

if TYPE_CHECKING:
    from nbdeploy.builders.base import BuildRequest

log = logging.getLogger(__name__)
STATUS_TIMEOUT_S = 3.0
STATUS_OP_TIMEOUT_S = 15.0
PARALLEL = 8
T = TypeVar("T")


class EdgeTarget(Target):
    """A fleet of devices, each a Docker engine that may be offline; rolled out in waves with rollback."""

    name = "edge"
    commands = (
        ("edge", "nbdeploy.cli.edge:edge", "Export edge services as IoT Edge manifests or air-gapped bundles."),
    )
    aliases = ("iotedge",)
    description = "A module on a fleet of devices (saved Docker engines), in waves, with per-device rollback."
    config_class = EdgeDeploymentConfig
    extra = "docker"
    options = (
        Option(
            "--devices",
            "devices",
            str,
            "Devices to deploy to, comma-separated (saved with nbdeploy device add).",
            metavar="A,B",
        ),
        Option(
            "--device-selector",
            "device_selector",
            str,
            "Devices whose tags match, e.g. site=plant-3.",
            metavar="K=V[,K=V]",
        ),
        Option(
            "--policy",
            "policy",
            str,
            "When the service is Healthy: all, 'at least N', or N% of the devices.",
            metavar="POLICY",
        ),
        Option(
            "--canary",
            "canary",
            int,
            "Devices updated first; the rest follow only if none of them fails (default 1; 0: all at once).",
        ),
        Option("--max-retries", "max_retries", int, "Attempts after the first on each device (default 2)."),
        Option(
            "--retry-backoff-s",
            "retry_backoff_s",
            float,
            "Seconds before the first retry, doubled after each (default 2, at most 300).",
        ),
        Option(
            "--port",
            "port",
            int,
            "Port published on each device (default: the one the service uses there, "
            "else one derived from its name, 20000-29999).",
        ),
        Option("--cpu", "cpu_cores", float, "CPU cores the module may use."),
        Option("--memory-gb", "memory_gb", float, "Memory limit in GB."),
        Option(
            "--restart-policy",
            "restart_policy",
            str,
            "Docker restart policy once Healthy (default always).",
            ("always", "unless-stopped", "on-failure", "no"),
        ),
    )

    @classmethod
    def availability(cls) -> Availability:
        from nbdeploy.targets.local_docker import docker_availability

        return docker_availability()  # images are built on the local engine, then shipped

    def artifact_kind(self, request: BuildRequest) -> str | None:
        if not isinstance(request.config, EdgeDeploymentConfig):
            raise InvalidSpec(
                "deployment_config",
                f"the edge target needs an EdgeDeploymentConfig, got {type(request.config).__name__}",
            )
        return "docker-image"

    # -- devices ------------------------------------------------------------------------------------
    def devices_for(self, config: EdgeDeploymentConfig) -> list[SavedEngine]:
        """The saved devices ``config`` names or selects (DeviceNotFound / InvalidInput when none)."""
        store = EngineStore("device", self.workspace)
        if config.devices:
            return [store.get(name) for name in config.devices]
        if config.device_selector:
            found = store.list(config.selector())
            if not found:
                raise InvalidInput(f"No saved device matches {config.device_selector!r}; see `nbdeploy device list`.")
            return found
        raise InvalidInput(
            "The edge target needs devices: --devices a,b or --device-selector key=value "
            "(devices are saved with `nbdeploy device add`)."
        )

    def _connections(self, handle: Handle) -> dict[str, EngineConnection | None]:
        store = EngineStore("device", self.workspace)
        out: dict[str, EngineConnection | None] = {}
        for name in handle["device_names"]:
            try:
                out[name] = store.get(name).connection
            except NbdeployError:
                out[name] = None
        return out

    # -- verbs --------------------------------------------------------------------------------------
    def start(self, spec: RevisionSpec, previous: Handle | None = None) -> Handle:
        config = spec.config
        if not isinstance(config, EdgeDeploymentConfig):
            raise InvalidSpec(
                "deployment_config", f"the edge target needs an EdgeDeploymentConfig, got {type(config).__name__}"
            )
        built = spec.artifact
        if built is None or built.kind != "docker-image":
            raise InvalidSpec(
                "artifact", "the edge target runs a built image; build the revision first (deploy() does)"
            )
        devices = self.devices_for(config)
        plan = dev.ModulePlan(
            service=spec.service,
            revision=spec.revision,
            image=built.reference,
            image_id=built.id or "",
            env={
                "SERVICE_NAME": spec.service,
                "SERVICE_VERSION": str(spec.revision),
                **({"SCORING_TIMEOUT_MS": str(config.scoring_timeout_ms)} if config.scoring_timeout_ms else {}),
            },
            labels={"nbdeploy.models": ",".join(spec.bundle.model_ids), "nbdeploy.bundle": spec.bundle.digest},
            port=config.port,
            cpu_cores=config.cpu_cores,
            memory_gb=config.memory_gb,
            restart_policy=config.restart_policy,
            keys=spec.keys,
            max_retries=config.max_retries,
            retry_backoff_s=config.retry_backoff_s,
            device_timeout_s=config.device_timeout_s,
        )
        handle: Handle = {
            "service": spec.service,
            "revision": spec.revision,
            "plan": plan.to_dict(),
            "policy": config.policy,
            "canary": config.canary,
            "device_names": [d.name for d in devices],
            "records_file": str(self.workspace.service_dir(spec.service, create=True) / f"edge-r{spec.revision}.json"),
        }
        records = {d.name: DeviceRecord(d.name, address=dev.device_host(d.connection)) for d in devices}
        clients = self._connect_all(devices, records)
        try:
            self._check_platforms(plan.image, clients)
            self._ship(plan.image, clients, records)
            self._roll_waves(plan, devices, records, config.canary, remove_old=previous is None)
        finally:
            for client in clients.values():
                client.close()
        return save_records(handle, records)

    def _connect_all(self, devices: list[SavedEngine], records: dict[str, DeviceRecord]) -> dict[str, Any]:
        def one(saved: SavedEngine) -> Any:
            try:
                return dev.connect(saved.connection)
            except EngineUnavailable as exc:
                return exc

        clients = {}
        for saved, outcome in zip(devices, _parallel(one, devices), strict=True):
            if isinstance(outcome, EngineUnavailable):
                records[saved.name] = dev.offline(records[saved.name], str(outcome))
                self.progress(f"{saved.name}: Offline ({outcome})")
            else:
                clients[saved.name] = outcome
        return clients

    def _check_platforms(self, image: str, clients: dict[str, Any]) -> None:
        from nbdeploy.builders.docker_builder import docker_client

        attrs = docker_client().api.inspect_image(image)
        platforms = {}
        for name, client in clients.items():
            version = client.version()
            platforms[name] = (version.get("Os") or "", version.get("Arch") or "")
        refuse_foreign_platforms(image, (attrs.get("Os") or "linux", attrs.get("Architecture") or ""), platforms)

    def _ship(self, image: str, clients: dict[str, Any], records: dict[str, DeviceRecord]) -> None:
        from nbdeploy.builders.docker_builder import docker_client

        if not clients:
            return
        lines = {name: progress_lines(self.progress, label=f"{name}: image") for name in clients}
        results = ship_image_to_many(
            docker_client(), clients, image, progress=lambda name, sent, total: lines[name](sent, total)
        )
        for name, outcome in results.items():
            if isinstance(outcome, EngineUnavailable):
                records[name] = dev.offline(records[name], str(outcome))
                clients.pop(name).close()
            elif isinstance(outcome, NbdeployError):
                records[name] = DeviceRecord(
                    name, DeviceState.FAILED, f"shipping the image failed: {outcome}", address=records[name].address
                )
                clients.pop(name).close()
            else:
                self.progress(
                    f"{name}: image there ({outcome.layers_sent}/{outcome.layers} layers sent, "
                    f"{outcome.bytes_sent} bytes)"
                )

    def _roll_waves(
        self,
        plan: dev.ModulePlan,
        devices: list[SavedEngine],
        records: dict[str, DeviceRecord],
        canary: int,
        remove_old: bool,
    ) -> None:
        """Converge the reachable devices in waves (the canary is the first device that answered)."""
        by_name = {d.name: d for d in devices}
        offline = [d.name for d in devices if records[d.name].state == DeviceState.OFFLINE]
        waves = plan_waves([d.name for d in devices if records[d.name].state == DeviceState.PENDING], canary)
        if offline:
            self.progress(f"not in any wave (offline, reconcile converges them later): {', '.join(offline)}")
        for number, wave in enumerate(waves, 1):
            todo = [n for n in wave if records[n].state == DeviceState.PENDING]
            self.progress(f"wave {number}/{len(waves)}: {', '.join(wave)}")
            for name, record in zip(
                todo,
                _parallel(
                    lambda n: dev.converge(
                        by_name[n].connection, plan, records[n], self.progress, remove_old=remove_old
                    ),
                    todo,
                ),
                strict=True,
            ):
                records[name] = record
            failed = [records[n] for n in wave if records[n].state == DeviceState.FAILED]
            if failed and number < len(waves):
                why = "; ".join(r.describe() for r in failed)
                for later in waves[number:]:
                    for name in later:
                        if records[name].state != DeviceState.FAILED:
                            records[name] = DeviceRecord(
                                name,
                                DeviceState.FAILED,
                                f"not attempted: wave {number} failed ({why})",
                                address=records[name].address,
                            )
                self.progress(f"wave {number} failed ({why}); the later waves are not attempted")
                return

    def converge(self, handle: Handle) -> Handle:
        """Converge the devices that are not Healthy on this revision yet (Offline or Pending), if they answer."""
        from nbdeploy.builders.docker_builder import docker_client

        plan = dev.ModulePlan.from_dict(handle["plan"])
        records = load_records(handle)
        connections = self._connections(handle)
        todo = [n for n, r in records.items() if r.state in (DeviceState.PENDING, DeviceState.OFFLINE)]

        def one(name: str) -> DeviceRecord:
            conn = connections.get(name)
            record = records[name]
            if conn is None:
                return DeviceRecord(name, DeviceState.FAILED, "the device is no longer saved", address=record.address)
            try:
                client = dev.connect(conn)
            except EngineUnavailable as exc:
                return dev.offline(record, str(exc))
            try:
                version = client.version()
                attrs = docker_client().api.inspect_image(plan.image)
                refuse_foreign_platforms(
                    plan.image,
                    (attrs.get("Os") or "linux", attrs.get("Architecture") or ""),
                    {name: (version.get("Os") or "", version.get("Arch") or "")},
                )
                result = ship_image(
                    docker_client(), client, plan.image, progress=progress_lines(self.progress, label=f"{name}: image")
                )
                self.progress(
                    f"{name}: image there ({result.layers_sent}/{result.layers} layers sent, {result.bytes_sent} bytes)"
                )
            except EngineUnavailable as exc:
                return dev.offline(record, str(exc))
            except NbdeployError as exc:
                return DeviceRecord(name, DeviceState.FAILED, str(exc), address=record.address)
            finally:
                client.close()
            return dev.converge(conn, plan, DeviceRecord(name, address=record.address, port=record.port), self.progress)

        for name, record in zip(todo, _parallel(one, todo), strict=True):
            records[name] = record
        return save_records(handle, records)

    def status(self, handle: Handle) -> Status:
        plan = dev.ModulePlan.from_dict(handle["plan"])
        records = load_records(handle)
        connections = self._connections(handle)

        def one(record: DeviceRecord) -> DeviceRecord:
            conn = connections.get(record.name)
            if record.state == DeviceState.FAILED:
                return record
            if conn is None:
                return DeviceRecord(
                    record.name, DeviceState.FAILED, "the device is no longer saved", address=record.address
                )
            try:
                client = dev.connect(conn, timeout=STATUS_TIMEOUT_S, op_timeout=STATUS_OP_TIMEOUT_S)
            except EngineUnavailable as exc:
                return dev.offline(record, str(exc))
            try:
                return dev.observe(client, plan, record)
            except Exception as exc:  # noqa: BLE001 - lost mid-way
                return dev.offline(record, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            finally:
                client.close()

        observed = dict(zip(records, _parallel(one, list(records.values())), strict=True))
        if {n: r.to_dict() for n, r in observed.items()} != {n: r.to_dict() for n, r in records.items()}:
            save_records(handle, observed)
        summary = summarize(observed.values(), Policy.parse(handle["policy"]))
        evidence = "\n".join(
            f"== {r.name} ==\n{r.evidence}" for r in observed.values() if r.state == DeviceState.FAILED and r.evidence
        )
        endpoint = _endpoint_of(observed)
        return Status(
            summary.state,
            summary.reason,
            evidence=evidence,
            scoring_uri=endpoint.scoring_uri if endpoint else None,
            details={
                "policy": handle["policy"],
                "healthy": summary.healthy,
                "total": summary.total,
                "required": summary.required,
                "devices": summary.devices,
            },
        )

    def logs(self, handle: Handle, num_lines: int = 5000) -> str:
        connections = self._connections(handle)

        def one(name: str) -> str:
            conn = connections.get(name)
            if conn is None:
                return f"== {name}: no longer saved =="
            try:
                client = dev.connect(conn, timeout=STATUS_TIMEOUT_S, op_timeout=STATUS_OP_TIMEOUT_S)
            except EngineUnavailable as exc:
                return f"== {name}: offline ({exc}) =="
            try:
                return f"== {name} ==\n" + dev.container_logs(client, handle["service"], handle["revision"], num_lines)
            finally:
                client.close()

        return "\n".join(_parallel(one, list(connections)))

    def stop(self, handle: Handle) -> None:
        self._each_device(
            handle, lambda client: dev.remove_revision(client, handle["service"], handle["revision"]), "stop"
        )

    def endpoint(self, handle: Handle) -> Endpoint | None:
        return _endpoint_of(load_records(handle))

    def abort(self, new: Handle, old: Handle | None) -> None:
        """Remove the new revision everywhere and make sure the old one runs (devices already rolled back)."""

        def one(client: Any) -> None:
            dev.remove_revision(client, new["service"], new["revision"])
            if old is not None:
                dev.ensure_running(client, old["service"], old["revision"])

        self._each_device(new, one, "abort")

    def retire(self, old: Handle, new: Handle) -> None:
        """Remove the old revision only where the new one is Healthy; elsewhere it stays the last-known-good."""
        healthy = {n for n, r in load_records(new).items() if r.state == DeviceState.HEALTHY}
        subset = {**old, "device_names": [n for n in old["device_names"] if n in healthy]}
        self._each_device(subset, lambda client: dev.remove_revision(client, old["service"], old["revision"]), "retire")

    def _each_device(self, handle: Handle, action: Callable[[Any], None], verb: str) -> None:
        connections = self._connections(handle)

        def one(name: str) -> None:
            conn = connections.get(name)
            if conn is None:
                return
            try:
                client = dev.connect(conn)
            except EngineUnavailable as exc:
                log.warning("%s %s: device %s is offline, its container stays: %s", verb, handle["service"], name, exc)
                self.progress(f"{name}: offline, {verb} skipped there")
                return
            try:
                action(client)
            finally:
                client.close()

        _parallel(one, list(connections))


def _endpoint_of(records: dict[str, DeviceRecord]) -> Endpoint | None:
    """The first Healthy device's published port (devices serve on their own addresses)."""
    for record in sorted(records.values(), key=lambda r: (r.state != DeviceState.HEALTHY, r.name)):
        if record.address and record.port:
            return Endpoint(f"http://{record.address}:{record.port}")
    return None


def _parallel(fn: Callable[[Any], T], items: list[Any]) -> list[T]:
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(items))) as pool:
        return list(pool.map(fn, items))
