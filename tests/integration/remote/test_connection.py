"""Connecting to real TLS Docker engines, and the one-line errors when it cannot work."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from nbdeploy.errors import EngineUnavailable
from nbdeploy.remote import EngineConnection

from .conftest import engine_script, parse_env_line

pytestmark = pytest.mark.remote


def _one_line(exc: pytest.ExceptionInfo[EngineUnavailable], engine: EngineConnection) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    assert engine.url in text, text
    return text


def test_aci_sh_up_is_idempotent_and_prints_the_export_line(aci_env: dict[str, str]) -> None:
    result = engine_script("aci.sh", "up")
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and parse_env_line(lines[0]) == aci_env
    assert aci_env["DOCKER_HOST"].startswith("tcp://10.") and aci_env["DOCKER_HOST"].endswith(":2376")
    assert "already answers" in result.stderr


def test_tls_connect_uses_our_ca_even_with_requests_ca_bundle_set(
        aci: EngineConnection, devices: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    # requests would let these replace the session's CA; another engine's CA must not be used for aci
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", devices[0]["tls-ca"])
    monkeypatch.setenv("CURL_CA_BUNDLE", devices[0]["tls-ca"])
    info = aci.check()
    assert info.version and info.arch and info.os == "linux"
    client = aci.client()
    try:
        assert client.api.base_url.startswith("https://")
        assert isinstance(client.containers.list(all=True), list)
    finally:
        client.close()


def test_from_env_reads_dockers_variables(aci_env: dict[str, str]) -> None:
    conn = EngineConnection.from_env(aci_env)
    cert_path = aci_env["DOCKER_CERT_PATH"]
    assert conn.url == aci_env["DOCKER_HOST"] and conn.uses_tls and conn.tls_verify
    assert (conn.tls_ca, conn.tls_cert, conn.tls_key) == (f"{cert_path}/ca.pem", f"{cert_path}/cert.pem",
                                                          f"{cert_path}/key.pem")
    assert EngineConnection.from_env({}).url == "unix:///var/run/docker.sock"


def test_wrong_ca_is_one_line_naming_the_ca(aci: EngineConnection, devices: list[dict[str, str]]) -> None:
    wrong = dataclasses.replace(aci, tls_ca=devices[0]["tls-ca"])
    with pytest.raises(EngineUnavailable) as exc:
        wrong.check()
    text = _one_line(exc, wrong)
    assert "not signed by the CA" in text and devices[0]["tls-ca"] in text and "--tls-ca" in text


def test_client_certificate_from_another_ca_is_rejected(aci: EngineConnection, devices: list[dict[str, str]]) -> None:
    wrong = dataclasses.replace(aci, tls_cert=devices[0]["tls-cert"], tls_key=devices[0]["tls-key"])
    with pytest.raises(EngineUnavailable) as exc:
        wrong.check()
    text = _one_line(exc, wrong)
    assert "rejected the client certificate" in text and "CA the engine trusts" in text


def test_missing_client_certificate(aci: EngineConnection) -> None:
    no_cert = dataclasses.replace(aci, tls_cert=None, tls_key=None)
    with pytest.raises(EngineUnavailable) as exc:
        no_cert.check()
    assert "requires a client certificate" in _one_line(exc, no_cert)


def test_unreachable_engine(aci: EngineConnection) -> None:
    host = aci.address.rsplit(":", 1)[0]
    closed_port = dataclasses.replace(aci, url=f"tcp://{host}:2399")
    with pytest.raises(EngineUnavailable) as exc:
        closed_port.check(timeout=5)
    text = _one_line(exc, closed_port)
    assert "connection refused" in text and "dockerd listens" in text


def test_plain_http_engine_where_tls_was_asked(aci: EngineConnection, plain_http_engine: str) -> None:
    plain = EngineConnection(plain_http_engine, tls=False, tls_verify=False)
    assert plain.check().version  # a real engine answers there, without TLS
    with_tls = dataclasses.replace(aci, url=plain_http_engine, name="plain")
    with pytest.raises(EngineUnavailable) as exc:
        with_tls.check(timeout=5)
    text = _one_line(exc, with_tls)
    assert "'plain'" in text and "answered in plain HTTP, not TLS" in text


def test_tls_engine_reached_without_tls(aci: EngineConnection) -> None:
    plain = EngineConnection(aci.url, tls=False, tls_verify=False, name="aci")
    with pytest.raises(EngineUnavailable) as exc:
        plain.check()
    text = _one_line(exc, plain)
    assert "speaks TLS" in text and "--tls-ca" in text


def test_bad_connection_settings_fail_before_connecting(aci: EngineConnection, tmp_path: Any) -> None:
    from nbdeploy.errors import InvalidInput

    with pytest.raises(InvalidInput, match="does not exist"):
        dataclasses.replace(aci, tls_ca=str(tmp_path / "missing.pem"))
    with pytest.raises(InvalidInput, match="both a client certificate and its key"):
        dataclasses.replace(aci, tls_key=None)
    with pytest.raises(InvalidInput, match="use tcp://"):
        EngineConnection("https://10.0.0.1:2376")
    with pytest.raises(InvalidInput, match="tcp:// URLs only"):
        EngineConnection("ssh://me@host", tls_ca=aci.tls_ca)
