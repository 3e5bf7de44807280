"""The per-request helpers of the app: request ids, CORS rules, the lazily armed scoring timer, the single-write
response path."""

from __future__ import annotations

import re
import signal
import time
import types

import pytest

from nbdeploy.server import fastsend
from nbdeploy.server.app import App, CorsPolicy, ScoringTimeout, WorkerState, request_ids
from nbdeploy.server.settings import Settings

UUID4 = re.compile(rb"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_request_ids_are_uuid4_shaped_and_unique():
    new = request_ids()
    ids = [new() for _ in range(5000)]
    assert all(UUID4.match(i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert request_ids()()[:24] != ids[0][:24]  # another process (another call) gets another prefix


def headers_for(policy: CorsPolicy, method: str, **headers: str) -> dict[bytes, bytes]:
    h = {k.replace("_", "-").encode(): v.encode() for k, v in headers.items()}
    return dict(policy.headers(method, h.get))


def test_cors_rules():
    two = CorsPolicy(["http://a.example", "http://B.example"])
    assert headers_for(two, "POST", origin="http://A.example") == {
        b"access-control-allow-origin": b"http://A.example", b"vary": b"Origin"}
    assert headers_for(two, "POST", origin="http://c.example") == {}
    assert headers_for(two, "POST")[b"access-control-allow-origin"] == b"http://B.example"  # always_send
    pre = headers_for(two, "OPTIONS", origin="http://a.example", access_control_request_method="post",
                      access_control_request_headers="x-b, X-A")
    assert pre[b"access-control-allow-methods"] == b"GET, POST"
    assert pre[b"access-control-allow-headers"] == b"X-A, x-b"
    assert b"access-control-allow-methods" not in headers_for(two, "OPTIONS", origin="http://a.example",
                                                             access_control_request_method="PUT")
    star = CorsPolicy(["*"])
    assert headers_for(star, "GET") == {b"access-control-allow-origin": b"*"}
    assert headers_for(star, "GET", origin="http://z") == {b"access-control-allow-origin": b"http://z",
                                                           b"vary": b"Origin"}
    one = CorsPolicy(["http://only"])
    assert headers_for(one, "GET", origin="http://only") == {b"access-control-allow-origin": b"http://only"}


def make_app(timeout_ms: int) -> App:
    script = types.SimpleNamespace(run=lambda data: data, batch=None, style="plain", wants_headers=False, params=[])
    settings = Settings(scoring_timeout_ms=timeout_ms)
    return App(settings, script, {}, WorkerState())  # type: ignore[arg-type]


@pytest.fixture
def restore_alarm():
    old = signal.getsignal(signal.SIGALRM)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def test_scoring_timer_is_armed_once_and_still_stops_a_late_run(restore_alarm):
    app = make_app(200)
    calls = []
    real = signal.setitimer

    def spy(which, seconds, *rest):
        calls.append(seconds)
        return real(which, seconds, *rest)

    signal.setitimer = spy  # type: ignore[assignment]
    try:
        for _ in range(50):  # many short calls: one timer, no syscall per call
            assert app._timed(lambda x: x, (1,), {}) == 1
        assert len(calls) == 1
        time.sleep(0.1)  # the pending alarm now fires before the next call's deadline: it must re-arm, not raise
        start = time.monotonic()
        with pytest.raises(ScoringTimeout):
            app._timed(time.sleep, (2,), {})
        took = time.monotonic() - start
        assert 0.19 <= took < 1.9, took  # the full timeout (0.2 s) of this call, not what was left of the earlier one; well before sleep(2) ends
        assert app._timed(lambda x: x, (2,), {}) == 2  # and the worker goes on
    finally:
        signal.setitimer = real  # type: ignore[assignment]


def test_an_idle_alarm_is_ignored(restore_alarm):
    app = make_app(50)
    app._timed(lambda: None, (), {})
    time.sleep(0.15)  # fires while idle: nothing raised, nothing pending
    assert app._alarm_at == 0.0
    with pytest.raises(ScoringTimeout):
        app._timed(time.sleep, (1,), {})


def test_single_write_path_matches_this_uvicorn():
    assert fastsend.make_writer() is not None  # else every response silently takes the slower ASGI path


def test_a_timer_cancelled_by_user_code_is_armed_again(restore_alarm):
    app = make_app(300)
    app._timed(lambda: signal.setitimer(signal.ITIMER_REAL, 0), (), {})  # run() cancels the process timer
    time.sleep(1.4)  # past when it would have fired, plus the margin
    with pytest.raises(ScoringTimeout):
        app._timed(time.sleep, (3,), {})
