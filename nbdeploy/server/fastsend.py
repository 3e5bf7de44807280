"""One write per response on uvicorn's httptools protocol.

Through the ASGI ``send`` interface, uvicorn writes the status line and headers in one ``transport.write``
and the body in a second, and checks every header name and value with two regular expressions. For a
small scoring answer those two socket writes (two TCP segments) and the checks are most of the server's
own cost per request. When ``send`` is the bound method of uvicorn's httptools ``RequestResponseCycle``,
:func:`make_writer` returns a function that does what that ``send`` does for a complete response
(start + body, no ``more_body``) but with a single write. Anything it is not sure about (another
protocol, a paused or closed transport, a header value uvicorn would refuse, an unknown uvicorn
version) returns ``False`` and the caller uses the plain ASGI messages instead, so the bytes on the wire
are the same either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_CLOSE = (b"connection", b"close")
_NEEDED = (
    "transport",
    "flow",
    "default_headers",
    "message_event",
    "on_response",
    "keep_alive",
    "scope",
    "disconnected",
    "response_started",
    "response_complete",
    "access_log",
)


def make_writer() -> Callable[[Any, int, list[tuple[bytes, bytes]], bytes], bool] | None:
    """The single-write function for this uvicorn, or ``None`` when its internals are not the expected ones."""
    try:
        from uvicorn.protocols.http import httptools_impl as impl
    except ImportError:  # pragma: no cover - httptools missing
        return None
    cycle_type = getattr(impl, "RequestResponseCycle", None)
    status_lines = getattr(impl, "STATUS_LINE", None)
    value_re = getattr(impl, "HEADER_VALUE_RE", None)
    if cycle_type is None or not isinstance(status_lines, dict) or value_re is None:
        return None
    init_names = cycle_type.__init__.__code__.co_names
    if not all(name in init_names for name in _NEEDED if name not in ("scope",)):
        return None
    bad_value = value_re.search
    cache: list[Any] = [None, b""]  # (uvicorn's default headers list, its encoded lines)

    def write(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bool:
        """Write the whole response if ``send`` belongs to uvicorn's httptools cycle; False: not done.

        ``headers`` must have lower-case names, a ``content-length`` and no ``transfer-encoding``;
        the caller builds them (never user code).
        """
        cycle: Any = getattr(send, "__self__", None)  # uvicorn's RequestResponseCycle (untyped internals)
        if type(cycle) is not cycle_type:
            return False
        if cycle.response_started or cycle.disconnected or cycle.access_log or cycle.flow.write_paused:
            return False  # the ASGI path handles (and waits for) these cases
        # HEADER_VALUE_RE is a character class: one search over all values is the same test as one per value
        if bad_value(b"".join([value for _, value in headers])):
            return False  # uvicorn refuses it (RuntimeError, then its own 500): let it
        has_close = _CLOSE in headers
        default = cycle.default_headers  # uvicorn replaces the list when the date changes (once a second)
        if default is not cache[0]:
            cache[0], cache[1] = default, b"".join([b"%s: %s\r\n" % h for h in default])
        parts = [status_lines[status], cache[1], *[b"%s: %s\r\n" % h for h in headers]]
        if not cycle.keep_alive and not has_close:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if cycle.scope["method"] != "HEAD":
            parts.append(body)
        cycle.response_started = True
        cycle.waiting_for_100_continue = False
        cycle.chunked_encoding = False
        cycle.expected_content_length = 0
        if has_close:
            cycle.keep_alive = False
        cycle.transport.write(b"".join(parts))
        cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            cycle.transport.close()
        cycle.on_response()
        return True

    return write
