"""The ``process`` target: the scoring server as a local subprocess, no Docker.

The embedded default for Binder, laptops and CI. The server runs detached (its own session), so services
survive a kernel restart; the handle records the pid *and* its start time, so a reused pid is never taken
for our server. Updates hand the public port over without dropping requests: the new revision starts with
``--reuse-port --hold-public`` on a private admin port, is checked there, and takes the public port on
SIGUSR1 before the old one drains.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

from nbdeploy.errors import Conflict, InvalidSpec
from nbdeploy.specs.deployment import DeploymentConfig, port_number, positive
from nbdeploy.targets.base import Handle, RevisionSpec, State, Status, Target
from nbdeploy.targets.endpoint import Endpoint
from nbdeploy.targets.net import check_port_free, client_host, free_port, probe
from nbdeploy.targets.options import Option
from nbdeploy.targets.server_status import failure_reason, read_status_file

if TYPE_CHECKING:
    from nbdeploy.builders.base import BuildRequest

log = logging.getLogger(__name__)

_children: dict[int, subprocess.Popen[bytes]] = {}
"""Servers started by this process, so their exit codes are known and zombies reaped."""


@dataclass
class ProcessDeploymentConfig(DeploymentConfig):
    """The scoring server as a local subprocess (no Docker)."""

    target: ClassVar[str] = "process"
    compute_type: ClassVar[str] = "process"
    json_keys: ClassVar[dict[str, str]] = {"port": "port", "host": "host", "workers": "workers", "isolated": "isolated"}

    port: int | None = None
    """Port on ``host``; None picks a free one."""
    host: str = "127.0.0.1"
    workers: int = 1
    isolated: bool | None = None
    """True: run in a virtual environment built from the Environment (cached by its lock); False: run in this
    interpreter (refused when it lacks a required package); None: isolated exactly when this interpreter does
    not satisfy the environment's requirements."""

    def validate(self) -> None:
        super().validate()
        if self.port is not None:
            port_number("port", self.port)
        positive("workers", self.workers)


class ProcessHandle(TypedDict):
    """What the process target records about a running revision."""

    pid: int
    pid_start: int | None
    host: str
    port: int
    log: str
    status_file: str
    held: bool
    """True while an update's new revision serves only its private admin port."""


