"""The workspace's own certificate authority: server certificates for services that serve HTTPS without a
certificate of the user's (``ssl_enabled`` on the ``aci`` target).

The CA lives in ``<workspace>/tls/`` (folder 0700): ``ca.pem`` (share it: clients verify against it) and
``ca-key.pem`` (0600; it never leaves the workspace). :meth:`WorkspaceCA.issue` signs a certificate for a
service's addresses (IPs and DNS names); the service's key travels to the container that serves it, the CA
key does not. Clients (``Webservice.run``, smoke checks) get ``Endpoint.verify = ca.pem``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbdeploy.errors import InvalidSpec, TargetNotAvailable

CA_DAYS = 3650
CERT_DAYS = 397


def _crypto() -> Any:
    try:
        from cryptography import x509  # noqa: F401
    except ModuleNotFoundError as exc:  # pragma: no cover - a dependency of the remote extra
        raise TargetNotAvailable(
            "TLS for services needs the Python package 'cryptography': pip install cryptography"
        ) from exc
    import cryptography

    return cryptography


@dataclass(frozen=True)
class IssuedCertificate:
    """A server certificate and its key, both PEM."""

    cert_pem: bytes
    key_pem: bytes


class WorkspaceCA:
    """The per-workspace CA (created on first use)."""

    def __init__(self, workspace_path: str | os.PathLike[str]) -> None:
        self.folder = Path(workspace_path) / "tls"
        self.cert_path = self.folder / "ca.pem"
        self.key_path = self.folder / "ca-key.pem"

    def exists(self) -> bool:
        return self.cert_path.is_file() and self.key_path.is_file()

    def ensure(self) -> Path:
        """Create the CA unless it exists; returns the path of ``ca.pem``."""
        if self.exists():
            return self.cert_path
        _crypto()
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"nbdeploy workspace CA {os.urandom(4).hex()}")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(
            self.key_path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return self.cert_path

    def pem(self) -> str:
        """The CA certificate (PEM), created on first use."""
        return self.ensure().read_text()

    def issue(self, common_name: str, hosts: Iterable[str]) -> IssuedCertificate:
        """A server certificate for ``hosts`` (IP addresses and DNS names), signed by this CA."""
        self.ensure()
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        ca_key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        names: list[x509.GeneralName] = []
        for host in dict.fromkeys(h for h in hosts if h):
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        if not names:
            raise InvalidSpec("ssl", "a service certificate needs at least one address or DNS name")
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)  # type: ignore[arg-type]
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        return IssuedCertificate(
            cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )


def check_certificate_pair(cert_file: str, key_file: str) -> None:
    """InvalidSpec unless ``cert_file`` holds a PEM certificate and ``key_file`` its private key."""
    _crypto()
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    for option, path in (("ssl_cert_pem_file", cert_file), ("ssl_key_pem_file", key_file)):
        if not Path(path).is_file():
            raise InvalidSpec(option, f"file {path} does not exist")
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    except ValueError as exc:
        raise InvalidSpec("ssl_cert_pem_file", f"{cert_file} is not a PEM certificate ({exc})") from exc
    try:
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidSpec("ssl_key_pem_file", f"{key_file} is not an unencrypted PEM private key ({exc})") from exc
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.PEM, pub) != key.public_key().public_bytes(
        serialization.Encoding.PEM, pub
    ):
        raise InvalidSpec("ssl_key_pem_file", f"{key_file} is not the key of the certificate in {cert_file}")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    path.chmod(0o600)
