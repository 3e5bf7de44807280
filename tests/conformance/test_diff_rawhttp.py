"""@rawhttp: AMLRequest (args, files, get_data, json) and AMLResponse (bytes, mimetype, status, headers)."""

import pytest

from .test_differential import JSON, TEXT, same

SCRIPT = "raw.py"
pytestmark = pytest.mark.reference

BOUNDARY = "XyZ"


def multipart(files: list[tuple[str, str, bytes]], fields: dict[str, str]) -> bytes:
    out = b""
    for name, value in fields.items():
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").encode()
    for name, filename, data in files:
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


MP = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


@pytest.mark.parametrize("query,body,headers", [
    ("?mode=files", multipart([("file", "a.bin", b"\x00\x01\x02"), ("file", "b.txt", b"hello")], {"k": "v"}), MP),
    ("?mode=files", multipart([], {"k": "v"}), MP),
    ("?mode=image", b"", TEXT),
    ("?mode=json", b"", TEXT),
    ("?mode=none", b"", TEXT),
    ("?mode=fail", b"", TEXT),
    ("?mode=flagged", b"", TEXT),
    ("?mode=echo", b'{"a": 1}', JSON),
    ("?mode=echo", b"plain", TEXT),
    ("", b"\x00\xffbytes", {"Content-Type": "application/octet-stream"}),
])
def test_post(pair, query, body, headers):
    same(pair, "POST", "/score" + query, body, headers)


def test_get_args(pair):
    same(pair, "GET", "/score?a=1&b=two")


def test_options_reaches_run(pair):
    a, _ = same(pair, "OPTIONS", "/score")
    assert a.status == 500


@pytest.mark.parametrize("query", ["?mode=json", "?mode=image", ""])
def test_head_reaches_run_and_the_body_is_stripped(pair, query):
    a, b = same(pair, "HEAD", "/score" + query)
    assert a.status == b.status and a.body == b.body == b""
