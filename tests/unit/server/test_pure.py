"""In-process unit tests of the server's pure pieces."""

from __future__ import annotations

import json
import os
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbdeploy.server import shims
from nbdeploy.server.app import query_dict
from nbdeploy.server.auth import KeyAuth
from nbdeploy.server.model_path import Model, ModelNotFoundException, WebserviceException
from nbdeploy.server.request import AMLRequest, header_dict, parse_multipart
from nbdeploy.server.response import AMLResponse, response_parts
from nbdeploy.server.settings import load
from nbdeploy.server.status import StatusFile


def test_query_dict_rules():
    assert query_dict(b"a=1&b=[1,2]&c=x&c=y&d=") == {"a": 1, "b": [1, 2], "c": ["x", "y"], "d": ""}
    assert query_dict(b"") == {}


@given(st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=5),
                       st.text(st.characters(blacklist_categories=("Cs",)), max_size=8), max_size=5))
def test_query_dict_never_raises(params):
    from urllib.parse import urlencode

    out = query_dict(urlencode(params).encode())
    assert set(out) == set(params)


def test_header_dict_is_title_cased_and_joined():
    raw = [(b"content-type", b"text/plain"), (b"x-custom", b"a"), (b"x-custom", b"b")]
    assert header_dict(raw) == {"Content-Type": "text/plain", "X-Custom": "a,b"}


def test_multipart_files_and_fields():
    body = (b"--B\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\nv\r\n"
            b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n\x00\x01\r\n--B--\r\n")
    form, files = parse_multipart("multipart/form-data; boundary=B", body)
    assert form["k"] == "v"
    f = files.getlist("file")[0]
    assert f.filename == "a.bin" and f.read() == b"\x00\x01"


def test_multipart_part_without_name_is_skipped():
    # a file part with no name= used to be filed under the key None (found by mypy)
    body = (b"--B\r\nContent-Disposition: form-data; filename=\"a.bin\"\r\n\r\n\x00\r\n"
            b"--B\r\nContent-Disposition: form-data; name*=utf-8''caf%C3%A9\r\n\r\nv\r\n--B--\r\n")
    form, files = parse_multipart("multipart/form-data; boundary=B", body)
    assert dict(files) == {}
    assert form["caf\u00e9"] == "v"


def test_amlrequest_werkzeug_api():
    scope = {"method": "POST", "path": "/score", "query_string": b"a=1&a=2",
             "headers": [(b"content-type", b"application/json"), (b"host", b"h")]}
    req = AMLRequest(scope, b'{"x": 1}')
    assert req.args.getlist("a") == ["1", "2"] and req.args["a"] == "1"
    assert req.is_json and req.json == {"x": 1} and req.get_data(as_text=True) == '{"x": 1}'
    assert req.url == "http://h/score?a=1&a=2" and req.method == "POST"


def test_amlresponse_rules():
    assert response_parts(AMLResponse(None, 200))[2] == b"{}"
    status, headers, body, failed = response_parts(AMLResponse({"a": 1}, 201, {"X-L": "a,b"}, json_str=True))
    assert (status, body, failed) == (201, b'{"a": 1}', False)
    assert [v for k, v in headers if k == b"x-l"] == [b"a", b"b"]
    resp = AMLResponse(b"img", 200)
    resp.mimetype = "image/png"
    assert (b"content-type", b"image/png") in response_parts(resp)[1]
    assert response_parts(AMLResponse("x", 503))[3] is True


def test_key_auth(tmp_path):
    keys = tmp_path / "k.json"
    keys.write_text(json.dumps({"primaryKey": "a", "secondaryKey": "b"}))
    auth = KeyAuth(str(keys))
    assert auth.check(b"Bearer a") and auth.check(b"bearer b") and not auth.check(b"Bearer c")
    assert not auth.check(None)
    assert not KeyAuth(str(tmp_path / "missing.json")).check(b"Bearer a")
    assert not KeyAuth(str(tmp_path / "missing.json"), "env").check(b"Bearer env")  # nobody gets in
    assert KeyAuth(None, "env").check(b"Bearer env")
    for broken in ("", "{not json", "[]", "{}", '{"primaryKey": ""}'):
        keys.write_text(broken)
        auth._checked = 0.0  # as if a second passed
        assert not auth.check(b"Bearer a"), broken


def test_get_model_path(tmp_path, monkeypatch):
    for v in (1, 10, 2):
        d = tmp_path / "azureml-models" / "m" / str(v)
        d.mkdir(parents=True)
        (d / f"f{v}.pkl").write_text("")
    monkeypatch.setenv("AML_APP_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert Model.get_model_path("m").endswith("m/10/f10.pkl")
    assert Model.get_model_path("m", version=2).endswith("m/2/f2.pkl")
    with pytest.raises(ModelNotFoundException):
        Model.get_model_path("absent")
    # azureml-core's classes: a version asked for and missing is a WebserviceException (same message)
    with pytest.raises(WebserviceException, match="Model m not found in cache"):
        Model.get_model_path("m", version=7)
    with pytest.raises(WebserviceException, match="Model absent not found"):
        Model.get_model_path("absent", version=1)
    (tmp_path / "azureml-models" / "m" / "2" / "extra.txt").write_text("")
    with pytest.raises(WebserviceException, match="can contain only 1 file or folder"):
        Model.get_model_path("m", version=2)


def test_json_nested_too_deeply_is_a_value_error():
    from nbdeploy.server import jsonio

    with pytest.raises(jsonio.TooDeep):
        jsonio.loads("[" * 100_000 + "]" * 100_000)
    assert isinstance(jsonio.TooDeep(), ValueError)


def test_settings_flags_win_over_env(tmp_path):
    env = {"WORKER_COUNT": "3", "SCORING_TIMEOUT_MS": "50", "AML_APP_ROOT": str(tmp_path), "SERVER_PORT": "9"}
    s = load({"workers": 2, "entry_script": None}, env)
    assert (s.workers, s.scoring_timeout_ms, s.port, s.app_root) == (2, 50, 5001, str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"SCORING_TIMEOUT_MS": 7}))
    assert load({}, {"AML_APP_ROOT": str(tmp_path)}).scoring_timeout_ms == 7


