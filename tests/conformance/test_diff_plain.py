"""Undecorated run(): body string, GET query, OPTIONS, return-value rules, ids, 404/405, swagger."""

import pytest

from .test_differential import JSON, TEXT, same

SCRIPT = "plain.py"
pytestmark = pytest.mark.reference


@pytest.mark.parametrize("body", ["hello", "none", "str", "tuple", "npfloat", "ndarray", "raise", "print",
                                  '{"data": [[1, 2]]}', "", "ünïcode"])
def test_post_bodies(pair, body):
    same(pair, "POST", "/score", body.encode(), TEXT)


@pytest.mark.parametrize("ctype", ["application/json", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", "application/octet-stream"])
def test_content_types(pair, ctype):
    same(pair, "POST", "/score", b"hello", {"Content-Type": ctype})


def test_invalid_utf8(pair):
    a, _ = same(pair, "POST", "/score", b"\xff\xfe", TEXT)
    assert a.status == 400


@pytest.mark.parametrize("query", ["", "?a=1", "?a=1&b=[1,2]&c=x&c=y", "?d=&e=%7B%22k%22%3A1%7D", "?x=true&y=null"])
def test_get_query(pair, query):
    same(pair, "GET", "/score" + query)


@pytest.mark.parametrize("method,path", [("OPTIONS", "/score"), ("PUT", "/score"), ("DELETE", "/score"),
                                         ("GET", "/"), ("POST", "/"), ("OPTIONS", "/"), ("GET", "/nope"),
                                         ("GET", "/score/"), ("POST", "/swagger.json"), ("GET", "/health")])
def test_routes(pair, method, path):
    same(pair, method, path)


@pytest.mark.parametrize("headers", [
    {"x-request-id": "my-id"},
    {"x-ms-client-request-id": "client-1"},
    {"x-ms-request-id": "legacy-1"},
    {"x-ms-client-request-id": "c", "x-ms-request-id": "l", "TraceId": "t-1"},
    {"x-ms-request-id": "legacy-2", "x-ms-client-request-id": "client-2", "x-request-id": "r-2"},
    {"x-request-id": "a" * 100},
    {"x-request-id": "a" * 101},
    {"x-ms-client-request-id": "b" * 101},
    {"x-ms-request-id": "b" * 101},
])
def test_request_ids(pair, headers):
    same(pair, "POST", "/score", b"hello", {**TEXT, **headers})


@pytest.mark.parametrize("query", ["", "?version=2", "?version=2.0", "?version=3", "?version=3.0", "?version=3.1",
                                   "?version=4", "?version=abc", "?version=", "?version", "?version=&version=3",
                                   "?version=3&version=", "?other=1&version=3.1"])
def test_swagger(pair, query):
    same(pair, "GET", "/swagger.json" + query)


def test_json_body_is_not_parsed(pair):
    a, _ = same(pair, "POST", "/score", b'{"a": 1}', JSON)
    assert a.json() == {"got": '{"a": 1}'}


@pytest.mark.parametrize("path", ["/", "/swagger.json", "/swagger.json?version=3", "/score"])
def test_head(pair, path):
    a, b = same(pair, "HEAD", path)
    assert a.body == b.body == b""
    if a.status == 200:  # the length of the GET answer, without its body
        assert a.headers["content-length"] == pair[0].request("GET", path).headers["content-length"] != "0"
