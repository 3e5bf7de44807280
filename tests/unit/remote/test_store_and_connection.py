"""Saved engines (no connection made) and connection settings: parsing, validation, storage."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from nbdeploy.errors import AlreadyExists, InvalidInput, InvalidName
from nbdeploy.remote import DeviceNotFound, EngineConnection, EngineStore, HostNotFound, parse_selector
from nbdeploy.workspace import Workspace


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "certs"
    folder.mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (folder / name).write_text(f"-----{name}-----\n")
    return {"tls_ca": str(folder / "ca.pem"), "tls_cert": str(folder / "cert.pem"), "tls_key": str(folder / "key.pem")}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path / "ws")


def test_url_normalization_and_defaults(tls_files: dict[str, str]) -> None:
    assert EngineConnection("tcp://10.0.0.2", **tls_files).url == "tcp://10.0.0.2:2376"
    assert EngineConnection("tcp://10.0.0.2").url == "tcp://10.0.0.2:2375"
    assert EngineConnection("TCP://[::1]:1234").url == "tcp://[::1]:1234"
    assert EngineConnection("ssh://me@box").url == "ssh://me@box"
    conn = EngineConnection("tcp://h:1", **tls_files, name="lab")
    assert conn.uses_tls and conn.label == "Docker engine 'lab' (tcp://h:1)"
    for bad, message in (("10.0.0.2:2376", "no scheme"), ("ftp://x", "not one of"), ("tcp://h:1/path", "no path"),
                         ("tcp://:2376", "no host"), ("tcp://h:99999", "Port")):
        with pytest.raises(InvalidInput, match=message):
            EngineConnection(bad)


def test_from_env_follows_dockers_rules(tls_files: dict[str, str]) -> None:
    folder = str(Path(tls_files["tls_ca"]).parent)
    conn = EngineConnection.from_env({"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1",
                                      "DOCKER_CERT_PATH": folder})
    assert (conn.tls_ca, conn.tls_cert, conn.tls_key, conn.tls_verify) == (
        tls_files["tls_ca"], tls_files["tls_cert"], tls_files["tls_key"], True)
    # TLS without verification: DOCKER_TLS
    loose = EngineConnection.from_env({"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS": "1", "DOCKER_CERT_PATH": folder})
    assert loose.uses_tls and not loose.tls_verify
    plain = EngineConnection.from_env({"DOCKER_HOST": "tcp://h:2375"})
    assert not plain.uses_tls
    with pytest.raises(InvalidInput, match="does not exist"):
        EngineConnection.from_env({"DOCKER_HOST": "tcp://h", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/nope"})


def test_store_round_trip_copies_files_0600(ws: Workspace, tls_files: dict[str, str]) -> None:
    hosts = EngineStore("host", ws)
    saved = hosts.add("lab", EngineConnection("tcp://10.0.0.2:2376", **tls_files))
    folder = ws.path / "engines" / "hosts" / "lab"
    assert saved.connection.tls_ca == str(folder / "ca.pem") and saved.connection.name == "lab"
    assert stat.S_IMODE((folder / "key.pem").stat().st_mode) == 0o600
    assert (folder / "key.pem").read_text() == Path(tls_files["tls_key"]).read_text()
    Path(tls_files["tls_key"]).unlink()  # the saved copy does not depend on the original
    assert hosts.get("lab").connection.tls_key == str(folder / "key.pem")
    with pytest.raises(AlreadyExists):
        hosts.add("lab", EngineConnection("tcp://10.0.0.3"))
    hosts.add("lab", EngineConnection("tcp://10.0.0.3"), replace=True)
    assert not folder.exists() and not hosts.get("lab").connection.uses_tls
    hosts.remove("lab")
    assert hosts.list() == []
    with pytest.raises(HostNotFound):
        hosts.remove("lab")


def test_devices_tags_and_selectors(ws: Workspace) -> None:
    devices = EngineStore("device", ws)
    devices.add("d1", EngineConnection("tcp://10.0.0.2"), tags={"site": "plant-3", "tier": "a"})
    devices.add("d2", EngineConnection("tcp://10.0.0.3"), tags={"site": "plant-4", "tier": "a"})
    assert [d.name for d in devices.list(parse_selector("site=plant-3"))] == ["d1"]
    assert [d.name for d in devices.list(parse_selector("tier=a, site=plant-4"))] == ["d2"]
    assert [d.name for d in devices.list({"tier": "a"})] == ["d1", "d2"]
    assert EngineStore("host", ws).list() == []
    with pytest.raises(DeviceNotFound, match="No device named 'd3'. Did you mean"):
        devices.get("d3")
    with pytest.raises(InvalidName):
        devices.add("Bad_Name", EngineConnection("tcp://x"))
    with pytest.raises(InvalidInput, match="expected key=value"):
        parse_selector("site")


def test_the_table_has_one_row_per_kind_and_name(ws: Workspace) -> None:
    EngineStore("host", ws).add("same", EngineConnection("tcp://10.0.0.2"))
    EngineStore("device", ws).add("same", EngineConnection("tcp://10.0.0.2"))
    rows = ws.db().execute("SELECT kind, name FROM remote_engines ORDER BY kind").fetchall()
    assert [tuple(r) for r in rows] == [("device", "same"), ("host", "same")]
    with pytest.raises(sqlite3.IntegrityError):
        ws.db().execute("INSERT INTO remote_engines (kind, name, url, tls, tls_verify, created_time) "
                        "VALUES ('printer', 'x', 'tcp://x', 0, 0, 'now')")


def test_resolve_engine_order(ws: Workspace, tls_files: dict[str, str]) -> None:
    from nbdeploy.remote import resolve_engine

    no_env: dict[str, str] = {}
    with pytest.raises(InvalidInput, match="needs a Docker engine.*nbdeploy host add"):
        resolve_engine(ws, environ=no_env)
    hosts = EngineStore("host", ws)
    hosts.add("lab", EngineConnection("tcp://10.0.0.2:2376", **tls_files))
    assert resolve_engine(ws, environ=no_env).name == "lab"  # the only saved host
    env = {"DOCKER_HOST": "tcp://10.0.0.9:2376", "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": str(Path(tls_files["tls_ca"]).parent)}
    assert resolve_engine(ws, environ=env).url == "tcp://10.0.0.9:2376"  # Docker's variables come first
    assert resolve_engine(ws, environ={"DOCKER_HOST": "unix:///var/run/docker.sock"}).name == "lab"  # not remote
    assert resolve_engine(ws, url="tcp://10.0.0.7", environ=env).url == "tcp://10.0.0.7:2375"  # explicit wins
    assert resolve_engine(ws, host="lab", environ=env).name == "lab"
    hosts.add("lab2", EngineConnection("tcp://10.0.0.3"))
    with pytest.raises(InvalidInput, match="several saved container hosts \\(lab, lab2\\)"):
        resolve_engine(ws, environ=no_env)
    with pytest.raises(InvalidInput, match="not both"):
        resolve_engine(ws, host="lab", url="tcp://x")
