"""Environment locks with uv: made once, reused, index settings passed without command-line secrets.

These call the real uv against the real package index (PyPI, through the machine's proxy); the index
that checks credentials is a loopback HTTP server.
"""

from __future__ import annotations

import base64
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import nbdeploy
from nbdeploy.builders import lock as lk
from nbdeploy.errors import BuildError, InvalidSpec
from nbdeploy.server import REQUIREMENTS
from nbdeploy.specs import Environment


@pytest.fixture
def workspace(tmp_path):
    return nbdeploy.Workspace.create(tmp_path / "ws")


def test_references_are_expanded_from_the_environment():
    env = {"NBD_USER": "alice", "NBD_TOKEN": "s3cr3t"}
    assert lk.expand_references("https://${NBD_USER}:${NBD_TOKEN}@idx/simple", "pip_index_url", env) == \
        "https://alice:s3cr3t@idx/simple"
    assert lk.expand_references("https://idx/$HOME/simple", "pip_index_url", env) == "https://idx/$HOME/simple"
    with pytest.raises(InvalidSpec, match=r"pip_index_url.*\$\{NBD_MISSING\}.*export NBD_MISSING"):
        lk.expand_references("https://${NBD_MISSING}@idx/simple", "pip_index_url", env)


def test_index_settings_become_uv_variables_and_cas_a_combined_bundle(tmp_path):
    extra_ca = tmp_path / "corp.pem"
    extra_ca.write_text("-----BEGIN CERTIFICATE-----\nCORP\n-----END CERTIFICATE-----\n")
    host_ca = tmp_path / "host.pem"
    host_ca.write_text("-----BEGIN CERTIFICATE-----\nHOST\n-----END CERTIFICATE-----\n")
    options = lk.IndexOptions("https://${NBD_TOKEN}@idx/simple", ("https://a/simple", "https://b/simple"), ("idx",),
                              (str(extra_ca),))
    env = lk.uv_environment(options, tmp_path / "bundle.pem",
                            base={"NBD_TOKEN": "tok", "SSL_CERT_FILE": str(host_ca), "UV_INDEX_URL": "https://old"})
    assert env["UV_DEFAULT_INDEX"] == "https://tok@idx/simple" and "UV_INDEX_URL" not in env
    assert env["UV_EXTRA_INDEX_URL"] == "https://a/simple https://b/simple"
    assert env["UV_INSECURE_HOST"] == "idx"
    bundle = Path(env["SSL_CERT_FILE"]).read_text()
    assert "HOST" in bundle and "CORP" in bundle
    plain = lk.uv_environment(lk.IndexOptions(), tmp_path / "unused.pem", base={"SSL_CERT_FILE": str(host_ca)})
    assert plain["SSL_CERT_FILE"] == str(host_ca) and not (tmp_path / "unused.pem").exists()
    host_pip = {"PIP_INDEX_URL": "https://mirror/simple", "PIP_EXTRA_INDEX_URL": "https://x/simple", "PIP_TRUSTED_HOST": "mirror"}
    from_pip = lk.uv_environment(lk.IndexOptions(), tmp_path / "unused.pem", base=host_pip)
    assert (from_pip["UV_DEFAULT_INDEX"], from_pip["UV_EXTRA_INDEX_URL"], from_pip["UV_INSECURE_HOST"]) == \
        ("https://mirror/simple", "https://x/simple", "mirror")
    own = lk.uv_environment(lk.IndexOptions("https://own/simple"), tmp_path / "unused.pem", base=host_pip)
    assert own["UV_DEFAULT_INDEX"] == "https://own/simple"  # the environment's own index wins


def test_an_environment_is_resolved_once_and_reused(workspace):
    env = Environment.from_dict({"name": "e", "pip": ["six"]})
    messages: list[str] = []
    first = lk.lock_environment(workspace, env, messages.append, python_version="3.11")
    assert first.path is not None and first.path.parent == workspace.cache_dir / "locks"
    assert any(p.startswith("six==") for p in first.packages)
    assert {r.split("==")[0] for r in REQUIREMENTS} <= {p.split("==")[0] for p in first.packages}
    assert "--hash=sha256:" in first.text and first.python_version == "3.11"
    assert first.path.with_suffix(".json").is_file()
    assert any(m.startswith("locked ") for m in messages)
    stamp = first.path.stat().st_mtime_ns
    messages.clear()
    again = lk.lock_environment(workspace, Environment.from_dict({"name": "renamed", "pip": ["six"]}),
                                messages.append, python_version="3.11")
    assert again.digest == first.digest and again.text == first.text and messages == []
    assert first.path.stat().st_mtime_ns == stamp  # read, not resolved again
    other = lk.lock_environment(workspace, env, python_version="3.10")
    assert other.key != first.key and other.python_version == "3.10"


def test_a_missing_package_is_named(workspace):
    env = Environment.from_dict({"name": "e", "pip": ["nbdeploy-no-such-package-xyz==0.0.1"]})
    with pytest.raises(BuildError) as info:
        lk.lock_environment(workspace, env)
    assert "'nbdeploy-no-such-package-xyz==0.0.1'" in info.value.reason
    assert info.value.reason.startswith("Resolving the environment failed: could not find the package")


class _RecordingIndex(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []
    cmdlines: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        auth = self.headers.get("Authorization", "")
        type(self).seen.append((self.path, auth))
        type(self).cmdlines.extend(_all_cmdlines())
        if not auth:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="idx"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_error(404)  # not here: uv goes on to the default index

    def log_message(self, *args: object) -> None:
        pass


def _all_cmdlines() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found.append(Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return found


def test_index_credentials_come_from_a_reference_and_never_reach_a_command_line(workspace, monkeypatch):
    token = "tok-" + os.urandom(8).hex()
    monkeypatch.setenv("NBD_TEST_INDEX_TOKEN", token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingIndex)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _RecordingIndex.seen, _RecordingIndex.cmdlines = [], []
    try:
        env = Environment.from_dict({
            "name": "e", "pip": ["six"],
            "pip_extra_index_urls": [f"http://user:${{NBD_TEST_INDEX_TOKEN}}@127.0.0.1:{server.server_address[1]}/simple"],
        })
        assert "${NBD_TEST_INDEX_TOKEN}" in str(env.to_dict())  # what gets stored is the reference
        lock = lk.lock_environment(workspace, env)
    finally:
        server.shutdown()
        server.server_close()
    expected = "Basic " + base64.b64encode(f"user:{token}".encode()).decode()
    assert any(auth == expected for _, auth in _RecordingIndex.seen), _RecordingIndex.seen
    assert _RecordingIndex.cmdlines and not any(token in line for line in _RecordingIndex.cmdlines)
    assert token not in lock.text and token not in lock.path.with_suffix(".json").read_text()
    assert any(p.startswith("six==") for p in lock.packages)
