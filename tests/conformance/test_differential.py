"""Each entry script under nbdeploy and under azmlinfsrv, same requests, same answers (status, contract
headers, body). Differences that are deliberate are listed in docs/server.md and not compared here:
the value of x-ms-server-version, Connection: close, reason phrases, header-name case."""

from __future__ import annotations

import json

import pytest

from .harness import Response

pytestmark = pytest.mark.reference

ECHOED = ("content-type", "x-ms-run-function-failed", "x-ms-client-request-id", "traceid", "allow")
PRESENT = ("x-request-id", "x-ms-request-id", "x-ms-run-fn-exec-ms", "x-ms-server-version")


def body_of(r: Response) -> object:
    if r.headers.get("content-type", "").startswith("application/json") and r.body:
        return json.loads(r.body)
    return r.body


def same(pair, method: str, path: str, body=None, headers=None) -> tuple[Response, Response]:
    ours, ref = pair
    a = ours.request(method, path, body, headers)
    b = ref.request(method, path, body, headers)
    where = f"{method} {path} {body!r:.60}"
    assert a.status == b.status, f"{where}: status {a.status} != {b.status}: {a.body!r} / {b.body!r}"
    assert body_of(a) == body_of(b), f"{where}: body {a.body!r} != {b.body!r}"
    for name in ECHOED:
        if name == "allow":  # Flask builds it from a set: the order varies between runs
            if name in b.headers:
                assert set(a.headers.get(name, "").split(", ")) == set(b.headers[name].split(", "))
            continue
        assert a.headers.get(name) == b.headers.get(name), f"{where}: header {name}: {a.headers} / {b.headers}"
    for name in PRESENT:
        assert (name in a.headers) == (name in b.headers), f"{where}: header {name}: {a.headers} / {b.headers}"
    if headers and "x-request-id" in {k.lower() for k in headers} and b.status != 431:
        assert a.headers["x-request-id"] == b.headers["x-request-id"]
    sent = {k.lower() for k in (headers or {})}
    if b.status != 431 and sent & {"x-ms-request-id", "x-ms-client-request-id"}:  # which client id wins
        assert a.headers.get("x-ms-request-id") == b.headers.get("x-ms-request-id"), f"{where}: {a.headers} / {b.headers}"
    if "x-ms-request-id" in b.headers and "x-request-id" not in sent:
        # both derive it from a client id or from their own x-request-id
        assert (a.headers["x-ms-request-id"] == a.headers["x-request-id"]) == (
            b.headers["x-ms-request-id"] == b.headers["x-request-id"])
    return a, b


TEXT = {"Content-Type": "text/plain"}
JSON = {"Content-Type": "application/json"}