class ProcessTarget(Target):
    """Runs each revision as ``python -m nbdeploy.server`` on this machine."""

    name = "process"
    aliases = ("subprocess",)
    description = "The scoring server as a local subprocess: no Docker, fast iteration, Binder."
    config_class = ProcessDeploymentConfig
    options = (
        Option("--port", "port", int, "Port to serve on (default: a free one)."),
        Option("--host", "host", str, "Address to bind (default 127.0.0.1)."),
        Option("--workers", "workers", int, "Scoring worker processes (default 1)."),
        Option(
            "--isolated",
            "isolated",
            bool,
            "Run in a virtual environment built from the environment's lock (default: when this "
            "interpreter lacks a required package); --no-isolated runs in this interpreter.",
        ),
    )

    def artifact_kind(self, request: BuildRequest) -> str | None:
        config = request.config
        if not isinstance(config, ProcessDeploymentConfig):
            raise InvalidSpec(
                "deployment_config", f"the process target needs a ProcessDeploymentConfig, got {type(config).__name__}"
            )
        from nbdeploy.builders.isolated import unsatisfied_requirements

        missing = unsatisfied_requirements(request.environment)
        if config.isolated is False and missing:
            raise InvalidSpec(
                "isolated",
                f"this interpreter ({sys.executable}) does not satisfy {', '.join(missing[:3])} "
                "required by the environment; deploy with --isolated (a virtual environment built from "
                "the environment), or install the packages here",
            )
        return "venv" if config.isolated or (config.isolated is None and missing) else None

    def start(self, spec: RevisionSpec, previous: Handle | None = None) -> Handle:
        config = spec.config
        if not isinstance(config, ProcessDeploymentConfig):
            raise InvalidSpec(
                "deployment_config", f"the process target needs a ProcessDeploymentConfig, got {type(config).__name__}"
            )
        handover = previous is not None and _alive(previous)
        if previous is not None and not handover:
            self.stop(previous)  # a dead server: reap what is left of it (orphaned workers) before taking its port
        # an update keeps the port, also of a server that died (a new random port would break every client)
        port = config.port or (previous or {}).get("port") or free_port(config.host)
        if not (handover and previous and previous.get("port") == port):
            check_port_free(config.host, port)
        folder = self.workspace.service_dir(spec.service)
        folder.mkdir(parents=True, exist_ok=True)
        log_path = folder / f"revision-{spec.revision}.log"
        status_path = folder / f"revision-{spec.revision}.status.json"
        status_path.unlink(missing_ok=True)
        python, module, extra_path = (sys.executable, "nbdeploy.server", None)
        if spec.artifact is not None:  # an isolated environment (builders/venv.py)
            python = spec.artifact.reference
            module, extra_path = spec.artifact.details["module"], spec.artifact.details["pythonpath"]
        argv = [
            python,
            "-m",
            module,
            "--entry-script",
            str(spec.bundle.path / spec.bundle.entry_script),
            "--model-dir",
            str(spec.bundle.path / spec.bundle.model_dir),
            "--host",
            config.host,
            "--port",
            str(port),
            "--workers",
            str(config.workers),
            "--status-file",
            str(status_path),
            "--reuse-port",
        ]
        if spec.bundle.source_dir:
            argv += ["--source-dir", str(spec.bundle.path / spec.bundle.source_dir)]
        if handover:
            argv += ["--hold-public", "--admin-port", "0"]
        env = _server_environment(spec, folder, extra_path)
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                argv,
                cwd=spec.bundle.path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _children[proc.pid] = proc
        log.info("service %s revision %d: pid %d on %s:%d", spec.service, spec.revision, proc.pid, config.host, port)
        handle: ProcessHandle = {
            "pid": proc.pid,
            "pid_start": _start_time(proc.pid),
            "host": config.host,
            "port": port,
            "log": str(log_path),
            "status_file": str(status_path),
            "held": handover,
        }
        return dict(handle)

    def status(self, handle: Handle) -> Status:
        info = read_status_file(handle.get("status_file"))
        uri = f"http://{client_host(handle['host'])}:{handle['port']}/score"
        if not _alive(handle):
            exit_info = _exit_status(handle, info)
            reason = exit_reason(info, exit_info)
            orphans = _group_members(handle)
            if orphans:
                # the master is gone and cannot come back: its workers serve unsupervised (a state nobody can
                # see or update). Stop them now, as a parent-death signal would have.
                _signal_group(handle["pid"], signal.SIGTERM)
                reason += (
                    f"; its {len(orphans)} orphaned worker process(es) (pid {', '.join(map(str, orphans))}) "
                    "were told to stop"
                )
            return Status(State.FAILED, reason, evidence=self.logs(handle, 60), details=exit_info)
        server_state = info.get("state", "loading")
        if server_state == "loading":
            return Status(State.TRANSITIONING, "init() is running", scoring_uri=uri)
        if server_state == "failed":
            return Status(State.FAILED, failure_reason(info, None), evidence=self.logs(handle, 60))
        # "ready": held back from the public port (an update's new revision) and answering on its admin
        # port, where the probe goes; Healthy there means ready to be promoted.
        private = self.private_endpoint(handle)
        ok, detail = probe(private.base_url + "/health/ready") if private else (False, "no admin port yet")
        if ok:
            return Status(State.HEALTHY, scoring_uri=uri, details=info)
        return Status(
            State.UNHEALTHY, f"readiness probe failed: {detail}", evidence=self.logs(handle, 30), scoring_uri=uri
        )

    def logs(self, handle: Handle, num_lines: int = 5000) -> str:
        return tail(Path(handle["log"]), num_lines)

    def stop(self, handle: Handle, grace_s: float = 10.0) -> None:
        """SIGTERM the server's whole process group (it drains), SIGKILL what is left after ``grace_s``.

        The group is the master's pid (``start_new_session``), so workers left behind by a master that died
        are stopped too.
        """
        if not (_alive(handle) or _group_members(handle)):
            _reap(handle)
            return
        pid = handle["pid"]
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            _reap_if_exited(handle)
            if not _alive(handle) and not _group_members(handle):
                break
            time.sleep(0.05)
        else:
            log.warning("pid %d (and its workers) did not drain in %.0fs; killing the process group", pid, grace_s)
            _signal_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and _group_members(handle):
                time.sleep(0.05)
        _reap(handle)

    def reconcile(self, service: str, current: Handle | None, others: Mapping[int, Handle | None]) -> dict[int, str]:
        """Stop the servers of revisions that are not current (and a dead current server's orphaned workers).

        A revision without a handle (its operation died between starting the server and recording it) is
        found by its status file: the pid there is stopped only if that process is a server started for this
        very status file.
        """
        done: dict[int, str] = {}
        groups = _process_groups()  # one pass over /proc, however long the history
        for revision, handle in others.items():
            found = handle or self._handle_from_status_file(service, revision)
            if found is not None and (_alive(found) or _group_members(found, groups)):
                self.stop(found)
                done[revision] = "stopped"
            else:
                if found is not None:
                    _reap(found)
                done[revision] = "was not running"
        if current is not None and not _alive(current) and _group_members(current, groups):
            self.stop(current)  # the master died; its workers must not serve on
        return done

    def _handle_from_status_file(self, service: str, revision: int) -> Handle | None:
        status_path = self.workspace.service_dir(service) / f"revision-{revision}.status.json"
        pid = read_status_file(status_path).get("pid")
        if not isinstance(pid, int) or not _cmdline_has(pid, str(status_path)):
            return None
        return {"pid": pid, "pid_start": _start_time(pid), "status_file": str(status_path)}

    def promote(self, new: Handle, old: Handle | None) -> Handle:
        if not new.get("held"):
            return new
        os.kill(new["pid"], signal.SIGUSR1)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            info = read_status_file(new.get("status_file"))
            if info.get("state") == "serving":
                return {**new, "held": False}
            if not _alive(new):
                break
            time.sleep(0.02)
        raise Conflict(
            f"revision (pid {new['pid']}) did not take the public port {new['port']}; the previous revision keeps serving"
        )

    def update_keys(self, handle: Handle, keys: tuple[str, str] | None) -> None:
        keys_file = Path(handle["log"]).parent / "keys.json"
        if keys is None:
            raise Conflict("Key auth was off when this revision started; update the service with auth_enabled=True.")
        write_keys_file(keys_file, keys)

    def endpoint(self, handle: Handle) -> Endpoint | None:
        return Endpoint(f"http://{client_host(handle['host'])}:{handle['port']}")

    def private_endpoint(self, handle: Handle) -> Endpoint | None:
        if not handle.get("held"):
            return self.endpoint(handle)
        port = read_status_file(handle.get("status_file")).get("admin_port")
        return Endpoint(f"http://{client_host(handle['host'])}:{port}") if port else None


