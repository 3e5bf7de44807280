"""The ``local`` target: each revision is a container on the local Docker engine (v1's ``LocalWebservice``).

``start`` builds (or reuses, by content digest) the revision's image, then runs it with the environment's
variables, restart policy, cpu and memory limits and nbdeploy's labels. Two network modes
(``LocalDeploymentConfig.network_mode``):

``host`` (the default on Linux)
    The container shares the host's network; the scoring server binds ``config.host:port`` itself with
    ``--reuse-port``, plus a private loopback admin port, and writes its state to a status file in a folder
    bind-mounted from the service's directory. An update hands the port over as the ``process`` target does:
    the new container starts with ``--hold-public`` (serving its admin port only, :meth:`private_endpoint`),
    :meth:`promote` sends it SIGUSR1 (``docker kill --signal``) and waits until it serves the public port
    beside the old one (SO_REUSEPORT, same uid: every nbdeploy image runs as uid 1000), and :meth:`retire`
    stops the old one with SIGTERM, which drains it. No request fails.
``bridge``
    The port is published by Docker on ``config.host``. An update runs the new container on a private
    published port; :meth:`promote` stops the old container, which frees the public port, and re-runs the
    checked image on it, restarting the old container if the new one does not become Healthy. The public
    port is down for the new container's ``init()`` time (see docs/docker.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from nbdeploy.builders.docker_builder import docker_client, import_docker
from nbdeploy.builders.image import CONTAINER_PORT
from nbdeploy.errors import (
    BuildError,
    Conflict,
    DeploymentFailed,
    EngineUnavailable,
    InvalidSpec,
    TargetNotAvailable,
    UpdateFailed,
)
from nbdeploy.specs.deployment import DeploymentConfig, port_number, positive
from nbdeploy.targets.base import Availability, Handle, RevisionSpec, State, Status, Target
from nbdeploy.targets.endpoint import Endpoint
from nbdeploy.targets.net import (
    PORT_IN_USE,
    check_port_free,
    client_host,
    free_port,
    probe,
)
from nbdeploy.targets.options import Option
from nbdeploy.targets.server_status import failure_reason, read_status_file

if TYPE_CHECKING:
    from nbdeploy.builders.base import BuildRequest

log = logging.getLogger(__name__)
_SIGNALS = {int(s): s.name for s in signal.Signals}
RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
NETWORK_MODES = ("host", "bridge")

KEYS_IN_CONTAINER = "/run/nbdeploy-keys"
STATE_IN_CONTAINER = "/run/nbdeploy-state"
"""Host mode: the bind-mounted folder holding the server's status file and the ``promoted`` marker."""
PROMOTE_TIMEOUT_S = 120.0
HANDOVER_TIMEOUT_S = 15.0
STOP_GRACE_S = 10
IMAGE_UID = 1000
# Host mode runs the image's CMD through this launcher, so that a promoted container that restarts (its
# restart policy, a daemon restart) comes back on the public port instead of held on its admin port.
LAUNCHER = (
    "import os, sys; a = sys.argv[1:]; "
    f"a = [x for x in a if x != '--hold-public'] if os.path.exists('{STATE_IN_CONTAINER}/promoted') else a; "
    "os.execvp(a[0], a)"
)


@dataclass
class LocalDeploymentConfig(DeploymentConfig):
    """A container on the local Docker engine (v1's ``LocalWebservice``)."""

    target: ClassVar[str] = "local"
    compute_type: ClassVar[str] = "local"
    json_keys: ClassVar[dict[str, str]] = {
        "port": "port",
        "host": "host",
        "containerResourceRequirements.cpu": "cpu_cores",
        "containerResourceRequirements.memoryInGB": "memory_gb",
        "restartPolicy": "restart_policy",
        "networkMode": "network_mode",
    }

    port: int | None = None
    host: str = "127.0.0.1"
    cpu_cores: float | None = None
    memory_gb: float | None = None
    restart_policy: str = "no"
    network_mode: str = field(default_factory=lambda: "host" if sys.platform.startswith("linux") else "bridge")
    """``host``: the server binds ``host:port`` itself and updates hand the port over without downtime (Linux);
    ``bridge``: the port is published by Docker and an update stops the old container first (short outage)."""

    def validate(self) -> None:
        super().validate()
        if self.port is not None:
            port_number("port", self.port)
        for key in ("cpu_cores", "memory_gb"):
            if getattr(self, key) is not None:
                positive(key, getattr(self, key))
        if self.restart_policy not in RESTART_POLICIES:
            raise InvalidSpec(
                "restart_policy", f"{self.restart_policy!r} is not a Docker restart policy", allowed=RESTART_POLICIES
            )
        if self.network_mode not in NETWORK_MODES:
            raise InvalidSpec("network_mode", f"{self.network_mode!r} is not supported", allowed=NETWORK_MODES)


