"""inference-schema corner cases: the "hftransformersv2" dict shape, and swagger v2 skipped for a sample
holding a list of mixed element types."""

import json

import pytest

from .harness import SCRIPTS, start
from .test_differential import JSON, same

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def pair(request, tmp_path_factory):
    """(script name, (ours, reference)); the script comes from indirect parametrization."""
    tmp = tmp_path_factory.mktemp(request.param.removesuffix(".py"))
    servers = []
    try:
        servers.append(start("ours", SCRIPTS / request.param, tmp))
        servers.append(start("reference", SCRIPTS / request.param, tmp))
        yield request.param, (servers[0], servers[1])
    finally:
        for s in servers:
            s.stop()


HF = [
    {"input_data": {"input_string": ["the sky is"], "parameters": {"top_k": 5, "temperature": 0.5}}},
    {"input_data": {"input_string": ["a", "b"], "parameters": {}}},
    {"input_data": {"input_string": "not a list", "parameters": {"top_k": 1}}},
    {"input_data": {"input_string": ["x"]}},
    {"input_data": {"input_string": ["x"], "parameters": {"top_k": 1}, "extra": 1}},
    {"input_data": ["x"]},
    {},
]
MIXED = [{"row": [1, "two", 3.0]}, {"row": [4, "five", 6.5, 7]}, {"row": "abc"}, {"row": []}]


@pytest.mark.parametrize("pair,payload", [("schema_hf.py", p) for p in HF] + [("schema_mixed.py", p) for p in MIXED],
                         indirect=["pair"])
def test_post(pair, payload):
    same(pair[1], "POST", "/score", json.dumps(payload).encode(), JSON)


@pytest.mark.parametrize("pair", ["schema_hf.py", "schema_mixed.py"], indirect=True)
@pytest.mark.parametrize("query", ["", "?version=2", "?version=3", "?version=3.1"])
def test_swagger(pair, query):
    script, servers = pair
    a, _ = same(servers, "GET", "/swagger.json" + query)
    if script == "schema_mixed.py":
        v2 = query in ("", "?version=2")
        assert a.status == (404 if v2 else 200)
        if v2:
            assert "not supported" in a.json()["message"]
