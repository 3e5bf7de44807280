"""How a client reaches one revision: base URL plus the TLS material to trust and present.

Targets return an :class:`Endpoint` from ``Target.endpoint`` (the public address) and
``Target.private_endpoint`` (this revision alone, before it takes traffic). Everything that talks HTTP to
a service (``Webservice.run``, the update's smoke check, widgets, batch scoring) builds its client here,
so a target behind TLS, a port-forward or another host plugs in without changing its callers.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx


@dataclass(frozen=True)
class Endpoint:
    """A base URL (``http(s)://host:port``, no path) and how to connect to it."""

    base_url: str
    verify: bool | str = True
    """For https: True (system CAs), False, or the path of a CA bundle (a per-workspace CA)."""
    client_cert: tuple[str, str] | None = None
    """(certificate, key) paths presented to servers that ask for one."""
    scoring_path: str = "/score"

    @property
    def scoring_uri(self) -> str:
        return self.base_url.rstrip("/") + self.scoring_path

    @property
    def swagger_uri(self) -> str:
        """v1's rule: the scoring URI with its last path segment replaced by swagger.json."""
        return self.scoring_uri.rsplit("/", 1)[0] + "/swagger.json"

    @property
    def port(self) -> int | None:
        return urlsplit(self.base_url).port

    def ssl_verify(self) -> bool | ssl.SSLContext:
        """What httpx's ``verify`` takes: True/False, or a context that trusts the CA bundle at ``verify`` and
        presents ``client_cert`` (httpx deprecates paths and ``cert=``)."""
        if isinstance(self.verify, bool) and not (self.verify and self.client_cert):
            return self.verify
        context = ssl.create_default_context(cafile=None if isinstance(self.verify, bool) else self.verify)
        if self.client_cert:
            context.load_cert_chain(*self.client_cert)
        return context

    def client(self, timeout: float = 60.0, **kwargs: Any) -> httpx.Client:
        """An httpx client for this endpoint (environment proxies ignored: services are reached directly)."""
        return httpx.Client(
            base_url=self.base_url, verify=self.ssl_verify(), trust_env=False, timeout=timeout, **kwargs
        )

    def async_client(self, timeout: float = 60.0, **kwargs: Any) -> httpx.AsyncClient:
        """The asynchronous twin of :meth:`client` (batch scoring, the lab server)."""
        return httpx.AsyncClient(
            base_url=self.base_url, verify=self.ssl_verify(), trust_env=False, timeout=timeout, **kwargs
        )