# -- helpers -------------------------------------------------------------------------------------------


def _server_environment(spec: RevisionSpec, folder: Path, extra_path: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for key in (
        "AZUREML_ENTRY_SCRIPT",
        "AZUREML_MODEL_DIR",
        "AML_APP_ROOT",
        "AZUREML_SOURCE_DIRECTORY",
        "WORKER_COUNT",
    ):
        env.pop(key, None)
    environment = spec.environment
    if environment is not None:
        env.update(environment.environment_variables)
    env.update(spec.bundle.server_env())
    env["SERVICE_NAME"] = spec.service
    env["SERVICE_VERSION"] = str(spec.revision)
    env["PYTHONUNBUFFERED"] = "1"
    if spec.config.scoring_timeout_ms:
        env["SCORING_TIMEOUT_MS"] = str(spec.config.scoring_timeout_ms)
    if spec.keys:
        keys_file = folder / "keys.json"
        write_keys_file(keys_file, spec.keys)
        env["NBDEPLOY_AUTH_KEYS_FILE"] = str(keys_file)
    else:
        env.pop("NBDEPLOY_AUTH_KEYS_FILE", None)
    if extra_path:
        env["PYTHONPATH"] = extra_path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def write_keys_file(path: Path, keys: tuple[str, str]) -> None:
    """Write the auth keys atomically, readable by the owner only; the server re-reads it when it changes."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"primaryKey": keys[0], "secondaryKey": keys[1]}, fh)
    os.replace(tmp, path)


def tail(path: Path, num_lines: int) -> str:
    """The last ``num_lines`` lines of a text file ('' when missing), read from the end."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            block, data = 64 * 1024, b""
            while size > 0 and data.count(b"\n") <= num_lines:
                step = min(block, size)
                size -= step
                fh.seek(size)
                data = fh.read(step) + data
    except FileNotFoundError:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-num_lines:]) if num_lines > 0 else ""


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(handle: Handle) -> bool:
    pid = handle.get("pid")
    if not pid:
        return False
    proc = _children.get(pid)
    if proc is not None and proc.poll() is not None:
        return False
    start = _start_time(pid)
    if start is None:
        return False
    if handle.get("pid_start") is not None and start != handle["pid_start"]:
        return False  # the pid was reused by another process
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _exit_status(handle: Handle, info: dict[str, Any]) -> dict[str, Any]:
    """How the master ended: ``{"exit_code", "signal", "known"}``.

    Only the process that started the server (its parent) learns the exit status from the kernel; others
    read what the server wrote into its status file before exiting (``exit_code``, ``stop_signal``), which a
    SIGKILLed server cannot write.
    """
    proc = _children.get(handle.get("pid", -1))
    code = proc.poll() if proc is not None else None
    if code is not None:
        if code < 0:
            return {"exit_code": None, "signal": _signal_name(-code), "known": True}
        return {"exit_code": code, "signal": None, "known": True}
    if info.get("exit_code") is not None:
        return {"exit_code": info["exit_code"], "signal": info.get("stop_signal"), "known": True}
    return {"exit_code": None, "signal": None, "known": False}


