"""Settings from the environment, under both servers: CORS (``AML_CORS_ORIGINS``) and the swagger metadata
(``SERVICE_PATH_PREFIX``, ``SERVICE_NAME``, ``SERVICE_VERSION``)."""

import pytest

from .test_differential import TEXT, same

SCRIPT = "plain.py"
ENV = {"AML_CORS_ORIGINS": "http://a.example, http://B.example", "SERVICE_PATH_PREFIX": "/my/prefix",
       "SERVICE_NAME": "svc-name", "SERVICE_VERSION": "2.5"}
pytestmark = pytest.mark.reference

CORS = ("access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers", "vary")
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-Custom, content-type"}


def same_cors(pair, method, path, body=None, headers=None):
    a, b = same(pair, method, path, body, headers)
    for name in CORS:
        assert a.headers.get(name) == b.headers.get(name), f"{method} {path} {headers}: {name}: {a.headers} / {b.headers}"
    return a, b


@pytest.mark.parametrize("origin", ["http://a.example", "http://b.example", "HTTP://A.EXAMPLE", "http://c.example",
                                    None])
@pytest.mark.parametrize("method,path,body,headers", [
    ("POST", "/score", b"hi", TEXT),
    ("GET", "/score?a=1", None, {}),
    ("OPTIONS", "/score", None, PREFLIGHT),
    ("OPTIONS", "/score", None, {"Access-Control-Request-Method": "PUT"}),
    ("OPTIONS", "/score", None, {}),
    ("GET", "/", None, {}),
    ("GET", "/swagger.json", None, {}),
    ("POST", "/score", b"raise", TEXT),
    ("POST", "/score", b"hi", {**TEXT, "x-request-id": "r" * 101}),
    ("GET", "/nope", None, {}),
    ("PUT", "/score", None, {}),
])
def test_cors(pair, origin, method, path, body, headers):
    a, _ = same_cors(pair, method, path, body, {**headers, **({"Origin": origin} if origin else {})})
    if a.status in (404, 405) or origin == "http://c.example":
        assert not any(name.startswith("access-control") for name in a.headers)
    elif origin is None:  # flask-cors' always_send: the first configured origin, sorted
        assert a.headers["access-control-allow-origin"] == "http://B.example"
    else:
        assert a.headers["access-control-allow-origin"] == origin


@pytest.mark.parametrize("origins", ["*", "http://only.example", "https://.*\\.example\\.com, http://x.example"])
def test_other_origin_settings(tmp_path, origins):
    from .harness import SCRIPTS, start

    servers = [start(kind, SCRIPTS / SCRIPT, tmp_path, env={"AML_CORS_ORIGINS": origins})
               for kind in ("ours", "reference")]
    try:
        for origin in (None, "http://only.example", "https://a.example.com", "http://x.example", "http://z.example"):
            for method, headers in (("POST", TEXT), ("OPTIONS", PREFLIGHT)):
                same_cors(servers, method, "/score", b"hi" if method == "POST" else None,
                          {**headers, **({"Origin": origin} if origin else {})})
    finally:
        for s in servers:
            s.stop()


def test_cors_preflight_allows_the_requested_headers(pair):
    a, _ = same_cors(pair, "OPTIONS", "/score", None, {"Origin": "http://a.example", **PREFLIGHT})
    assert a.headers["access-control-allow-methods"] == "GET, POST"
    assert a.headers["access-control-allow-headers"] == "X-Custom, content-type"


@pytest.mark.parametrize("query", ["", "?version=3", "?version=3.1"])
def test_service_metadata_and_path_prefix_in_swagger(pair, query):
    a, _ = same(pair, "GET", "/swagger.json" + query)
    doc = a.json()
    assert doc["info"]["title"] == "svc-name" and doc["info"]["version"] == "2.5"
    assert "/my/prefix/score" in doc["paths"]


def test_path_prefix_does_not_change_routing(pair):
    same(pair, "POST", "/my/prefix/score", b"hi", TEXT)
    a, _ = same(pair, "POST", "/score", b"hi", TEXT)
    assert a.status == 200
