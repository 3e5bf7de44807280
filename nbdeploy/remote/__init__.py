"""Remote Docker engines: how to reach one (:class:`EngineConnection`), named ones saved in the workspace
(:class:`EngineStore`: container hosts and edge devices), and shipping a local image to one without a
registry (:func:`ship_image`, :func:`ship_image_to_many`: only the layers each engine lacks).

Modules: ``connection`` (URL + TLS -> docker SDK client), ``diagnose`` (failures -> one-line errors),
``store`` (saved hosts/devices), ``resolve`` (which engine a target uses), ``savetar`` (docker save
archives as streams), ``ship`` (image shipping).
"""

from __future__ import annotations

from nbdeploy.remote.connection import EngineConnection, EngineInfo
from nbdeploy.remote.resolve import resolve_engine
from nbdeploy.remote.ship import (
    ImageNotFound,
    PlatformMismatch,
    ShipFailed,
    ShipResult,
    progress_lines,
    ship_image,
    ship_image_to_many,
)
from nbdeploy.remote.store import DeviceNotFound, EngineStore, HostNotFound, SavedEngine, parse_selector

__all__ = [
    "DeviceNotFound",
    "EngineConnection",
    "EngineInfo",
    "EngineStore",
    "HostNotFound",
    "ImageNotFound",
    "PlatformMismatch",
    "SavedEngine",
    "ShipFailed",
    "ShipResult",
    "parse_selector",
    "progress_lines",
    "resolve_engine",
    "ship_image",
    "ship_image_to_many",
]
