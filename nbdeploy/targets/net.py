"""Small network helpers shared by the targets: ports on this host and the readiness probe."""

from __future__ import annotations

import errno
import http.client
import socket
from urllib.parse import urlsplit

from nbdeploy.errors import Conflict

PORT_IN_USE = "Port {port} on {host} is in use; choose another port (--port) or leave it out to pick a free one."


def client_host(host: str) -> str:
    """The address a client on this host uses to reach a server bound to ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def free_port(host: str) -> int:
    """A port nothing listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((client_host(host), 0))
        return int(sock.getsockname()[1])


def check_port_free(host: str, port: int) -> None:
    """:class:`Conflict` when something listens on ``host:port``; TIME_WAIT leftovers do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise Conflict(PORT_IN_USE.format(port=port, host=host)) from exc
            raise


def probe(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """GET ``url``; (True, "") on 200, else (False, what happened)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/")
        response = conn.getresponse()
        body = response.read(500)
        if response.status == 200:
            return True, ""
        return False, f"{url} answered {response.status} {body.decode('utf-8', 'replace')}"
    except OSError as exc:
        return False, f"{url}: {exc}"
    finally:
        conn.close()
