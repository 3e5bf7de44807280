from __future__ import annotations

from pathlib import Path

import pytest

from .harness import SCRIPTS, Server, start


@pytest.fixture(scope="module")
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Start nbdeploy and azmlinfsrv for the module's ``SCRIPT`` (a name under scripts/)."""
    script: Path = SCRIPTS / request.module.SCRIPT
    env = getattr(request.module, "ENV", {})
    tmp = tmp_path_factory.mktemp(script.stem)
    servers: list[Server] = []
    try:
        servers.append(start("ours", script, tmp, env=env))
        servers.append(start("reference", script, tmp, env=env))
        yield servers[0], servers[1]
    finally:
        for s in servers:
            s.stop()
