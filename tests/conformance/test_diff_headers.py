"""run(data, request_headers): the headers dict the script receives."""

import pytest

from .test_differential import TEXT, same

SCRIPT = "headers.py"
pytestmark = pytest.mark.reference


@pytest.mark.parametrize("headers", [TEXT, {**TEXT, "X-Custom": "v"}, {**TEXT, "x-ms-request-id": "r", "TraceId": "t"},
                                     {"Content-Type": "application/json", "Authorization": "Bearer z"}])
def test_headers_seen_by_run(pair, headers):
    a, _ = same(pair, "POST", "/score", b"x", headers)
    assert a.json()["headers"]["Content-Type"] == headers["Content-Type"]