class LocalDockerTarget(Target):
    """Runs revisions as containers on the Docker engine of ``DOCKER_HOST`` (default: the local socket)."""

    name = "local"
    aliases = ("docker",)
    description = "A container on the local Docker engine: parity with production images."
    config_class = LocalDeploymentConfig
    extra = "docker"
    options = (
        Option("--port", "port", int, "Port to serve on (default: a free one)."),
        Option("--host", "host", str, "Address to bind (default 127.0.0.1)."),
        Option("--cpu", "cpu_cores", float, "CPU cores the container may use."),
        Option("--memory-gb", "memory_gb", float, "Memory limit in GB."),
        Option("--restart-policy", "restart_policy", str, "Docker restart policy.", RESTART_POLICIES),
        Option(
            "--network-mode",
            "network_mode",
            str,
            "host: zero-downtime updates on Linux (default); bridge: a published port.",
            NETWORK_MODES,
        ),
    )

    def __init__(self, workspace: Any) -> None:
        super().__init__(workspace)
        self._client: Any = None
        self._host_problem: str | None = None

    @classmethod
    def availability(cls) -> Availability:
        return docker_availability()

    def artifact_kind(self, request: BuildRequest) -> str | None:
        if not isinstance(request.config, LocalDeploymentConfig):
            raise InvalidSpec(
                "deployment_config",
                f"the local target needs a LocalDeploymentConfig, got {type(request.config).__name__}",
            )
        return "docker-image"

    # -- engine ---------------------------------------------------------------------------------------
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client()
        return self._client

    def _container(self, handle: Handle) -> Any | None:
        docker = import_docker()
        try:
            return self.client().containers.get(handle["container"])
        except docker.errors.NotFound:
            return None

    # -- verbs ----------------------------------------------------------------------------------------
    def start(self, spec: RevisionSpec, previous: Handle | None = None) -> Handle:
        config = _local_config(spec)
        built = spec.artifact
        if built is None or built.kind != "docker-image":
            raise InvalidSpec(
                "artifact", "the local target runs a built image; build the revision first (deploy() does)"
            )
        gpu = bool(built.details.get("gpu"))
        host = config.host or "127.0.0.1"
        if self._network_mode(config) == "host":
            return self._start_host(spec, built, gpu, host, previous)
        beside = previous is not None and self._running(previous)
        if previous is not None and not beside:
            self.stop(previous)  # a dead revision: remove it, it may still hold the published port
        if beside:
            port = 0  # a private ephemeral port until promote()
        else:
            # an update keeps the port, also of a revision that died (clients know that port)
            port = config.port or (previous or {}).get("public_port") or (previous or {}).get("port") or free_port(host)
            check_port_free(host, port)
        handle: Handle = {
            "container": "",
            "image": built.reference,
            "image_id": built.id,
            "host": host,
            "port": port,
            "public_port": config.port or (previous or {}).get("public_port") or (previous or {}).get("port") or port,
            "held": beside,
            "service": spec.service,
            "revision": spec.revision,
            "gpu": gpu,
            "network": "bridge",
        }
        run_options = self._run_options(spec, handle)
        run_options["gpu"] = gpu
        handle["run"] = run_options
        container = self._run(built.reference, run_options, host, port)
        handle["container"] = container.id
        handle["port"] = port or _published_port(container)
        self.progress(f"container {container.name} ({container.short_id}) on {host}:{handle['port']}")
        return handle

    def status(self, handle: Handle) -> Status:
        container = self._container(handle)
        uri = self.scoring_uri(handle)
        if container is None:
            return Status(State.FAILED, "the container is gone (removed outside nbdeploy?)", scoring_uri=uri)
        st = container.attrs["State"]
        if st["Status"] in ("exited", "dead"):
            code = st.get("ExitCode")
            error = read_status_file(handle.get("status_file")).get("error")
            if st.get("OOMKilled"):
                reason = f"the container was killed for memory (OOM; memory limit {_mem_text(container)})"
            elif isinstance(code, int) and code > 128 and code - 128 in _SIGNALS:
                reason = (
                    f"the container was killed by {_SIGNALS[code - 128]} (exit code {code}: `docker kill`, "
                    "the engine or the kernel; it is not restarted: `nbdeploy service update NAME` or "
                    "`reload` starts it again on its port)"
                )
            else:
                reason = failure_reason({"error": error}, code)
            if st.get("Error"):
                reason += f"; the engine says: {st['Error']}"
            return Status(
                State.FAILED,
                reason,
                evidence=self.logs(handle, 60),
                scoring_uri=uri,
                details={"exit_code": code, "oom_killed": bool(st.get("OOMKilled"))},
            )
        if st["Status"] == "restarting":
            return Status(
                State.UNHEALTHY,
                f"the container keeps restarting (last exit code {st.get('ExitCode')})",
                evidence=self.logs(handle, 60),
                scoring_uri=uri,
            )
        if st["Status"] != "running":
            return Status(State.TRANSITIONING, f"container {st['Status']}", scoring_uri=uri)
        if handle.get("network") == "host":
            return self._host_status(handle, container, uri)
        ok, detail = probe(f"http://{client_host(handle['host'])}:{handle['port']}/health/ready")
        if ok:
            return Status(State.HEALTHY, scoring_uri=uri)
        kills = _oom_kills(container)
        if kills:
            return Status(
                State.FAILED,
                f"a process was killed for memory ({kills} OOM kill(s); memory limit {_mem_text(container)})",
                evidence=self.logs(handle, 60),
                scoring_uri=uri,
                details={"oom_killed": True},
            )
        health = (st.get("Health") or {}).get("Status")
        if health == "unhealthy":
            return Status(
                State.UNHEALTHY, f"health check failing: {detail}", evidence=self.logs(handle, 30), scoring_uri=uri
            )
        return Status(State.TRANSITIONING, "init() is running", scoring_uri=uri)

    def logs(self, handle: Handle, num_lines: int = 5000) -> str:
        container = self._container(handle)
        if container is None:
            return ""
        return container.logs(tail=num_lines).decode("utf-8", "replace")

    def stop(self, handle: Handle) -> None:
        container = self._container(handle) if handle.get("container") else None
        if container is not None:
            docker = import_docker()
            try:
                if container.status == "running":
                    container.stop(timeout=STOP_GRACE_S)  # SIGTERM: the server drains, then exits
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
        if handle.get("state_dir"):
            shutil.rmtree(handle["state_dir"], ignore_errors=True)

    def reconcile(self, service: str, current: Handle | None, others: Mapping[int, Handle | None]) -> dict[int, str]:
        """Remove every container of ``service`` (this workspace's, by label) but the current revision's.

        Containers are found by their labels, so a revision whose operation died before recording its handle
        (a CLI killed during ``docker run`` or ``init()``) is found too.
        """
        keep = (current or {}).get("container") or None
        filters = {
            "label": [
                "nbdeploy.managed=true",
                f"nbdeploy.service={service}",
                f"nbdeploy.workspace={self._workspace_label()}",
            ]
        }
        done: dict[int, str] = {}
        for container in self.client().containers.list(all=True, filters=filters):
            if keep and container.id == keep:
                continue
            try:
                revision = int(container.labels.get("nbdeploy.revision", "0"))
            except ValueError:
                revision = 0
            if keep is None and revision not in others:
                continue  # no current container known: never remove what might be serving
            was_running = container.status == "running"
            self.stop({"container": container.id})
            if revision in others:
                done[revision] = "stopped" if was_running else "removed (it had stopped)"
        for revision, handle in others.items():
            done.setdefault(revision, "was not running")
            if handle and handle.get("state_dir"):
                shutil.rmtree(handle["state_dir"], ignore_errors=True)
        return done

    def _workspace_label(self) -> str:
        return hashlib.sha256(str(self.workspace.path).encode()).hexdigest()[:16]

    def private_endpoint(self, handle: Handle) -> Endpoint | None:
        if handle.get("admin_port"):
            return Endpoint(f"http://127.0.0.1:{handle['admin_port']}")  # the server binds its admin port on loopback
        return Endpoint(f"http://{client_host(handle['host'])}:{handle['port']}")

    def endpoint(self, handle: Handle) -> Endpoint | None:
        port = handle.get("public_port") or handle.get("port")
        return Endpoint(f"http://{client_host(handle.get('host', '127.0.0.1'))}:{port}")

    def promote(self, new: Handle, old: Handle | None) -> Handle:
        """Move the public port to ``new``; ``old`` keeps serving when that fails.

        Host mode: SIGUSR1 makes ``new`` bind the public port beside ``old`` (the caller then retires ``old``,
        which drains). Bridge mode: stop ``old`` (freeing the published port) and re-run ``new``'s image on it.
        """
        if not new.get("held"):
            return new
        if new.get("network") == "host":
            return self._promote_host(new, old)
        old_container = self._container(old) if old else None
        if old_container is not None and old_container.status == "running":
            old_container.stop(timeout=STOP_GRACE_S)
        host, port = new["host"], new["public_port"]
        final: Handle = {**new, "held": False, "port": port}
        try:
            container = self._run(new["image"], {**new["run"], "name": new["run"]["name"] + "-public"}, host, port)
            final["container"] = container.id
            deadline = time.monotonic() + PROMOTE_TIMEOUT_S
            while (status := self.status(final)).state == State.TRANSITIONING and time.monotonic() < deadline:
                time.sleep(0.1)
            if status.state != State.HEALTHY:
                raise UpdateFailed(
                    new["service"], str(status.state), f"on the public port: {status.reason}", status.evidence
                )
        except BaseException:
            if final.get("container"):
                self.stop(final)
            if old_container is not None:
                old_container.start()
            raise
        self.stop(new)  # the candidate on its private port
        return final

    def update_keys(self, handle: Handle, keys: tuple[str, str] | None) -> None:
        if keys is None or not handle.get("run", {}).get("keys_dir"):
            raise Conflict("Key auth was off when this revision started; update the service with auth_enabled=True.")
        _write_keys(Path(handle["run"]["keys_dir"]), keys)

    # -- helpers --------------------------------------------------------------------------------------
    def _private_base(self, handle: Handle) -> str:
        private = self.private_endpoint(handle)
        return private.base_url if private else ""

    def _running(self, handle: Handle) -> bool:
        container = self._container(handle) if handle.get("container") else None
        return container is not None and container.status == "running"

    # -- host network mode --------------------------------------------------------------------------
    def _network_mode(self, config: Any) -> str:
        mode = getattr(config, "network_mode", "bridge")
        if mode == "host":
            problem = self._host_network_problem()
            if problem:
                self.progress(
                    f"warning: {problem}; publishing the port instead (network_mode='bridge': "
                    "an update has a short outage)"
                )
                return "bridge"
        return mode

    def _host_network_problem(self) -> str:
        """Why the engine's host network is not this machine's ('' when it is)."""
        if self._host_problem is None:
            client = self.client()
            info = client.info()
            if not client.api.base_url.startswith("http+docker://localhost"):
                self._host_problem = f"the Docker engine at {client.api.base_url} is not on this machine"
            elif any("rootless" in option for option in info.get("SecurityOptions") or []):
                self._host_problem = "the Docker engine is rootless: its host network is not this machine's"
            elif "Docker Desktop" in (info.get("OperatingSystem") or ""):
                self._host_problem = "Docker Desktop runs containers in a VM: its host network is not this machine's"
            else:
                self._host_problem = ""
        return self._host_problem

    def _start_host(self, spec: RevisionSpec, built: Any, gpu: bool, host: str, previous: Handle | None) -> Handle:
        """Run the image on the host network: the server binds ``host:port`` with SO_REUSEPORT itself."""
        config = _local_config(spec)
        beside = previous is not None and self._running(previous)
        if previous is not None and not beside:
            self.stop(previous)  # a dead revision: remove its container before taking its port
        # an update keeps the port, also of a revision that died (clients know that port)
        previous_port = (previous or {}).get("public_port") or (previous or {}).get("port")
        port = config.port or previous_port or free_port(host)
        if not (beside and port == previous_port):
            check_port_free(host, port)
        admin = free_port("127.0.0.1")
        image = self.client().images.get(built.reference).attrs["Config"]
        cmd = list(image.get("Cmd") or [])
        if not cmd:
            raise DeploymentFailed(
                spec.service, str(State.FAILED), f"image {built.reference} has no CMD to run the scoring server"
            )
        state_dir = self.workspace.service_dir(spec.service, create=True) / f"state-r{spec.revision}"
        _state_folder(state_dir)
        argv = [
            cmd[0],
            "-c",
            LAUNCHER,
            *cmd,
            "--host",
            host,
            "--port",
            str(port),
            "--reuse-port",
            "--admin-port",
            str(admin),
            "--status-file",
            f"{STATE_IN_CONTAINER}/status.json",
        ]
        if beside:
            argv.append("--hold-public")
        handle: Handle = {
            "container": "",
            "image": built.reference,
            "image_id": built.id,
            "host": host,
            "port": port,
            "public_port": port,
            "admin_port": admin,
            "held": beside,
            "service": spec.service,
            "revision": spec.revision,
            "gpu": gpu,
            "network": "host",
            "user": image.get("User") or "",
            "state_dir": str(state_dir),
            "status_file": str(state_dir / "status.json"),
        }
        options = self._run_options(spec, handle)
        options.update(
            network="host",
            command=argv,
            gpu=gpu,
            state_dir=str(state_dir),
            healthcheck=_healthcheck_on(image.get("Healthcheck"), admin),
        )
        options["final_restart_policy"] = options["restart_policy"]
        if beside:  # a candidate that fails must fail the update now, not restart until the timeout
            options["restart_policy"] = {"Name": "no"}
        handle["run"] = options
        container = self._run(built.reference, options, host, port)
        handle["container"] = container.id
        role = "held on its admin port until promoted" if beside else "serving"
        self.progress(
            f"container {container.name} ({container.short_id}) on {host}:{port} (host network, "
            f"admin port {admin}, {role})"
        )
        return handle

    def _host_status(self, handle: Handle, container: Any, uri: str | None) -> Status:
        info = read_status_file(handle.get("status_file"))
        server_state = info.get("state")
        if server_state == "failed":
            return Status(
                State.FAILED, failure_reason(info, None), evidence=self.logs(handle, 60), scoring_uri=uri, details=info
            )
        detail = "init() is running"
        if server_state in ("ready", "serving"):
            ok, detail = probe(f"{self._private_base(handle)}/health/ready")
            if ok:
                return Status(State.HEALTHY, scoring_uri=uri, details=info)
        kills = _oom_kills(container)
        if kills:
            return Status(
                State.FAILED,
                f"a process was killed for memory ({kills} OOM kill(s); memory limit {_mem_text(container)})",
                evidence=self.logs(handle, 60),
                scoring_uri=uri,
                details={"oom_killed": True},
            )
        health = (container.attrs["State"].get("Health") or {}).get("Status")
        if health == "unhealthy" or server_state in ("ready", "serving"):
            return Status(
                State.UNHEALTHY,
                f"readiness probe failing: {detail}",
                evidence=self.logs(handle, 30),
                scoring_uri=uri,
                details=info,
            )
        if server_state == "stopping":
            return Status(State.UNHEALTHY, "the scoring server is draining", scoring_uri=uri, details=info)
        return Status(State.TRANSITIONING, detail, scoring_uri=uri, details=info)

    def _promote_host(self, new: Handle, old: Handle | None) -> Handle:
        port = new["public_port"]
        container = self._container(new)
        if container is None or container.status != "running":
            evidence = self.logs(new, 30)
            self.stop(new)
            raise UpdateFailed(
                new["service"],
                str(State.FAILED),
                f"revision {new['revision']} stopped before it took the public port {port}",
                evidence,
            )
        old_container = self._container(old) if old and old.get("container") else None
        if old_container is not None and old_container.status != "running":
            old_container = None
        shares = (
            old is not None
            and old_container is not None
            and old.get("network") == "host"
            and old.get("user") == new.get("user")
        )
        same_port = old is not None and (old.get("public_port") or old.get("port")) == port
        stopped = None
        if old_container is not None and same_port and not shares:
            # a published (bridge) port or another uid cannot share the port: free it first (a short outage)
            old_container.stop(timeout=STOP_GRACE_S)
            stopped = old_container
        t0 = time.monotonic()
        try:
            container.kill(signal="SIGUSR1")
            while True:
                info = read_status_file(new["status_file"])
                if info.get("state") == "serving":
                    break
                if (
                    info.get("state") == "failed"
                    or not self._running(new)
                    or time.monotonic() - t0 > HANDOVER_TIMEOUT_S
                ):
                    why = info.get("error") or f"state {info.get('state')!r} after {time.monotonic() - t0:.1f}s"
                    raise UpdateFailed(
                        new["service"],
                        str(State.FAILED),
                        f"revision {new['revision']} did not take the public port {port}: {why}",
                        self.logs(new, 30),
                    )
                time.sleep(0.02)
        except BaseException:
            self.stop(new)
            if stopped is not None:
                stopped.start()
            raise
        self.progress(
            f"revision {new['revision']} serves {new['host']}:{port} ({(time.monotonic() - t0) * 1000:.0f} ms after SIGUSR1)"
        )
        (Path(new["state_dir"]) / "promoted").touch()
        final_policy = new["run"].get("final_restart_policy") or {"Name": "no"}
        if final_policy.get("Name", "no") != "no":
            container.update(restart_policy=final_policy)
        run = {**new["run"], "restart_policy": final_policy}
        return {**new, "held": False, "run": run}

    def _run_options(self, spec: RevisionSpec, handle: Handle) -> dict[str, Any]:
        config = _local_config(spec)
        env = {"SERVICE_NAME": spec.service, "SERVICE_VERSION": str(spec.revision)}
        if config.scoring_timeout_ms:
            env["SCORING_TIMEOUT_MS"] = str(config.scoring_timeout_ms)
        keys_dir = None
        if spec.keys:
            keys_dir = self.workspace.service_dir(spec.service, create=True) / f"keys-r{spec.revision}"
            _write_keys(keys_dir, spec.keys)
            env["NBDEPLOY_AUTH_KEYS_FILE"] = f"{KEYS_IN_CONTAINER}/keys.json"
        restart: dict[str, Any] = {"Name": config.restart_policy}
        if config.restart_policy == "on-failure":
            restart["MaximumRetryCount"] = 3
        return {
            "name": f"nbdeploy-{spec.service}-r{spec.revision}",
            "env": env,
            "labels": {
                "nbdeploy.managed": "true",
                "nbdeploy.service": spec.service,
                "nbdeploy.revision": str(spec.revision),
                "nbdeploy.workspace": self._workspace_label(),
                "nbdeploy.models": ",".join(spec.bundle.model_ids),
                "nbdeploy.bundle": spec.bundle.digest,
            },
            "restart_policy": restart,
            "mem_limit": f"{int(config.memory_gb * 1024)}m" if config.memory_gb else None,
            "nano_cpus": int(config.cpu_cores * 1e9) if config.cpu_cores else None,
            "keys_dir": str(keys_dir) if keys_dir else None,
        }

    def _run(self, image: str, options: dict[str, Any], host: str, port: int) -> Any:
        docker = import_docker()
        kwargs: dict[str, Any] = {
            "name": options["name"],
            "environment": options["env"],
            "labels": options["labels"],
            "restart_policy": options["restart_policy"],
            "detach": True,
        }
        volumes: dict[str, dict[str, str]] = {}
        if options.get("network") == "host":
            kwargs["network_mode"] = "host"
            kwargs["command"] = options["command"]
            # explicit: without a StopSignal, Docker 20.10 treats any `docker kill --signal` (our SIGUSR1) as a
            # stop and does not apply the restart policy when the container exits next
            kwargs["stop_signal"] = "SIGTERM"
            if options.get("healthcheck"):
                kwargs["healthcheck"] = options["healthcheck"]
            volumes[options["state_dir"]] = {"bind": STATE_IN_CONTAINER, "mode": "rw"}
        else:
            kwargs["ports"] = {f"{CONTAINER_PORT}/tcp": (host, port or None)}
        if options.get("mem_limit"):
            kwargs["mem_limit"] = kwargs["memswap_limit"] = options["mem_limit"]
        if options.get("nano_cpus"):
            kwargs["nano_cpus"] = options["nano_cpus"]
        if options.get("keys_dir"):
            volumes[options["keys_dir"]] = {"bind": KEYS_IN_CONTAINER, "mode": "ro"}
        if volumes:
            kwargs["volumes"] = volumes
        if options.get("gpu"):
            kwargs["device_requests"] = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
        self._remove_stale(options["name"])
        try:
            return self.client().containers.run(image, **kwargs)
        except docker.errors.APIError as exc:
            text = str(exc)
            self._remove_stale(options["name"])
            if "port is already allocated" in text or "address already in use" in text:
                raise Conflict(PORT_IN_USE.format(port=port, host=host)) from exc
            service = options["labels"].get("nbdeploy.service", "?")
            raise DeploymentFailed(service, str(State.FAILED), f"docker could not start the container: {exc}") from exc
        except import_docker().errors.DockerException as exc:  # pragma: no cover - engine vanished
            raise EngineUnavailable("Docker", str(exc)) from exc

    def _remove_stale(self, name: str) -> None:
        docker = import_docker()
        try:
            self.client().containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass


def _published_port(container: Any) -> int:
    container.reload()
    for _ in range(50):
        bindings = (container.attrs["NetworkSettings"].get("Ports") or {}).get(f"{CONTAINER_PORT}/tcp")
        if bindings:
            return int(bindings[0]["HostPort"])
        time.sleep(0.05)
        container.reload()
    raise BuildError(f"container {container.name} has no published port", step="docker run")


def _oom_kills(container: Any) -> int:
    """OOM kills in the container's memory cgroup (v1 or v2); 0 without a memory limit or when unreadable."""
    if not container.attrs.get("HostConfig", {}).get("Memory"):
        return 0
    files = ["/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"]
    try:
        result = container.exec_run(["cat", *files], stderr=False)
    except Exception:  # noqa: BLE001 - the container stopped meanwhile; the next status() tells
        return 0
    for line in result.output.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return 0


def _mem_text(container: Any) -> str:
    limit = container.attrs.get("HostConfig", {}).get("Memory") or 0
    return f"{limit / 2**20:.0f} MiB" if limit else "none"


def _write_keys(folder: Path, keys: tuple[str, str]) -> None:
    """The keys file, readable by the container's user (uid 1000) and nobody else."""

    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "keys.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"primaryKey": keys[0], "secondaryKey": keys[1]}, fh)
    if os.geteuid() == 0:
        os.chown(tmp, 1000, 1000)
        os.chown(folder, 1000, 1000)
    os.replace(tmp, folder / "keys.json")