def test_status_file_is_atomic(tmp_path):
    path = tmp_path / "s.json"
    sf = StatusFile(str(path), 1234, 5001)
    sf.set("loading")
    sf.set("failed", "boom")
    assert json.loads(path.read_text()) == {"pid": os.getpid(), "state": "failed", "admin_port": 1234,
                                            "public_port": 5001, "error": "boom", "exit_code": None,
                                            "stop_signal": None, "last_worker_exit": None, "worker_restarts": 0}
    sf.update(exit_code=3)
    assert json.loads(path.read_text())["exit_code"] == 3
    assert list(tmp_path.iterdir()) == [path]


def test_shims_register_only_missing_modules(monkeypatch):
    for name in [n for n in sys.modules if n == "azureml" or n.startswith("azureml.")]:
        monkeypatch.delitem(sys.modules, name)
    done = shims.register()
    from azureml.contrib.services.aml_request import rawhttp  # noqa: F401
    from azureml.core.model import Model as M

    assert "azureml.core.model" in done and M is Model
    for name in [n for n in sys.modules if n == "azureml" or n.startswith("azureml.")]:
        del sys.modules[name]


def test_histogram_lines_are_cumulative_and_end_with_inf():
    from nbdeploy.server.metrics import BUCKETS, Histogram

    h = Histogram()
    for seconds in (0.0001, 0.003, 100.0):  # first bucket, a middle one, past the last bound
        h.observe(seconds)
    lines = h.lines("x")
    buckets = [line for line in lines if line.startswith("x_bucket")]
    assert len(buckets) == len(BUCKETS) + 1
    assert buckets[0] == f'x_bucket{{le="{BUCKETS[0]}"}} 1'
    assert buckets[-2] == f'x_bucket{{le="{BUCKETS[-1]}"}} 2' and buckets[-1] == 'x_bucket{le="+Inf"} 3'
    assert "x_count 3" in lines
