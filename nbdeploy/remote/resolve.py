"""Which engine a remote target uses: the one named in its config, else Docker's variables, else a saved host.

Order (issue 13): an explicit ``url`` (with its TLS files) or a saved ``host`` name from the deployment
config; else ``DOCKER_HOST`` (with ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``) when it names a remote
engine; else the workspace's only saved container host. Anything else is a one-line error saying what to
give.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from nbdeploy.errors import InvalidInput
from nbdeploy.remote.connection import EngineConnection
from nbdeploy.remote.store import EngineStore
from nbdeploy.workspace import PathLike, Workspace


def resolve_engine(
    workspace: Workspace | PathLike | None = None,
    *,
    host: str | None = None,
    url: str | None = None,
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    tls_verify: bool = True,
    environ: Mapping[str, str] | None = None,
    what: str = "this target",
) -> EngineConnection:
    """The :class:`EngineConnection` for a remote target (see the module docstring for the order)."""
    if host and url:
        raise InvalidInput(f"{what}: give either an engine URL or a saved host name, not both.")
    if host:
        return EngineStore("host", workspace).get(host).connection
    if url:
        return EngineConnection(url, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key, tls_verify=tls_verify)
    env = os.environ if environ is None else environ
    if env.get("DOCKER_HOST", "").startswith(("tcp://", "ssh://")):
        return EngineConnection.from_env(env)
    saved = EngineStore("host", workspace).list()
    if len(saved) == 1:
        return saved[0].connection
    if saved:
        names = ", ".join(s.name for s in saved)
        raise InvalidInput(f"{what}: several saved container hosts ({names}); name one (host=NAME).")
    raise InvalidInput(
        f"{what} needs a Docker engine: give its URL and TLS files, set DOCKER_HOST (with DOCKER_TLS_VERIFY=1 "
        "and DOCKER_CERT_PATH), or save one with `nbdeploy host add NAME --url tcp://HOST:2376 --tls-ca ... "
        "--tls-cert ... --tls-key ...`."
    )