def _state_folder(folder: Path) -> None:
    """The host-mode state folder, writable by the image's user (uid 1000): the server writes its status there."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if os.geteuid() == 0:
        os.chown(folder, IMAGE_UID, IMAGE_UID)
    elif os.geteuid() != IMAGE_UID:
        folder.chmod(0o777)  # holds only the server's state, no secrets


def _healthcheck_on(healthcheck: dict[str, Any] | None, port: int) -> dict[str, Any] | None:
    """The image's HEALTHCHECK pointed at the admin port (on the host network, 5001 may be anybody's)."""
    if not healthcheck or not healthcheck.get("Test"):
        return None
    old = f"127.0.0.1:{CONTAINER_PORT}/"
    test = [part.replace(old, f"127.0.0.1:{port}/") for part in healthcheck["Test"]]
    if test == healthcheck["Test"]:
        return None  # not ours (a user's base image): keep it as it is
    return {
        "test": test,
        "interval": healthcheck.get("Interval") or 0,
        "timeout": healthcheck.get("Timeout") or 0,
        "retries": healthcheck.get("Retries") or 0,
        "start_period": healthcheck.get("StartPeriod") or 0,
    }


def docker_availability() -> Availability:
    """Whether the docker SDK is installed and an engine answers (DOCKER_HOST or the local socket)."""
    try:
        import_docker()
    except TargetNotAvailable as exc:
        return Availability(False, str(exc))
    try:
        docker_client(timeout=5).close()
    except EngineUnavailable as exc:
        return Availability(False, str(exc))
    return Availability(True)


def _local_config(spec: RevisionSpec) -> LocalDeploymentConfig:
    """The revision's config, which must be the local target's."""
    if not isinstance(spec.config, LocalDeploymentConfig):
        raise InvalidSpec(
            "deployment_config", f"the local target needs a LocalDeploymentConfig, got {type(spec.config).__name__}"
        )
    return spec.config
