"""A swagger2.json next to the script (AML_APP_ROOT) is served verbatim; version 3 is still generated."""

import pytest

from .test_differential import same

SCRIPT = "user_swagger/score.py"
pytestmark = pytest.mark.reference


@pytest.mark.parametrize("query", ["", "?version=2", "?version=3", "?version=3.1"])
def test_swagger(pair, query):
    a, _ = same(pair, "GET", "/swagger.json" + query)
    if query in ("", "?version=2"):
        assert a.json()["info"]["title"] == "user provided"
