"""Connection limits of a worker: request-head size (431), header-read timeout, a connection cap.

uvicorn's httptools protocol has none of these: a connection that never finishes its request head stays
open for ever, a request head is buffered whatever its size, and idle sockets can use up the process's
file descriptors until ``accept`` fails for real clients. :func:`protocol_class` returns a subclass of that
protocol that adds them, and :func:`sweep` is the worker's once-per-tick task that enforces the timeout.

Per request the subclass costs one overridden ``data_received`` (a counter and a few attribute reads);
the timeout needs no timer per request (the sweeper looks at every connection a few times per timeout),
and the cap is only checked when a connection is accepted.

- **Head size**: bytes received while a request head is incomplete are counted; past
  ``max_header_bytes`` the worker answers 431 ``{"message": ...}`` with ``Connection: close``, stops
  parsing (what else arrives is read and dropped, so the client can finish sending and read the answer)
  and closes the connection after a short linger. Memory stays bounded by the limit plus one read.
- **Header timeout**: a connection must deliver a complete request head within ``header_timeout``
  seconds of being accepted, or of the first byte of its next request on a kept-alive connection.
  Otherwise it is closed: with a 408 answer when part of a head arrived, silently when nothing did.
- **Keep-alive timeout**: uvicorn's own timer (``timeout_keep_alive``), set from the settings.
- **Connection cap**: at most ``max_connections`` open connections per worker (never more than the
  open-file limit allows, less a reserve). Accepting one more closes the oldest connections that have
  no request in progress (idle keep-alive or still sending their head), a batch at a time; when every
  connection has a request in progress, the new one is closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from . import jsonio
from .settings import (
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES,
)

log = logging.getLogger("nbdeploy.server")
FD_RESERVE = 32  # descriptors kept free for user code, logs and the listening sockets
LINGER_S = 2.0  # how long a rejected connection is read and drained before it is closed


def effective_max_connections(wanted: int) -> int:
    """``wanted``, lowered so that open connections cannot use up the process's open-file limit."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft == resource.RLIM_INFINITY:
            return max(1, wanted)
    except (ImportError, ValueError, OSError):  # pragma: no cover - not POSIX
        return max(1, wanted)
    try:
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError:  # pragma: no cover - no procfs
        open_now = 64
    return max(1, min(wanted, soft - open_now - FD_RESERVE))


def _json_answer(status: bytes, message: str) -> bytes:
    body = jsonio.dumps({"message": message})
    return (
        b"HTTP/1.1 %s\r\ncontent-type: application/json\r\nx-ms-run-function-failed: False\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, len(body), body)
    )


