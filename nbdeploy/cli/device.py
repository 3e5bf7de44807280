"""``nbdeploy device add|list|show|check|remove``: edge devices (Docker engines) saved in the workspace, with tags."""

from __future__ import annotations

from nbdeploy.cli.host import engine_group

device = engine_group("device", "Edge devices: Docker engines saved with tags; --selector site=plant-3 picks a group.")
