"""The aci target's pure parts: its config (v1's rules), the workspace CA, the server's TLS flags."""

from __future__ import annotations

import ssl
import stat

import pytest

from nbdeploy.errors import InvalidSpec
from nbdeploy.targets.container_instance import AciDeploymentConfig, ContainerInstanceTarget, _run_dir_tar, _uid
from nbdeploy.targets.registry import get_target_class
from nbdeploy.tls import WorkspaceCA, check_certificate_pair


def test_registered_under_its_name_and_alias():
    assert get_target_class("aci") is ContainerInstanceTarget
    assert get_target_class("container-instance") is ContainerInstanceTarget


def test_v1_defaults_and_keys_on():
    config = AciDeploymentConfig()
    assert (config.cpu_cores, config.memory_gb, config.auth_enabled, config.ssl_enabled) == (0.1, 0.5, True, False)
    assert AciDeploymentConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("changes, key", [
    ({"cpu_cores": 0}, "cpu_cores"), ({"memory_gb": -1}, "memory_gb"),
    ({"enable_app_insights": True}, "enable_app_insights"), ({"collect_model_data": True}, "collect_model_data"),
    ({"ssl_cert_pem_file": "c.pem"}, "ssl_cert_pem_file"), ({"restart_policy": "sometimes"}, "restart_policy"),
    ({"host_name": "lab", "engine_url": "tcp://h:2376"}, "host_name"), ({"dns_name_label": "-bad-"}, "dns_name_label"),
])
def test_bad_values_are_refused_by_name(changes, key):
    with pytest.raises(InvalidSpec, match=key):
        AciDeploymentConfig(**changes)


def test_ssl_needs_the_certificate_and_its_own_key(tmp_path):
    ca = WorkspaceCA(tmp_path)
    one, two = ca.issue("one", ["10.0.0.1"]), ca.issue("two", ["svc.example.org"])
    (tmp_path / "c.pem").write_bytes(one.cert_pem)
    (tmp_path / "k1.pem").write_bytes(one.key_pem)
    (tmp_path / "k2.pem").write_bytes(two.key_pem)
    check_certificate_pair(str(tmp_path / "c.pem"), str(tmp_path / "k1.pem"))
    with pytest.raises(InvalidSpec, match="not the key of the certificate"):
        check_certificate_pair(str(tmp_path / "c.pem"), str(tmp_path / "k2.pem"))
    with pytest.raises(InvalidSpec, match="set but ssl_enabled is not"):
        AciDeploymentConfig(ssl_cert_pem_file=str(tmp_path / "c.pem"), ssl_key_pem_file=str(tmp_path / "k1.pem"))


def test_workspace_ca_key_is_private_and_certificates_verify(tmp_path):
    ca = WorkspaceCA(tmp_path)
    issued = ca.issue("svc", ["10.231.1.2", "svc.example.org"])
    assert stat.S_IMODE(ca.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ca.folder.stat().st_mode) == 0o700
    assert b"PRIVATE" not in ca.cert_path.read_bytes()
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(v) for v in sans.get_values_for_type(x509.IPAddress)} == {"10.231.1.2"}
    assert sans.get_values_for_type(x509.DNSName) == ["svc.example.org"]
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert_path.read_bytes()))
    context = ssl.create_default_context(cafile=str(ca.cert_path))  # loads: a usable CA file
    assert context.cert_store_stats()["x509_ca"] == 1
    assert WorkspaceCA(tmp_path).ensure() == ca.cert_path and ca.pem() == ca.cert_path.read_text()  # reused


def test_files_for_the_container_belong_to_its_user():
    import io
    import tarfile

    data = _run_dir_tar({"keys.json": b"{}", "tls/key.pem": b"k"}, 1000)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"nbdeploy", "nbdeploy/state", "nbdeploy/tls", "nbdeploy/keys.json", "nbdeploy/tls/key.pem"}
    assert all(m.uid == 1000 for m in members.values())
    assert members["nbdeploy/keys.json"].mode == 0o600 and members["nbdeploy"].mode == 0o700
    assert (_uid("1000:1000"), _uid(""), _uid("root"), _uid("2000")) == (1000, 0, 0, 2000)


def test_server_refuses_half_a_tls_pair():
    from nbdeploy.server import cli

    with pytest.raises(SystemExit):
        cli.main(["--ssl-certfile", "c.pem"])
    args = vars(cli.parser().parse_args(["--ssl-certfile", "c.pem", "--ssl-keyfile", "k.pem", "--admin-host", "0.0.0.0"]))
    from nbdeploy.server.settings import load

    settings = load(args, env={})
    assert (settings.ssl_certfile, settings.ssl_keyfile, settings.admin_host) == ("c.pem", "k.pem", "0.0.0.0")


def test_workspace_ca_command_prints_path_and_pem(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from nbdeploy.cli.main import cli

    import nbdeploy

    nbdeploy.Workspace.create(tmp_path / "ws")
    monkeypatch.setenv("NBDEPLOY_WORKSPACE", str(tmp_path / "ws"))
    result = CliRunner().invoke(cli, ["workspace", "ca"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(tmp_path / "ws" / "tls" / "ca.pem")
    pem = CliRunner().invoke(cli, ["workspace", "ca", "--pem"]).output
    assert pem.startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE" not in pem