class Limits:
    """One worker's limits and its table of open connections (oldest first)."""

    def __init__(
        self,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT_S,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.max_header_bytes = int(max_header_bytes)
        self.header_timeout = float(header_timeout)
        self.max_connections = effective_max_connections(int(max_connections))
        self.batch = max(1, min(32, self.max_connections // 8))
        self.conns: dict[Any, None] = {}  # insertion order = age
        self.rejected_heads = 0
        self.timed_out = 0
        self.evicted = 0
        self.refused = 0
        self._warned = 0.0
        self.answer_431 = _json_answer(
            b"431 Request Header Fields Too Large",
            f"Request header fields too large: the request line and headers "
            f"must not exceed {self.max_header_bytes} bytes.",
        )
        self.answer_408 = _json_answer(
            b"408 Request Timeout",
            f"Request header timeout: the request head did not arrive within {self.header_timeout:g} s.",
        )

    def _warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._warned > 10.0:  # at most one line per 10 s under a flood
            self._warned = now
            log.warning(message, *args)

    def admit(self, conn: Any) -> bool:
        """Register a new connection, closing idle ones to make room; False: no room, close it."""
        conns = self.conns
        if len(conns) >= self.max_connections:
            victims = []
            for old in conns:
                # no request in progress: still sending its head, or idle between kept-alive requests
                if old.cycle is None or old.cycle.response_complete:
                    victims.append(old)
                    if len(victims) >= self.batch:
                        break
            for old in victims:
                del conns[old]
                old.transport.close()
            self.evicted += len(victims)
            if not victims:
                self.refused += 1
                self._warn(
                    "Connection cap (%d per worker) reached with a request in progress on each; "
                    "closing new connections",
                    self.max_connections,
                )
                return False
            self._warn(
                "Connection cap (%d per worker) reached: closed %d idle connection(s)",
                self.max_connections,
                len(victims),
            )
        conns[conn] = None
        return True

    def sweep_once(self, now: float) -> None:
        """Close connections whose request head is overdue (see the module docstring)."""
        timeout = self.header_timeout
        for conn in list(self.conns):
            cycle, partial = conn.cycle, conn._partial
            if cycle is not None and not (partial and cycle.response_complete):
                continue  # a request in progress, or idle after one (uvicorn's keep-alive timer)
            # a new connection (nothing complete yet), or part of the next head on a kept-alive one
            if conn._seen is not cycle:
                conn._seen, conn._seen_at = cycle, now
            elif now - conn._seen_at >= timeout:
                self.timed_out += 1
                self.conns.pop(conn, None)
                conn.head_timed_out(partial > 0)


async def sweep(limits: Limits) -> None:
    """Run :meth:`Limits.sweep_once` a few times per header timeout, for ever (cancelled at shutdown).

    A round that starts late (the loop was blocked, typically by a long ``run()``) only waits: bytes that
    arrived meanwhile are still unread in the sockets, and the next loop pass reads them.
    """
    tick = min(1.0, max(0.05, limits.header_timeout / 4))
    last = time.monotonic()
    while True:
        await asyncio.sleep(tick)
        now = time.monotonic()
        late = now - last > 2 * tick
        last = now
        if not late:
            limits.sweep_once(now)


# the names uvicorn 0.54's HttpToolsProtocol.data_received and _unset_keepalive_if_required use
_UVICORN_DATA_RECEIVED = (
    "_unset_keepalive_if_required",
    "parser",
    "feed_data",
    "httptools",
    "HttpParserError",
    "logger",
    "warning",
    "send_400_response",
    "HttpParserUpgrade",
    "_should_upgrade",
    "handle_websocket_upgrade",
    "_unsupported_upgrade_warning",
)
_UVICORN_UNSET_KEEPALIVE = ("timeout_keep_alive_task", "cancel")
_STRADDLE = (b"\n", b"\r\n")  # a read that may start with the end of a "\r\n\r\n" begun in the last one


def protocol_class(limits: Limits) -> type:
    """uvicorn's httptools protocol with ``limits`` applied.

    The hot path is one override, ``data_received``: it counts the bytes of a request head, and it sees
    that a head is complete when uvicorn has made a new request cycle. A read that takes the count past
    the limit is checked before it is parsed (the rare path: a head that big, or a big body in the same
    read as a small head), so an oversized head never reaches the application.
    """
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    base_data_received = HttpToolsProtocol.data_received
    # When uvicorn's data_received uses the same names as the one this was written against (0.54), its
    # steps are done here, without its two extra calls; any other uvicorn gets a plain call to it.
    inline = (
        HttpToolsProtocol.data_received.__code__.co_names == _UVICORN_DATA_RECEIVED
        and HttpToolsProtocol._unset_keepalive_if_required.__code__.co_names == _UVICORN_UNSET_KEEPALIVE
    )
    parser_error, parser_upgrade = httptools.HttpParserError, httptools.HttpParserUpgrade
    max_head = limits.max_header_bytes

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # set here, in one order, so that every instance keeps CPython's compact attribute layout
            self._partial = 0  # bytes of a request head still incomplete after the reads so far
            self._seen: Any = self  # the sweeper's bookkeeping: which head it is timing (by the cycle
            self._seen_at = 0.0  # before it), and since when
            self._too_large = False

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if not limits.admit(self):
                transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            limits.conns.pop(self, None)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            partial = self._partial
            if partial + len(data) > max_head and self._over_limit(partial, data, cycle):
                return
            task = self.timeout_keep_alive_task
            if task is not None:
                task.cancel()
                self.timeout_keep_alive_task = None
            try:
                self.parser.feed_data(data)
            except parser_error:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
                return
            except parser_upgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
            if self.cycle is cycle and (cycle is None or cycle.response_complete):
                self._partial = partial + len(data)  # no request started: the head is still incomplete
            elif partial:
                self._partial = 0

        def _data_received_plain(self, data: bytes) -> None:
            """The same, calling uvicorn's own ``data_received`` (for uvicorn versions not checked here)."""
            cycle = self.cycle
            partial = self._partial
            if partial + len(data) > max_head and self._over_limit(partial, data, cycle):
                return
            base_data_received(self, data)
            if self.cycle is cycle and (cycle is None or cycle.response_complete):
                self._partial = partial + len(data)
            elif partial:
                self._partial = 0

        # -- rare paths ----------------------------------------------------------------------------
        def _over_limit(self, before: int, data: bytes, cycle: Any) -> bool:
            """A big read: reject it if it takes a request head past the limit (it is not parsed then)."""
            if self._too_large:
                return True  # rejected already: drop what still comes
            if cycle is not None and not cycle.response_complete:
                return False  # the body of the request in progress
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                size = before + end + 4
            elif data.startswith(_STRADDLE):
                size = before + 3  # the terminator may have begun in the previous read
            else:
                size = before + len(data)  # no end of head in this read
            if size <= max_head:
                return False
            self._reject()
            return True

        def _reject(self) -> None:
            """431 and close, reading (and dropping) what the client still sends for a short while."""
            self._too_large = True
            self._partial = max_head  # every later read goes through _over_limit, which drops it
            limits.rejected_heads += 1
            limits.conns.pop(self, None)
            transport = self.transport
            if transport.is_closing():
                return
            transport.write(limits.answer_431)
            try:
                if transport.can_write_eof():
                    transport.write_eof()
            except (OSError, RuntimeError, NotImplementedError):
                pass
            self.loop.call_later(LINGER_S, transport.close)

        def head_timed_out(self, partial: bool) -> None:
            transport = self.transport
            if transport.is_closing():
                return
            if partial:
                transport.write(limits.answer_408)
            transport.close()

    if not inline:
        LimitedHttpToolsProtocol.data_received = LimitedHttpToolsProtocol._data_received_plain  # type: ignore[method-assign]
    return LimitedHttpToolsProtocol
