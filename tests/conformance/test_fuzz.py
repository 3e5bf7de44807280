"""Fuzz /score of a schema-decorated script with hypothesis, driven by its generated swagger: the server
itself never answers 5xx (only run() failures may, flagged x-ms-run-function-failed: True) and never dies."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import SCRIPTS, start

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                                        max_size=4), max_leaves=12)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start("ours", SCRIPTS / "schema_all.py", tmp_path_factory.mktemp("fuzz"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def params(server):
    doc = server.request("GET", "/swagger.json?version=3").json()
    return sorted(doc["components"]["schemas"]["ServiceInput"]["properties"])


def check(server, r):
    assert r.status < 500 or r.headers.get("x-ms-run-function-failed") == "True", (r.status, r.body)
    assert server.proc.poll() is None


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_json_bodies_shaped_by_swagger(server, params, data):
    body = {p: data.draw(json_values, label=p) for p in params if data.draw(st.booleans(), label=f"has {p}")}
    r = server.request("POST", "/score", json.dumps(body).encode(), {"Content-Type": "application/json"})
    check(server, r)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=64), ctype=st.sampled_from(["application/json", "text/plain", "", "application/x+json",
                                                           "multipart/form-data; boundary=z"]),
       query=st.text(st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="#% "), max_size=20))
def test_arbitrary_bytes_and_queries(server, body, ctype, query):
    headers = {"Content-Type": ctype} if ctype else {}
    check(server, server.request("POST", "/score?" + query, body, headers))
    check(server, server.request("GET", "/score?" + query))
