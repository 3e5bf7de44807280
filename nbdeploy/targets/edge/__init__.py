"""The ``edge`` target: a fleet of devices (Docker engines) that are sometimes offline (docs/edge.md).

Modules, one job each: ``config`` (EdgeDeploymentConfig), ``policy`` (per-device states -> service state),
``waves`` (canary waves, retry backoff), ``device`` (one device: run, last-known-good, rollback),
``records`` (the per-device records of a revision), ``arch`` (platform check before shipping),
``manifest`` (the IoT Edge deployment manifest), ``bundle`` (air-gapped install bundles), ``target``.
"""

from nbdeploy.targets.edge.config import EdgeDeploymentConfig
from nbdeploy.targets.edge.manifest import EdgeModuleSpec, render_edge_manifest
from nbdeploy.targets.edge.policy import DeviceRecord, DeviceState, Policy, summarize
from nbdeploy.targets.edge.target import EdgeTarget

__all__ = [
    "DeviceRecord",
    "DeviceState",
    "EdgeDeploymentConfig",
    "EdgeModuleSpec",
    "EdgeTarget",
    "Policy",
    "render_edge_manifest",
    "summarize",
]
