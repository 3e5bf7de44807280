"""The IoT Edge deployment manifest of a service (pure): ``$edgeAgent`` with the module, ``$edgeHub`` with routes.

For teams that deploy through IoT Hub (``az iot edge set-modules --content manifest.json``). The module's
``createOptions`` carry the port binding, memory and CPU limits and labels; environment variables go in the
module's ``env``. Docker create options longer than 512 characters are split into ``createOptions01`` ...
as IoT Edge requires. Checked against the schemas published in Azure/azure-iot-cli-extension
(edgeAgent 1.1, edgeHub 1.1) in tests/unit/edge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nbdeploy.errors import InvalidSpec

SCHEMA_VERSION = "1.1"
EDGE_RUNTIME_VERSION = "1.4"
CREATE_OPTIONS_CHUNK = 512
MAX_CREATE_OPTIONS_PARTS = 8
MODULE_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
ENV_NAME = re.compile(r"^[^+#$\s.]+$")
ROUTE_NAME = re.compile(r"^[^.$# ]+$")
# Docker restart policy -> IoT Edge module restartPolicy
RESTART_POLICIES = {"always": "always", "unless-stopped": "always", "on-failure": "on-failure", "no": "never"}


@dataclass(frozen=True)
class EdgeModuleSpec:
    """What the manifest says about the service's module."""

    module: str
    image: str
    container_port: int = 5001
    host_port: int | None = 5001
    env: Mapping[str, str] = field(default_factory=dict)
    cpu_cores: float | None = None
    memory_gb: float | None = None
    restart_policy: str = "always"
    routes: Mapping[str, str] = field(default_factory=dict)
    """route name -> ``FROM ... INTO ...``; empty: the module's outputs go upstream."""
    labels: Mapping[str, str] = field(default_factory=dict)
    version: str = "1.0"
    runtime_version: str = EDGE_RUNTIME_VERSION


def create_options(spec: EdgeModuleSpec) -> dict[str, Any]:
    """The Docker create body for the module (``createOptions`` before it is turned into text)."""
    port = f"{spec.container_port}/tcp"
    options: dict[str, Any] = {"ExposedPorts": {port: {}}}
    host: dict[str, Any] = {}
    if spec.host_port:
        host["PortBindings"] = {port: [{"HostPort": str(spec.host_port)}]}
    if spec.memory_gb:
        host["Memory"] = host["MemorySwap"] = int(spec.memory_gb * 1024**3)
    if spec.cpu_cores:
        host["NanoCpus"] = int(spec.cpu_cores * 1e9)
    if host:
        options["HostConfig"] = host
    if spec.labels:
        options["Labels"] = dict(spec.labels)
    return options


def split_create_options(options: Mapping[str, Any]) -> dict[str, str]:
    """``{"createOptions": text}``, or the text in 512-character parts (``createOptions01`` ...)."""
    text = json.dumps(options, separators=(",", ":"), sort_keys=True)
    parts = [text[i : i + CREATE_OPTIONS_CHUNK] for i in range(0, len(text), CREATE_OPTIONS_CHUNK)] or ["{}"]
    if len(parts) > MAX_CREATE_OPTIONS_PARTS:
        raise InvalidSpec(
            "createOptions",
            f"is {len(text)} characters; IoT Edge takes at most {CREATE_OPTIONS_CHUNK * MAX_CREATE_OPTIONS_PARTS}",
        )
    return {("createOptions" if i == 0 else f"createOptions{i:02d}"): part for i, part in enumerate(parts)}


def render_edge_manifest(spec: EdgeModuleSpec) -> dict[str, Any]:
    """The deployment manifest (``{"modulesContent": {"$edgeAgent": ..., "$edgeHub": ...}}``) for ``spec``."""
    if not MODULE_NAME.match(spec.module):
        raise InvalidSpec("module", f"{spec.module!r}: IoT Edge module names are letters, digits, '_' and '-'")
    for key in spec.env:
        if not ENV_NAME.match(key):
            raise InvalidSpec("env", f"{key!r} is not a valid IoT Edge environment variable name")
    if spec.restart_policy not in RESTART_POLICIES:
        raise InvalidSpec("restart_policy", f"{spec.restart_policy!r}; one of {', '.join(RESTART_POLICIES)}")
    routes = dict(spec.routes) or {
        f"{spec.module}ToUpstream": f"FROM /messages/modules/{spec.module}/outputs/* INTO $upstream"
    }
    for name, route in routes.items():
        if not ROUTE_NAME.match(name) or not str(route).strip():
            raise InvalidSpec(
                "routes", f"route {name!r}: names have no '.', '$', '#' or spaces; the route is 'FROM ... INTO ...'"
            )
    rv = spec.runtime_version
    module: dict[str, Any] = {
        "version": spec.version,
        "type": "docker",
        "status": "running",
        "restartPolicy": RESTART_POLICIES[spec.restart_policy],
        "settings": {"image": spec.image, **split_create_options(create_options(spec))},
    }
    if spec.env:
        module["env"] = {k: {"value": str(v)} for k, v in spec.env.items()}
    hub_options = {
        "HostConfig": {
            "PortBindings": {p: [{"HostPort": p.split("/")[0]}] for p in ("5671/tcp", "8883/tcp", "443/tcp")}
        }
    }
    return {
        "modulesContent": {
            "$edgeAgent": {
                "properties.desired": {
                    "schemaVersion": SCHEMA_VERSION,
                    "runtime": {
                        "type": "docker",
                        "settings": {"minDockerVersion": "v1.25", "loggingOptions": "", "registryCredentials": {}},
                    },
                    "systemModules": {
                        "edgeAgent": {
                            "type": "docker",
                            "settings": {"image": f"mcr.microsoft.com/azureiotedge-agent:{rv}", "createOptions": "{}"},
                        },
                        "edgeHub": {
                            "type": "docker",
                            "status": "running",
                            "restartPolicy": "always",
                            "settings": {
                                "image": f"mcr.microsoft.com/azureiotedge-hub:{rv}",
                                **split_create_options(hub_options),
                            },
                        },
                    },
                    "modules": {spec.module: module},
                }
            },
            "$edgeHub": {
                "properties.desired": {
                    "schemaVersion": SCHEMA_VERSION,
                    "routes": routes,
                    "storeAndForwardConfiguration": {"timeToLiveSecs": 7200},
                }
            },
        }
    }
