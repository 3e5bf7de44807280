"""The connection-limit logic of nbdeploy/server/limits.py on uvicorn's real protocol and parser, with an
in-memory transport (the real-socket tests are tests/conformance/test_hardening.py): head-size counting
across reads, the header timeout's bookkeeping, and which connections the cap closes first."""

from __future__ import annotations

import asyncio

import pytest
import uvicorn
from uvicorn.server import ServerState

from nbdeploy.server import limits


class Transport:
    def __init__(self) -> None:
        self.out = b""
        self.closing = False
        self.eof = False

    def write(self, data: bytes) -> None:
        self.out += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 5001)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = b"%d" % len(body)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(answer))]})
    await send({"type": "http.response.body", "body": answer})


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.new_event_loop().run_until_complete(coro)


async def connect(lim: limits.Limits, state: ServerState | None = None):  # type: ignore[no-untyped-def]
    config = uvicorn.Config(app, http="httptools", lifespan="off", access_log=False, log_config=None)
    config.load()
    cls = limits.protocol_class(lim)
    proto = cls(config=config, server_state=state or ServerState(), app_state={}, _loop=asyncio.get_running_loop())
    transport = Transport()
    proto.connection_made(transport)
    return proto, transport


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_this_uvicorn_gets_the_inlined_data_received():
    cls = limits.protocol_class(limits.Limits())
    assert cls.data_received is not cls._data_received_plain  # else every read pays two more calls


@pytest.mark.parametrize("inline", [True, False])
def test_head_size_is_counted_across_reads_and_checked_before_parsing(monkeypatch, inline):
    if not inline:  # another uvicorn: uvicorn's own data_received is called
        monkeypatch.setattr(limits, "_UVICORN_DATA_RECEIVED", ())

    async def go() -> None:
        lim = limits.Limits(max_header_bytes=120)
        head = b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 60 + b"\r\n\r\n"  # 96 bytes: fits
        proto, t = await connect(lim)
        proto.data_received(head[:-3])
        proto.data_received(head[-3:])  # the end of the head straddles two reads
        await settle()
        assert t.out.startswith(b"HTTP/1.1 200") and not t.closing
        # a small head and a big body in one read, then the next request on the same connection
        t.out = b""
        proto.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"b" * 5000)
        await settle()
        assert t.out.startswith(b"HTTP/1.1 200") and t.out.endswith(b"5000")
        # a head that grows past the limit over several reads: 431, nothing parsed any more
        t.out = b""
        proto.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-B: " + b"c" * 60)
        assert t.out == b""
        proto.data_received(b"c" * 60)
        assert t.out.startswith(b"HTTP/1.1 431") and t.eof and lim.rejected_heads == 1
        proto.data_received(b"c" * 10_000 + b"\r\n\r\n")  # dropped, not parsed
        assert t.out.count(b"HTTP/1.1") == 1
        # a complete head over the limit in one read never reaches the app
        proto2, t2 = await connect(lim)
        proto2.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-C: " + b"d" * 200 + b"\r\n\r\n")
        await settle()
        assert t2.out.startswith(b"HTTP/1.1 431") and b"200" not in t2.out.split(b"\r\n")[0]

    run(go())


def test_sweeper_times_out_new_and_half_sent_heads_only():
    async def go() -> None:
        lim = limits.Limits(header_timeout=1.0)
        _, t_fresh = await connect(lim)
        partial, t_partial = await connect(lim)
        partial.data_received(b"GET / HTTP/1.1\r\nHo")
        idle, t_idle = await connect(lim)  # served once, then idle on keep-alive (uvicorn's timer)
        idle.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await settle()
        lim.sweep_once(100.0)  # first sight: stamped
        lim.sweep_once(100.5)
        assert not (t_fresh.closing or t_partial.closing)
        lim.sweep_once(101.0)
        assert t_fresh.closing and t_fresh.out == b""  # nothing sent: closed silently
        assert t_partial.closing and t_partial.out.startswith(b"HTTP/1.1 408")
        assert not t_idle.closing and lim.timed_out == 2
        # the idle connection starts a request and stalls: timed from then
        idle.data_received(b"GET / HT")
        lim.sweep_once(200.0)
        lim.sweep_once(201.0)
        assert t_idle.out.count(b"HTTP/1.1 408") == 1

    run(go())


def test_cap_closes_the_oldest_connections_without_a_request_in_progress():
    async def go() -> None:
        lim = limits.Limits(max_connections=3)
        lim.max_connections, lim.batch = 3, 1  # whatever the file limit would allow
        busy, t_busy = await connect(lim)
        busy.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")  # body pending
        await settle()
        _, t1 = await connect(lim)
        _, t2 = await connect(lim)
        new, t_new = await connect(lim)  # over the cap: the oldest idle one goes, not the busy one
        assert t1.closing and not (t_busy.closing or t2.closing or t_new.closing) and lim.evicted == 1
        new.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        await settle()
        newer, t_newer = await connect(lim)  # idle2 is the only one without a request in progress
        assert t2.closing and not t_newer.closing
        newer.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        await settle()
        _, t_last = await connect(lim)  # every connection is busy: the new one is refused
        assert t_last.closing and lim.refused == 1 and not t_busy.closing

    run(go())


@pytest.mark.parametrize("wanted", [10, 10**9])
def test_cap_fits_the_open_file_limit(wanted):
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    cap = limits.effective_max_connections(wanted)
    assert 1 <= cap <= wanted and cap < soft
