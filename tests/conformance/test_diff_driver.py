"""driver_module scripts: the server calls ``driver_module.run`` directly and the outer ``init()`` once."""

import pytest

from .test_differential import JSON, TEXT, same

SCRIPT = "driver.py"
pytestmark = pytest.mark.reference


@pytest.mark.parametrize("body,headers", [(b"hello", TEXT), (b'{"a": 1}', JSON)])
def test_driver_module_run_is_called(pair, body, headers):
    a, _ = same(pair, "POST", "/score", body, headers)
    assert a.json() == {"via": "driver_module", "data": body.decode(), "inits": 1}


def test_get(pair):
    same(pair, "GET", "/score?x=1")
