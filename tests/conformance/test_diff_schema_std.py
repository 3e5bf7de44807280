"""Standard-type inference-schema parameters plus request_headers."""

import json

import pytest

from .test_differential import JSON, same

SCRIPT = "schema_std.py"
pytestmark = pytest.mark.reference


@pytest.mark.parametrize("payload", [{"text": "a", "scale": 2}, {"text": "a", "scale": 2.5}, {"text": "a"},
                                     {"text": 5, "scale": 1.0}, {"scale": "x", "text": "a"}])
def test_post(pair, payload):
    same(pair, "POST", "/score", json.dumps(payload).encode(), JSON)


@pytest.mark.parametrize("query", ["", "?version=3"])
def test_swagger(pair, query):
    same(pair, "GET", "/swagger.json" + query)
