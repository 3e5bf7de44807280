"""The ``aci`` target (alias ``container-instance``): one managed container on a remote Docker engine (v1's
``AciWebservice``), reached over TCP+TLS, ssh, or a socket.

The engine comes from the deployment config (``engine_url`` with TLS files, or a saved ``host_name``), else
Docker's variables (``DOCKER_HOST``/``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``), else the workspace's saved
container host (:func:`nbdeploy.remote.resolve_engine`). The image is built on the local engine and shipped
with :func:`nbdeploy.remote.ship_image` (only the layers the remote lacks).

Each revision is a container on the remote engine's *host network*: the scoring server binds the public port
with SO_REUSEPORT and an admin port on the engine's address (``private_endpoint``). An update starts the new
container with ``--hold-public`` (admin port only), :meth:`promote` sends it SIGUSR1 so it binds the public
port beside the old one, and :meth:`retire` stops the old one with SIGTERM, which drains: no request fails.
Nothing of ours is bind-mounted (the engine is elsewhere): the auth keys, the TLS certificate and the
server's status file live in ``/run/nbdeploy`` inside the container, written with ``put_archive`` before it
starts and read with ``get_archive``; keys are never in environment variables.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from nbdeploy.errors import Conflict, DeploymentFailed, EngineUnavailable, InvalidSpec, UpdateFailed
from nbdeploy.specs.deployment import DeploymentConfig, port_number, positive
from nbdeploy.targets.base import Availability, Handle, RevisionSpec, State, Status, Target
from nbdeploy.targets.endpoint import Endpoint
from nbdeploy.targets.options import Option
from nbdeploy.targets.server_status import failure_reason

if TYPE_CHECKING:
    from nbdeploy.builders.base import BuildRequest
    from nbdeploy.remote.connection import EngineConnection

log = logging.getLogger(__name__)

RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
RUN_DIR = "/run/nbdeploy"
"""Inside the container: keys.json, tls/{cert,key}.pem, state/status.json and the ``promoted`` marker."""
FIRST_PORT = 5001
PROMOTE_TIMEOUT_S = 15.0
STOP_GRACE_S = 10
REFUSED = {
    "collect_model_data": "model data collection is not supported yet (it comes with the operations work)",
    "enable_app_insights": "Application Insights is not supported; use `nbdeploy service logs` and /metrics",
}
# Runs the image's CMD; a promoted container that restarts (restart policy, engine restart) comes back on the
# public port instead of held on its admin port.
LAUNCHER = (
    "import os, sys; a = sys.argv[1:]; "
    f"s = '{RUN_DIR}/state/status.json'; os.path.exists(s) and os.remove(s); "  # not the last run's state
    f"a = [x for x in a if x != '--hold-public'] if os.path.exists('{RUN_DIR}/state/promoted') else a; "
    "os.execvp(a[0], a)"
)


@dataclass
class AciDeploymentConfig(DeploymentConfig):
    """One container on a remote Docker engine (v1's ``AciWebservice.deploy_configuration``)."""

    target: ClassVar[str] = "aci"
    compute_type: ClassVar[str] = "ACI"
    compute_type_aliases: ClassVar[tuple[str, ...]] = ("aci", "container-instance")
    json_keys: ClassVar[dict[str, str]] = {
        "containerResourceRequirements.cpu": "cpu_cores",
        "containerResourceRequirements.memoryInGB": "memory_gb",
        "sslEnabled": "ssl_enabled",
        "sslCertificate": "ssl_cert_pem_file",
        "sslKey": "ssl_key_pem_file",
        "cname": "ssl_cname",
        "dnsNameLabel": "dns_name_label",
        "location": "location",
        "port": "port",
        "restartPolicy": "restart_policy",
        "engine.host": "host_name",
        "engine.url": "engine_url",
        "engine.tlsCa": "tls_ca",
        "engine.tlsCert": "tls_cert",
        "engine.tlsKey": "tls_key",
        "engine.tlsVerify": "tls_verify",
        "collectModelData": "collect_model_data",
        "enableAppInsights": "enable_app_insights",
    }

    auth_enabled: bool = True
    """Keys on by default: the engine is not this machine."""
    cpu_cores: float = 0.1
    memory_gb: float = 0.5
    ssl_enabled: bool = False
    ssl_cert_pem_file: str | None = None
    ssl_key_pem_file: str | None = None
    ssl_cname: str | None = None
    dns_name_label: str | None = None
    """The scoring URL's host (a DNS name that resolves to the engine); default: the engine's address."""
    location: str | None = None
    """Stored (v1 compatibility); the engine decides where the container runs."""
    port: int | None = None
    """The public port on the engine (default: the first free one from 5001)."""
    restart_policy: str = "always"
    host_name: str | None = None
    """A container host saved with ``nbdeploy host add``."""
    engine_url: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_verify: bool = True
    collect_model_data: bool | None = None
    enable_app_insights: bool | None = None

    def validate(self) -> None:
        super().validate()
        for key in ("cpu_cores", "memory_gb"):
            positive(key, getattr(self, key))
        if self.port is not None:
            port_number("port", self.port)
        if self.restart_policy not in RESTART_POLICIES:
            raise InvalidSpec(
                "restart_policy", f"{self.restart_policy!r} is not a Docker restart policy", allowed=RESTART_POLICIES
            )
        for key, why in REFUSED.items():
            if getattr(self, key):
                raise InvalidSpec(key, why)
        if self.host_name and self.engine_url:
            raise InvalidSpec("host_name", "give either a saved host name or an engine URL, not both")
        given = [k for k in ("ssl_cert_pem_file", "ssl_key_pem_file") if getattr(self, k)]
        if given and not self.ssl_enabled:
            raise InvalidSpec(given[0], "is set but ssl_enabled is not")
        if len(given) == 1:
            raise InvalidSpec(given[0], "a certificate and its key go together (ssl_cert_pem_file, ssl_key_pem_file)")
        if len(given) == 2:
            from nbdeploy.tls import check_certificate_pair

            check_certificate_pair(str(self.ssl_cert_pem_file), str(self.ssl_key_pem_file))
        if self.dns_name_label is not None and not re.fullmatch(
            r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", self.dns_name_label
        ):
            raise InvalidSpec("dns_name_label", f"{self.dns_name_label!r} is not a DNS name")


class ContainerInstanceTarget(Target):
    """Runs each revision as a container on a remote Docker engine, with limits, keys and optional TLS."""

    name = "aci"
    aliases = ("container-instance",)
    description = "One managed container on a remote Docker engine over TLS, with CPU/memory limits (v1's ACI)."
    config_class = AciDeploymentConfig
    extra = "docker"
    options = (
        Option("--host-name", "host_name", str, "A container host saved with `nbdeploy host add`."),
        Option("--engine-url", "engine_url", str, "The engine: tcp://HOST:2376, ssh://USER@HOST.", metavar="URL"),
        Option("--tls-ca", "tls_ca", str, "CA of the engine's certificate.", metavar="PEM"),
        Option("--tls-cert", "tls_cert", str, "Client certificate for the engine.", metavar="PEM"),
        Option("--tls-key", "tls_key", str, "Key of --tls-cert.", metavar="PEM"),
        Option("--port", "port", int, "Public port on the engine (default: the first free one from 5001)."),
        Option("--cpu", "cpu_cores", float, "CPU cores the container may use (default 0.1)."),
        Option("--memory-gb", "memory_gb", float, "Memory limit in GB (default 0.5); going over it is an OOM kill."),
        Option("--restart-policy", "restart_policy", str, "Docker restart policy (default always).", RESTART_POLICIES),
        Option("--ssl", "ssl_enabled", bool, "Serve HTTPS (the workspace CA issues a certificate unless given)."),
        Option("--ssl-cert", "ssl_cert_pem_file", str, "Your server certificate (PEM).", metavar="PEM"),
        Option("--ssl-key", "ssl_key_pem_file", str, "Its private key (PEM).", metavar="PEM"),
        Option("--ssl-cname", "ssl_cname", str, "The name your certificate is for (stored)."),
        Option("--dns-name-label", "dns_name_label", str, "The scoring URL's host name (resolves to the engine)."),
        Option("--location", "location", str, "Stored with the service (v1 compatibility)."),
    )

    def __init__(self, workspace: Any) -> None:
        super().__init__(workspace)
        self._clients: dict[str, Any] = {}

    @classmethod
    def availability(cls) -> Availability:
        from nbdeploy.builders.docker_builder import import_docker
        from nbdeploy.errors import NbdeployError
        from nbdeploy.remote import resolve_engine

        try:
            import_docker()
            conn = resolve_engine(None, what="the aci target")
        except NbdeployError as exc:
            return Availability(False, str(exc))
        return Availability(True, f"engine {conn.url}")

    def artifact_kind(self, request: BuildRequest) -> str | None:
        if not isinstance(request.config, AciDeploymentConfig):
            raise InvalidSpec(
                "deployment_config", f"the aci target needs an AciDeploymentConfig, got {type(request.config).__name__}"
            )
        return "docker-image"

    # -- engine ---------------------------------------------------------------------------------------
    def connection(self, config: AciDeploymentConfig) -> EngineConnection:
        """The engine a config names (see the module docstring for the order)."""
        from nbdeploy.remote import resolve_engine

        return resolve_engine(
            self.workspace,
            host=config.host_name,
            url=config.engine_url,
            tls_ca=config.tls_ca,
            tls_cert=config.tls_cert,
            tls_key=config.tls_key,
            tls_verify=config.tls_verify,
            what="the aci target",
        )

    def _client(self, engine: dict[str, Any]) -> Any:
        from nbdeploy.remote import EngineConnection

        key = json.dumps(engine, sort_keys=True)
        if key not in self._clients:
            self._clients[key] = EngineConnection(**engine).client()
        return self._clients[key]

    def _container(self, handle: Handle) -> Any | None:
        from nbdeploy.builders.docker_builder import import_docker

        docker = import_docker()
        try:
            return self._client(handle["engine"]).containers.get(handle["container"])
        except docker.errors.NotFound:
            return None
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(f"Docker engine {handle['engine']['url']}", _first_line(exc)) from exc

    # -- verbs ----------------------------------------------------------------------------------------
    def start(self, spec: RevisionSpec, previous: Handle | None = None) -> Handle:
        from nbdeploy.builders.docker_builder import docker_client, import_docker
        from nbdeploy.remote import progress_lines, ship_image

        config = spec.config
        if not isinstance(config, AciDeploymentConfig):
            raise InvalidSpec(
                "deployment_config", f"the aci target needs an AciDeploymentConfig, got {type(config).__name__}"
            )
        built = spec.artifact
        if built is None or built.kind != "docker-image":
            raise InvalidSpec("artifact", "the aci target runs a built image; build the revision first (deploy() does)")
        conn = self.connection(config)
        engine = _engine_dict(conn)
        remote = self._client(engine)
        address = _engine_address(conn)
        result = ship_image(
            docker_client(), remote, built.reference, progress=progress_lines(self.progress, f"image to {conn.url}")
        )
        self.progress(
            f"image {built.reference}: {result.layers_sent} of {result.layers} layers, "
            f"{result.bytes_sent / 1e6:.1f} MB sent to {conn.url}"
        )
        image = remote.images.get(built.reference).attrs["Config"]
        cmd = list(image.get("Cmd") or [])
        if not cmd:
            raise DeploymentFailed(
                spec.service, str(State.FAILED), f"image {built.reference} has no CMD to run the scoring server"
            )
        uid = _uid(image.get("User"))

        beside = previous is not None and self._running(previous)
        previous_port = (previous or {}).get("port") if beside else None
        taken = _ports_in_use(remote)
        port = config.port or previous_port or _first_free(taken)
        held = beside and port == previous_port
        if port in taken and not held:
            raise Conflict(f"port {port} is in use on {conn.url} by another nbdeploy service; choose another (--port)")
        admin = _first_free(taken | {port})

        files: dict[str, bytes] = {}
        env = {"SERVICE_NAME": spec.service, "SERVICE_VERSION": str(spec.revision)}
        if config.scoring_timeout_ms:
            env["SCORING_TIMEOUT_MS"] = str(config.scoring_timeout_ms)
        if spec.keys:
            files["keys.json"] = _keys_json(spec.keys)
            env["NBDEPLOY_AUTH_KEYS_FILE"] = f"{RUN_DIR}/keys.json"
        host = config.dns_name_label or address
        argv = [
            cmd[0],
            "-c",
            LAUNCHER,
            *cmd,
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--reuse-port",
            "--admin-port",
            str(admin),
            "--admin-host",
            "0.0.0.0",
            "--status-file",
            f"{RUN_DIR}/state/status.json",
        ]
        verify: bool | str = True
        if config.ssl_enabled:
            if config.ssl_cert_pem_file:
                files["tls/cert.pem"] = Path(config.ssl_cert_pem_file).read_bytes()
                files["tls/key.pem"] = Path(config.ssl_key_pem_file or "").read_bytes()
            else:
                from nbdeploy.tls import WorkspaceCA

                ca = WorkspaceCA(self.workspace.path)
                issued = ca.issue(
                    f"{spec.service}.nbdeploy", [address, config.dns_name_label or "", config.ssl_cname or ""]
                )
                files["tls/cert.pem"], files["tls/key.pem"] = issued.cert_pem, issued.key_pem
                verify = str(ca.cert_path)
            argv += ["--ssl-certfile", f"{RUN_DIR}/tls/cert.pem", "--ssl-keyfile", f"{RUN_DIR}/tls/key.pem"]
        if held:
            argv.append("--hold-public")
        restart: dict[str, Any] = {"Name": config.restart_policy}
        if config.restart_policy == "on-failure":
            restart["MaximumRetryCount"] = 3
        name = f"nbdeploy-{spec.service}-r{spec.revision}"
        labels = {
            "nbdeploy.managed": "true",
            "nbdeploy.target": "aci",
            "nbdeploy.service": spec.service,
            "nbdeploy.revision": str(spec.revision),
            "nbdeploy.ports": f"{port},{admin}",
            "nbdeploy.workspace": hashlib.sha256(str(self.workspace.path).encode()).hexdigest()[:16],
            "nbdeploy.bundle": spec.bundle.digest,
        }
        memory = f"{int(config.memory_gb * 1024)}m"
        handle: Handle = {
            "container": "",
            "engine": engine,
            "image": built.reference,
            "image_id": built.id,
            "host": host,
            "address": address,
            "port": port,
            "admin_port": admin,
            "held": held,
            "service": spec.service,
            "revision": spec.revision,
            "tls": bool(config.ssl_enabled),
            "verify": verify,
            "memory_gb": config.memory_gb,
            "restart_policy": restart,
            "shipped": {"bytes": result.bytes_sent, "layers": result.layers_sent, "seconds": round(result.seconds, 3)},
        }
        docker = import_docker()
        _remove_stale(remote, name)
        try:
            container = remote.containers.create(
                built.reference,
                command=argv,
                name=name,
                environment=env,
                labels=labels,
                network_mode="host",
                restart_policy={"Name": "no"} if held else restart,
                mem_limit=memory,
                memswap_limit=memory,
                nano_cpus=int(config.cpu_cores * 1e9),
                stop_signal="SIGTERM",
                healthcheck={"test": ["NONE"]},
            )
            handle["container"] = container.id
            container.put_archive("/run", _run_dir_tar(files, uid))
            container.start()
        except docker.errors.APIError as exc:
            if handle["container"]:
                self.stop(handle)
            raise DeploymentFailed(
                spec.service, str(State.FAILED), f"{conn.label} could not run the container: {_first_line(exc)}"
            ) from exc
        role = "held on its admin port until promoted" if held else "serving"
        self.progress(
            f"container {name} ({container.short_id}) on {conn.url}: "
            f"{self._scheme(handle)}://{host}:{port} (admin port {admin}, {role})"
        )
        return handle

    def status(self, handle: Handle) -> Status:
        container = self._container(handle)
        uri = self.scoring_uri(handle)
        if container is None:
            return Status(State.FAILED, "the container is gone (removed outside nbdeploy?)", scoring_uri=uri)
        st = container.attrs["State"]
        limit = _gb_text(handle.get("memory_gb"))
        if st["Status"] in ("exited", "dead"):
            code = st.get("ExitCode")
            if st.get("OOMKilled") or (code == 137 and _oom_kills(container, running=False)):
                reason = f"OOM, limit {limit}"
            else:
                reason = failure_reason({"error": _status_file(container).get("error")}, code)
            return Status(
                State.FAILED,
                reason,
                evidence=self.logs(handle, 60),
                scoring_uri=uri,
                details={"exit_code": code, "oom_killed": bool(st.get("OOMKilled"))},
            )
        if st.get("OOMKilled"):  # restarting after an OOM kill (restart policy): still the memory limit
            return Status(
                State.FAILED,
                f"OOM, limit {limit}",
                evidence=self.logs(handle, 60),
                scoring_uri=uri,
                details={"exit_code": st.get("ExitCode"), "oom_killed": True},
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
        info = _status_file(container)
        if info.get("state") == "failed":
            return Status(
                State.FAILED, failure_reason(info, None), evidence=self.logs(handle, 60), scoring_uri=uri, details=info
            )
        detail = "init() is running"
        if info.get("state") in ("ready", "serving"):
            ok, detail = _probe(self.private_endpoint(handle))
            if ok:
                return Status(State.HEALTHY, scoring_uri=uri, details=info)
        kills = _oom_kills(container)
        if kills:
            return Status(
                State.FAILED,
                f"OOM, limit {limit} ({kills} process(es) killed for memory)",
                evidence=self.logs(handle, 60),
                scoring_uri=uri,
                details={"oom_killed": True},
            )
        if info.get("state") in ("ready", "serving"):
            return Status(
                State.UNHEALTHY,
                f"health route failing: {detail}",
                evidence=self.logs(handle, 30),
                scoring_uri=uri,
                details=info,
            )
        if info.get("state") == "stopping":
            return Status(State.UNHEALTHY, "the scoring server is draining", scoring_uri=uri, details=info)
        return Status(State.TRANSITIONING, detail, scoring_uri=uri, details=info)

    def logs(self, handle: Handle, num_lines: int = 5000) -> str:
        container = self._container(handle)
        return container.logs(tail=num_lines).decode("utf-8", "replace") if container is not None else ""

    def stop(self, handle: Handle) -> None:
        """Stop (SIGTERM: the server drains) and remove the container with its volumes. The image shipped to the
        engine stays (a redeploy ships nothing); ``retire``/``abort`` and ``delete(delete_image=True)`` remove it."""
        from nbdeploy.builders.docker_builder import import_docker

        if not handle.get("engine"):
            return
        docker = import_docker()
        container = self._container(handle) if handle.get("container") else None
        if container is not None:
            try:
                if container.status in ("running", "restarting"):
                    container.stop(timeout=STOP_GRACE_S)
                container.remove(v=True, force=True)
            except docker.errors.NotFound:
                pass

    def remove_copies(self, handle: Handle) -> None:
        """Remove the revision's image from the remote engine, unless another container uses it."""
        from nbdeploy.builders.docker_builder import import_docker

        if not handle.get("engine") or not handle.get("image"):
            return
        try:
            self._client(handle["engine"]).images.remove(handle["image"])
        except import_docker().errors.APIError:
            pass  # gone already, or the image of another revision that runs (an update that kept it)

    def retire(self, old: Handle, new: Handle) -> None:
        """Stop the replaced revision and remove its image from the engine (nothing left behind)."""
        self.stop(old)
        if old.get("image") != new.get("image"):
            self.remove_copies(old)

    def abort(self, new: Handle, old: Handle | None) -> None:
        """Remove the failed revision and its image; ``old`` keeps serving."""
        self.stop(new)
        if old is None or old.get("image") != new.get("image"):
            self.remove_copies(new)

    def endpoint(self, handle: Handle) -> Endpoint | None:
        return Endpoint(
            f"{self._scheme(handle)}://{_url_host(handle['host'])}:{handle['port']}", verify=handle.get("verify", True)
        )

    def private_endpoint(self, handle: Handle) -> Endpoint | None:
        return Endpoint(
            f"{self._scheme(handle)}://{_url_host(handle['address'])}:{handle['admin_port']}",
            verify=_private_verify(handle),
        )

    def promote(self, new: Handle, old: Handle | None) -> Handle:
        """SIGUSR1: ``new`` binds the public port beside ``old`` (the caller retires ``old``, which drains)."""
        container = self._container(new)
        if container is None or container.status != "running":
            evidence = self.logs(new, 30)
            self.stop(new)
            raise UpdateFailed(
                new["service"], str(State.FAILED), f"revision {new['revision']} stopped before promotion", evidence
            )
        if not new.get("held"):
            container.put_archive(RUN_DIR + "/state", _tar({"promoted": b""}, _container_uid(container)))
            return new
        t0 = time.monotonic()
        try:
            container.kill(signal="SIGUSR1")
            while True:
                info = _status_file(container)
                if info.get("state") == "serving":
                    break
                if info.get("state") == "failed" or time.monotonic() - t0 > PROMOTE_TIMEOUT_S:
                    why = info.get("error") or f"state {info.get('state')!r} after {time.monotonic() - t0:.1f}s"
                    raise UpdateFailed(
                        new["service"],
                        str(State.FAILED),
                        f"revision {new['revision']} did not take the public port {new['port']}: {why}",
                        self.logs(new, 30),
                    )
                time.sleep(0.05)
            container.put_archive(RUN_DIR + "/state", _tar({"promoted": b""}, _container_uid(container)))
            if new["restart_policy"].get("Name", "no") != "no":
                container.update(restart_policy=new["restart_policy"])
        except BaseException:
            self.stop(new)
            raise
        self.progress(
            f"revision {new['revision']} serves port {new['port']} "
            f"({(time.monotonic() - t0) * 1000:.0f} ms after SIGUSR1)"
        )
        return {**new, "held": False}

    def update_keys(self, handle: Handle, keys: tuple[str, str] | None) -> None:
        container = self._container(handle)
        if container is None:
            raise Conflict(f"revision {handle.get('revision')} of {handle.get('service')} is not running")
        if keys is None or "NBDEPLOY_AUTH_KEYS_FILE=" not in " ".join(container.attrs["Config"].get("Env") or []):
            raise Conflict("Key auth was off when this revision started; update the service with auth_enabled=True.")
        container.put_archive(RUN_DIR, _tar({"keys.json": _keys_json(keys)}, _container_uid(container)))

    # -- helpers --------------------------------------------------------------------------------------
    @staticmethod
    def _scheme(handle: Handle) -> str:
        return "https" if handle.get("tls") else "http"

    def _running(self, handle: Handle) -> bool:
        container = self._container(handle) if handle.get("container") else None
        return container is not None and container.status == "running"


# -- engine and container helpers ----------------------------------------------------------------------
def _engine_dict(conn: EngineConnection) -> dict[str, Any]:
    return {
        "url": conn.url,
        "tls_ca": conn.tls_ca,
        "tls_cert": conn.tls_cert,
        "tls_key": conn.tls_key,
        "tls_verify": conn.tls_verify,
        "tls": conn.uses_tls,
        "name": conn.name,
    }


def _engine_address(conn: EngineConnection) -> str:
    """The engine's host: where its host-network containers are reached."""
    if conn.scheme == "unix":
        return "127.0.0.1"
    host = urlsplit(conn.url).hostname
    if not host:
        raise InvalidSpec("engine_url", f"{conn.url} names no host")
    return host


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _private_verify(handle: Handle) -> bool | str:
    verify = handle.get("verify", True)
    if handle.get("tls") and verify is True and handle["host"] != handle["address"]:
        return False  # a user's certificate names dns_name_label, not the engine's address: admin port, checked keys
    return verify


def _ports_in_use(client: Any) -> set[int]:
    used: set[int] = set()
    for container in client.containers.list(all=True, filters={"label": "nbdeploy.ports"}):
        for part in (container.labels.get("nbdeploy.ports") or "").split(","):
            if part.isdigit():
                used.add(int(part))
    return used


def _first_free(taken: set[int]) -> int:
    port = FIRST_PORT
    while port in taken:
        port += 1
    return port


def _uid(user: str | None) -> int:
    first = (user or "").split(":")[0]
    return int(first) if first.isdigit() else (0 if not first or first == "root" else 1000)


def _container_uid(container: Any) -> int:
    return _uid(container.attrs["Config"].get("User"))


def _keys_json(keys: tuple[str, str]) -> bytes:
    return json.dumps({"primaryKey": keys[0], "secondaryKey": keys[1]}).encode()


def _tar(files: dict[str, bytes], uid: int, dirs: tuple[str, ...] = ()) -> bytes:
    """A tar of ``files`` (mode 0600) and ``dirs`` (0700), owned by ``uid``: put_archive keeps the owner."""
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in dirs:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, 0o700, uid, uid, now
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), 0o600, uid, uid, now
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _run_dir_tar(files: dict[str, bytes], uid: int) -> bytes:
    dirs = ("nbdeploy", "nbdeploy/state", *(("nbdeploy/tls",) if any(f.startswith("tls/") for f in files) else ()))
    return _tar({f"nbdeploy/{k}": v for k, v in files.items()}, uid, dirs)


def _status_file(container: Any) -> dict[str, Any]:
    """The server's status file inside the container ({} when absent or unreadable)."""
    try:
        stream, _ = container.get_archive(f"{RUN_DIR}/state/status.json")
        data = b"".join(stream)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.extractfile(tar.getmembers()[0])
            return json.loads(member.read()) if member else {}
    except Exception:  # noqa: BLE001 - not written yet, or mid-replace: the next poll tells
        return {}


def _probe(endpoint: Endpoint | None) -> tuple[bool, str]:
    if endpoint is None:
        return False, "no address"
    try:
        with endpoint.client(timeout=3) as client:
            answer = client.get("/health/ready")
    except Exception as exc:  # noqa: BLE001 - connection refused, TLS failure: the reason is the detail
        return False, _first_line(exc)
    return answer.status_code == 200, f"GET /health/ready answered {answer.status_code}"


def _oom_kills(container: Any, running: bool = True) -> int:
    """OOM kills in the container's memory cgroup (v1 or v2); 0 when unreadable."""
    if not running:
        return 0
    try:
        result = container.exec_run(
            ["cat", "/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"], stderr=False
        )
    except Exception:  # noqa: BLE001 - the container stopped meanwhile; the next status() tells
        return 0
    for line in result.output.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return 0


def _gb_text(value: float | None) -> str:
    return f"{value:g} GB" if value else "none"


def _remove_stale(client: Any, name: str) -> None:
    from nbdeploy.builders.docker_builder import import_docker

    try:
        client.containers.get(name).remove(force=True, v=True)
    except import_docker().errors.NotFound:
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
