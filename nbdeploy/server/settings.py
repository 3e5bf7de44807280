"""Server settings: flags win over environment variables, which win over a ``config.json`` file."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

log = logging.getLogger("nbdeploy.server")

DEFAULT_BODY_LIMIT = 100 * 1024 * 1024
DEFAULT_TIMEOUT_MS = 3_600_000
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_HEADER_TIMEOUT_S = 5.0
DEFAULT_KEEP_ALIVE_TIMEOUT_S = 5.0
DEFAULT_MAX_CONNECTIONS = 1000

T = TypeVar("T")


def _env_bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Settings:
    """Everything the master and workers need; built once in the master, inherited by fork."""

    entry_script: str | None = None
    model_dir: str = ""
    source_dir: str | None = None
    app_root: str = field(default_factory=os.getcwd)
    host: str = "127.0.0.1"
    port: int = 5001
    port_reserved: bool = False  # the master picked the port (``--port 0``) and holds it with SO_REUSEPORT
    workers: int = 1
    scoring_timeout_ms: int = DEFAULT_TIMEOUT_MS
    hang_grace_ms: int = 5000
    body_limit: int = DEFAULT_BODY_LIMIT
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    keep_alive_timeout_s: float = DEFAULT_KEEP_ALIVE_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    service_name: str = "ML service"
    service_version: str = "1.0"
    service_path_prefix: str = ""
    version_header: bool = True
    cors_origins: list[str] = field(default_factory=list)
    reuse_port: bool = False
    hold_public: bool = False
    admin_port: int | None = None
    admin_host: str = "127.0.0.1"
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    status_file: str | None = None
    log_format: str = "text"
    access_log: bool = False
    graceful_timeout_s: float = 30.0
    auth_keys_file: str | None = None
    primary_key: str | None = None
    secondary_key: str | None = None
    batch_max_size: int = 0
    batch_max_latency_ms: float = 0.0
    detailed_errors: bool = False

    @property
    def entry_path(self) -> str | None:
        """Absolute path of the entry script (``None``: import ``main`` from ``sys.path``)."""
        if not self.entry_script:
            return None
        return os.path.join(self.app_root, self.entry_script)

    def export_env(self) -> None:
        """Publish the variables user code reads (``AZUREML_MODEL_DIR``, ...)."""
        os.environ["AML_APP_ROOT"] = self.app_root
        os.environ["AZUREML_MODEL_DIR"] = self.model_dir
        if self.entry_script:
            os.environ["AZUREML_ENTRY_SCRIPT"] = self.entry_script
        if self.source_dir:
            os.environ["AZUREML_SOURCE_DIRECTORY"] = self.source_dir


def _config_file(env: dict[str, str], app_root: str, entry: str | None) -> dict[str, str]:
    path = env.get("AZUREML_CONFIG_FILE")
    candidates = [path] if path else [os.path.join(app_root, "config.json")]
    if not path and entry:
        candidates.append(os.path.join(os.path.dirname(os.path.join(app_root, entry)), "config.json"))
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            try:
                with open(candidate) as fh:
                    data = json.load(fh)
            except (OSError, ValueError) as exc:
                log.warning("Ignoring config file %s: %s", candidate, exc)
                return {}
            return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {}


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def load(args: dict[str, object], env: dict[str, str] | None = None) -> Settings:
    """Build settings from parsed flags (``None`` = not given) and the environment."""
    env = dict(os.environ if env is None else env)
    app_root = os.path.abspath(env.get("AML_APP_ROOT") or os.getcwd())
    entry_flag = args.get("entry_script")
    entry = os.path.realpath(str(entry_flag)) if entry_flag else env.get("AZUREML_ENTRY_SCRIPT")
    merged = {**_config_file(env, app_root, entry), **env}
    get = merged.get

    def pick(flag: str, var: str, default: T, cast: Callable[[Any], T]) -> T:
        if args.get(flag) is not None:
            return cast(args[flag])
        value = get(var)
        return cast(value) if value not in (None, "") else default

    s = Settings(app_root=app_root, entry_script=entry)
    s.model_dir = pick("model_dir", "AZUREML_MODEL_DIR", "", str)
    s.source_dir = pick("source_dir", "AZUREML_SOURCE_DIRECTORY", None, str)
    s.host = pick("host", "NBDEPLOY_HOST", "127.0.0.1", str)
    port = args.get("port")
    s.port = 5001 if port is None else int(str(port))  # like azmlinfsrv, SERVER_PORT is not read
    s.workers = max(1, int(pick("workers", "WORKER_COUNT", 1, int)))
    s.scoring_timeout_ms = int(pick("scoring_timeout_ms", "SCORING_TIMEOUT_MS", DEFAULT_TIMEOUT_MS, int))
    s.hang_grace_ms = int(pick("hang_grace_ms", "NBDEPLOY_HANG_GRACE_MS", 5000, int))
    s.body_limit = int(pick("max_body_bytes", "NBDEPLOY_MAX_BODY_BYTES", DEFAULT_BODY_LIMIT, int))
    s.max_header_bytes = int(pick("max_header_bytes", "NBDEPLOY_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES, int))
    s.header_timeout_s = float(pick("header_timeout", "NBDEPLOY_HEADER_TIMEOUT_S", DEFAULT_HEADER_TIMEOUT_S, float))
    s.keep_alive_timeout_s = float(
        pick("keep_alive_timeout", "NBDEPLOY_KEEP_ALIVE_TIMEOUT_S", DEFAULT_KEEP_ALIVE_TIMEOUT_S, float)
    )
    s.max_connections = int(pick("max_connections", "NBDEPLOY_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, int))
    s.service_name = str(get("SERVICE_NAME") or "ML service")
    s.service_version = str(get("SERVICE_VERSION") or "1.0")
    s.service_path_prefix = str(get("SERVICE_PATH_PREFIX") or "")
    s.version_header = str(get("SERVER_VERSION_LOG_RESPONSE_ENABLED", "true")).lower() == "true"
    s.cors_origins = [o.strip() for o in str(get("AML_CORS_ORIGINS") or "").split(",") if o.strip()]
    s.reuse_port = bool(args.get("reuse_port"))
    s.hold_public = bool(args.get("hold_public"))
    s.admin_port = _optional_int(args.get("admin_port"))
    if s.hold_public and s.admin_port is None:
        s.admin_port = 0
    s.admin_host = str(args.get("admin_host") or "127.0.0.1")
    s.ssl_certfile = None if args.get("ssl_certfile") is None else str(args["ssl_certfile"])
    s.ssl_keyfile = None if args.get("ssl_keyfile") is None else str(args["ssl_keyfile"])
    s.status_file = None if args.get("status_file") is None else str(args["status_file"])
    s.log_format = pick("log_format", "NBDEPLOY_LOG_FORMAT", "text", str).lower()
    s.access_log = bool(args.get("access_log")) or _env_bool(get("NBDEPLOY_ACCESS_LOG"), False)
    s.graceful_timeout_s = float(pick("graceful_timeout", "NBDEPLOY_GRACEFUL_TIMEOUT_S", 30.0, float))
    s.auth_keys_file = get("NBDEPLOY_AUTH_KEYS_FILE") or None
    s.primary_key = get("NBDEPLOY_PRIMARY_KEY") or None
    s.secondary_key = get("NBDEPLOY_SECONDARY_KEY") or None
    s.batch_max_size = int(get("NBDEPLOY_BATCH_MAX_SIZE") or 0)
    s.batch_max_latency_ms = float(get("NBDEPLOY_BATCH_MAX_LATENCY_MS") or 0.0)
    s.detailed_errors = _env_bool(get("NBDEPLOY_DETAILED_ERRORS"), False)
    return s
