"""Listening sockets: SO_REUSEPORT lets several workers (and an old and a new server) share a port."""

from __future__ import annotations

import socket


def bind(host: str, port: int, reuse_port: bool, listen: bool = True, backlog: int = 2048) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv6 when ``host`` contains ``:``), listening if asked."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        if listen:
            sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock
