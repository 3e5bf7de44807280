"""inference-schema decorated run(): 415/400 answers, conversion failures (500), swagger from samples."""

import json

import pytest

from .test_differential import JSON, TEXT, same

SCRIPT = "schema_all.py"
pytestmark = pytest.mark.reference

GOOD = {"data": [[1.0, 2.0]], "df": [{"a": 1, "b": "x"}]}


@pytest.mark.parametrize("body,headers", [
    (json.dumps(GOOD), JSON),
    (json.dumps({**GOOD, "k": 5}), JSON),
    (json.dumps({**GOOD, "extra": 1}), JSON),
    (json.dumps(GOOD), {"Content-Type": "application/json; charset=utf-8"}),
    (json.dumps(GOOD), {"Content-Type": "application/vnd.api+json"}),
    (json.dumps(GOOD), TEXT),
    (json.dumps(GOOD), {}),
    ("", JSON),
    ("not json", JSON),
    ("[1, 2]", JSON),
    ("{}", JSON),
    (json.dumps({"data": [[1.0, 2.0]]}), JSON),
    (json.dumps({**GOOD, "data": [1.0, 2.0]}), JSON),
    (json.dumps({**GOOD, "data": "x"}), JSON),
    (json.dumps({**GOOD, "k": 99}), JSON),
    (json.dumps({"data": [[1, 2]], "df": {"a": [1], "b": ["x"]}}), JSON),
])
def test_post(pair, body, headers):
    same(pair, "POST", "/score", body.encode(), headers)


@pytest.mark.parametrize("query", ['?data=[[1,2]]&df=[{"a":1,"b":"x"}]', "?data=[[1,2]]", ""])
def test_get(pair, query):
    same(pair, "GET", "/score" + query.replace('"', "%22").replace("{", "%7B").replace("}", "%7D"))


@pytest.mark.parametrize("query", ["", "?version=3", "?version=3.1"])
def test_swagger_from_samples(pair, query):
    a, _ = same(pair, "GET", "/swagger.json" + query)
    doc = a.json()
    schemas = doc["definitions"] if "swagger" in doc else doc["components"]["schemas"]
    assert schemas["ServiceInput"]["properties"]["data"]["format"] == "numpy.ndarray"
