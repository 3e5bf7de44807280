"""How to reach one Docker engine: its URL and TLS material, and a connected docker SDK client for it.

``EngineConnection.from_env()`` reads Docker's own variables (``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``,
``DOCKER_TLS``, ``DOCKER_CERT_PATH``). :meth:`EngineConnection.client` always uses *our* CA for TLS, even
when ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` are set (``requests`` would otherwise let them replace it), and
never sends engine traffic through an HTTP proxy from the environment.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nbdeploy.errors import InvalidInput

log = logging.getLogger(__name__)

SCHEMES = ("tcp", "ssh", "unix")
DEFAULT_TLS_PORT = 2376
DEFAULT_PLAIN_PORT = 2375
LOCAL_SOCKET = "unix:///var/run/docker.sock"
#: API version used for the first request; the engine's own (capped by the SDK's) is taken after it.
_FLOOR_API = "1.24"


@dataclasses.dataclass(frozen=True)
class EngineInfo:
    """What an engine said about itself when checked."""

    version: str
    api_version: str
    os: str
    arch: str

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class EngineConnection:
    """A Docker engine reached by ``url`` (``tcp://host:port``, ``ssh://user@host`` or ``unix:///path``).

    TLS is on when any of ``tls_ca``/``tls_cert``/``tls_key`` is given (or ``tls=True``); ``tls_verify``
    checks the engine's certificate against ``tls_ca``. ``name`` only labels the engine in messages.
    Bad combinations raise :class:`~nbdeploy.errors.InvalidInput` here, before anything connects.
    """

    url: str
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_verify: bool = True
    tls: bool | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        url = _normalize_url(self.url, self.uses_tls)
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "tls", self.uses_tls)
        for attr in ("tls_ca", "tls_cert", "tls_key"):
            value = getattr(self, attr)
            if value is not None:
                object.__setattr__(self, attr, str(Path(value).expanduser().absolute()))
        self._validate()

    # ----- construction ---------------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, name: str | None = None) -> EngineConnection:
        """The engine Docker's CLI would use: ``DOCKER_HOST`` (default: the local socket), and TLS from
        ``DOCKER_TLS_VERIFY``/``DOCKER_TLS`` with ``DOCKER_CERT_PATH`` (default ``~/.docker``)."""
        env = os.environ if environ is None else environ
        url = env.get("DOCKER_HOST") or LOCAL_SOCKET
        verify = _truthy(env.get("DOCKER_TLS_VERIFY"))
        tls = verify or _truthy(env.get("DOCKER_TLS"))
        if not tls:
            return cls(url=url, tls=False, tls_verify=False, name=name)
        cert_path = Path(env.get("DOCKER_CERT_PATH") or Path.home() / ".docker").expanduser()
        files = {k: cert_path / f for k, f in (("ca", "ca.pem"), ("cert", "cert.pem"), ("key", "key.pem"))}
        return cls(
            url=url,
            tls_ca=str(files["ca"]) if verify or files["ca"].is_file() else None,
            tls_cert=str(files["cert"]) if files["cert"].is_file() or verify else None,
            tls_key=str(files["key"]) if files["key"].is_file() or verify else None,
            tls_verify=verify,
            tls=True,
            name=name,
        )

    def with_name(self, name: str | None) -> EngineConnection:
        return dataclasses.replace(self, name=name)

    # ----- properties -----------------------------------------------------------------------------

    @property
    def uses_tls(self) -> bool:
        if self.tls is not None:
            return bool(self.tls)
        return any((self.tls_ca, self.tls_cert, self.tls_key))

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def address(self) -> str:
        """``host:port`` for tcp, ``user@host`` for ssh, the socket path for unix."""
        return self.url.split("://", 1)[1]

    @property
    def label(self) -> str:
        """How messages name this engine: ``Docker engine 'edge1' (tcp://10.0.0.2:2376)``."""
        return f"Docker engine {self.name!r} ({self.url})" if self.name else f"Docker engine {self.url}"

    # ----- connecting -----------------------------------------------------------------------------

    def client(self, timeout: float = 60.0) -> Any:
        """A docker SDK ``DockerClient`` connected to this engine (one request: the engine's version).

        Failures become one-line :class:`~nbdeploy.errors.EngineUnavailable` errors (see ``diagnose``).
        """
        from nbdeploy.remote.diagnose import diagnose

        docker = _import_docker()
        try:
            client = self._make_client(docker, timeout)
            engine_api = client.api.version(api_version=False).get("ApiVersion", _FLOOR_API)
            client.api._version = min(engine_api, docker.constants.DEFAULT_DOCKER_API_VERSION, key=_version_key)
        except Exception as exc:  # every failure is named by diagnose()
            raise diagnose(self, exc) from exc
        return client

    def check(self, timeout: float = 10.0) -> EngineInfo:
        """Connect, and return what the engine says about itself; EngineUnavailable (one line) when it can't."""
        from nbdeploy.remote.diagnose import diagnose

        client = self.client(timeout=timeout)
        try:
            version = client.version()
        except Exception as exc:  # named by diagnose()
            raise diagnose(self, exc) from exc
        finally:
            client.close()
        return EngineInfo(
            version=str(version.get("Version", "")),
            api_version=str(version.get("ApiVersion", "")),
            os=str(version.get("Os", "")),
            arch=str(version.get("Arch", "")),
        )

    def _make_client(self, docker: Any, timeout: float) -> Any:
        if self.scheme == "ssh":
            return docker.DockerClient(base_url=self.url, timeout=timeout, version=_FLOOR_API, use_ssh_client=True)
        tls: Any = False
        if self.uses_tls:
            tls = docker.tls.TLSConfig(
                client_cert=(self.tls_cert, self.tls_key) if self.tls_cert and self.tls_key else None,
                ca_cert=self.tls_ca if self.tls_verify else None,
                verify=bool(self.tls_verify),
            )
        # an explicit version: the SDK makes no request before trust_env is off
        client = docker.DockerClient(base_url=self.url, tls=tls, timeout=timeout, version=_FLOOR_API)
        if self.scheme == "tcp":
            # requests would let REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace our CA, and *_proxy route engine traffic
            client.api.trust_env = False
        return client

    # ----- validation -----------------------------------------------------------------------------

    def _validate(self) -> None:
        what = self.label
        if self.scheme != "tcp" and self.uses_tls:
            raise InvalidInput(f"{what}: TLS options apply to tcp:// URLs only (ssh:// is encrypted by ssh itself).")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise InvalidInput(f"{what}: give both a client certificate and its key (--tls-cert and --tls-key).")
        if self.uses_tls and self.tls_verify and not self.tls_ca:
            raise InvalidInput(
                f"{what}: verifying the engine's certificate needs the CA that signed it (--tls-ca), "
                "or turn verification off (--no-tls-verify)."
            )
        for label, path in (
            ("CA certificate", self.tls_ca),
            ("client certificate", self.tls_cert),
            ("client key", self.tls_key),
        ):
            if path is not None and not Path(path).is_file():
                raise InvalidInput(f"{what}: TLS {label} file {path} does not exist.")


def _normalize_url(url: str, tls: bool) -> str:
    text = str(url).strip()
    if "://" not in text:
        raise InvalidInput(f"Engine URL {text!r} has no scheme: use tcp://HOST:PORT, ssh://USER@HOST or unix:///PATH.")
    scheme = text.split("://", 1)[0].lower()
    if scheme in ("http", "https"):
        raise InvalidInput(
            f"Engine URL {text!r}: use tcp://{text.split('://', 1)[1]} (TLS is chosen by the --tls-* options)."
        )
    if scheme not in SCHEMES:
        raise InvalidInput(f"Engine URL {text!r}: scheme {scheme!r} is not one of tcp, ssh, unix.")
    if scheme == "unix":
        return text
    parts = urlsplit(text)
    if not parts.hostname:
        raise InvalidInput(f"Engine URL {text!r} has no host.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidInput(f"Engine URL {text!r}: only {scheme}://HOST[:PORT] is allowed, no path or query.")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"Engine URL {text!r}: {exc}.") from exc
    if scheme == "tcp":
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return f"tcp://{host}:{port or (DEFAULT_TLS_PORT if tls else DEFAULT_PLAIN_PORT)}"
    return f"ssh://{parts.netloc}"


def _truthy(value: str | None) -> bool:
    """Docker's rule for DOCKER_TLS_VERIFY/DOCKER_TLS: any non-empty value turns it on (even "0")."""
    return bool(value)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _import_docker() -> Any:
    from nbdeploy.builders.docker_builder import import_docker

    return import_docker()