def exit_reason(info: dict[str, Any], exit_info: dict[str, Any]) -> str:
    """Why a server is gone, with its exit code or signal, or a plain "unknown" when nobody can know it."""
    if exit_info.get("signal") and exit_info.get("exit_code") is None:
        error = info.get("error")
        return f"the scoring server was killed by {exit_info['signal']}" + (f": {error}" if error else "")
    if exit_info.get("known"):
        return failure_reason(info, exit_info.get("exit_code"))
    if info.get("state") == "failed":
        return failure_reason(info, None)
    return (
        "the scoring server exited (exit status unknown: started by another process, which alone is told "
        "how it ended; see the log)"
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], pgrp [2], start time [19])."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _process_groups() -> dict[int, list[int]]:
    """Process group id -> its live (not zombie) processes, from one pass over /proc."""
    groups: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - no procfs
        return groups
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _proc_stat(int(entry))
        if fields is not None and fields[0] != "Z":
            groups.setdefault(int(fields[2]), []).append(int(entry))
    return groups


def _group_members(handle: Handle, groups: dict[int, list[int]] | None = None) -> list[int]:
    """Live processes in the server's process group (its master and workers; the group id is the master's
    pid). Empty when the master's pid now belongs to another process: while any process of our group
    lives, the kernel does not hand the group's number out again, so a reused pid means the group is gone."""
    pgid = handle.get("pid")
    if not pgid:
        return []
    leader = _proc_stat(pgid)
    if leader is not None and handle.get("pid_start") is not None and int(leader[19]) != handle["pid_start"]:
        return []
    if groups is None:
        groups = _process_groups()
    return sorted(groups.get(pgid, []))


def _cmdline_has(pid: int, text: str) -> bool:
    try:
        return text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False


def _reap_if_exited(handle: Handle) -> None:
    proc = _children.get(handle.get("pid", -1))
    if proc is not None:
        proc.poll()


def _reap(handle: Handle) -> None:
    proc = _children.pop(handle.get("pid", -1), None)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover - not our group
        os.kill(pid, sig)
