"""``nbdeploy host`` and ``nbdeploy device`` through the real entry point, against the real TLS engines."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from nbdeploy.cli.main import main

from .conftest import engine_script

pytestmark = pytest.mark.remote


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("NBDEPLOY_WORKSPACE", raising=False)
    ws = tmp_path / "ws"

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            main(["-w", str(ws), *argv])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    assert run("workspace", "create", str(ws))[0] == 0
    run.ws = ws  # type: ignore[attr-defined]
    return run


def test_host_add_list_check_remove_round_trip(run: Any, aci_env: dict[str, str]) -> None:
    certs = Path(aci_env["DOCKER_CERT_PATH"])
    code, out, err = run("host", "add", "lab", "--url", aci_env["DOCKER_HOST"], "--tls-ca", str(certs / "ca.pem"),
                         "--tls-cert", str(certs / "cert.pem"), "--tls-key", str(certs / "key.pem"), "--check")
    assert code == 0, err
    assert f"Saved host lab: {aci_env['DOCKER_HOST']} (TLS), Docker" in out

    # the TLS files are copies inside the workspace, readable by the owner only
    saved = run.ws / "engines" / "hosts" / "lab"
    for name in ("ca.pem", "cert.pem", "key.pem"):
        assert (saved / name).read_bytes() == (certs / name).read_bytes()
        assert stat.S_IMODE((saved / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.stat().st_mode) == 0o700

    code, out, _ = run("host", "list")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split()[:3] == ["NAME", "URL", "TLS"] and len(lines) == 2
    assert lines[1].split()[:3] == ["lab", aci_env["DOCKER_HOST"], "verify"] and "never" not in lines[1]

    code, out, _ = run("host", "show", "lab")
    shown = json.loads(out)
    assert shown["tls_ca"] == str(saved / "ca.pem") and shown["engine"]["os"] == "linux"

    code, out, _ = run("host", "check", "lab")
    assert code == 0 and out.startswith("lab: Docker ")

    code, _, err = run("host", "add", "lab", "--url", aci_env["DOCKER_HOST"], "--cert-path", str(certs))
    assert code == 1 and "saved already" in err and "--replace" in err
    assert run("host", "add", "lab", "--url", aci_env["DOCKER_HOST"], "--cert-path", str(certs), "--replace")[0] == 0

    code, out, _ = run("host", "remove", "lab")
    assert code == 0 and out.strip() == "Removed host lab"
    assert not saved.exists()
    code, out, _ = run("host", "list")
    assert out.strip().splitlines()[1:] == []
    code, _, err = run("host", "remove", "lab")
    assert code == 1 and err.startswith("Error: No container host named 'lab'")


def test_saved_host_with_a_wrong_certificate_fails_in_one_line(run: Any, aci_env: dict[str, str],
                                                                devices: list[dict[str, str]]) -> None:
    certs = Path(aci_env["DOCKER_CERT_PATH"])
    code, _, err = run("host", "add", "lab", "--url", aci_env["DOCKER_HOST"], "--tls-ca", devices[0]["tls-ca"],
                       "--tls-cert", str(certs / "cert.pem"), "--tls-key", str(certs / "key.pem"), "--check")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith("Error: Docker engine 'lab' (") and "not signed by the CA" in err
    assert run("host", "list")[1].strip().splitlines()[1:] == []  # nothing saved


def test_device_add_with_tags_and_select(run: Any, devices: list[dict[str, str]]) -> None:
    lines = engine_script("edge.sh", "list").stdout.strip().splitlines()
    assert len(lines) >= 2
    for i, line in enumerate(lines[:2]):
        words = line.split()[1:]  # the printed command, minus "nbdeploy"
        site = "plant-3" if i == 0 else "plant-4"
        code, out, err = run(*words, "--tag", f"site={site}", "--tag", "tier=edge")
        assert code == 0, err
        assert out.startswith(f"Saved device {words[2]}: ")

    code, out, _ = run("device", "list", "--selector", "site=plant-3")
    rows = out.strip().splitlines()[1:]
    assert code == 0 and [r.split()[0] for r in rows] == [devices[0]["name"]]
    assert rows[0].split()[-1] == "site=plant-3,tier=edge"

    code, out, _ = run("device", "list", "-s", "tier=edge", "-o", "json")
    listed = json.loads(out)
    assert sorted(d["name"] for d in listed) == sorted(d["name"] for d in devices[:2])
    assert all(d["kind"] == "device" and d["tls"] for d in listed)

    code, out, _ = run("device", "check", devices[1]["name"])
    assert code == 0 and "linux/" in out
    assert run("device", "remove", devices[0]["name"])[0] == 0
    code, out, _ = run("device", "list")
    assert [r.split()[0] for r in out.strip().splitlines()[1:]] == [devices[1]["name"]]
    # hosts and devices are separate registries
    assert run("host", "list")[1].strip().splitlines()[1:] == []
