"""Turn a failure to reach a Docker engine into one line that names the engine and what to fix.

The docker SDK reports TLS and network problems as nested ``requests``/``urllib3``/``ssl`` exceptions whose
text is a paragraph; :func:`diagnose` reads the whole chain and picks the cause a person can act on.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from nbdeploy.errors import EngineUnavailable

if TYPE_CHECKING:
    from nbdeploy.remote.connection import EngineConnection

_CLIENT_CERT_REJECTED = (
    "alert_bad_certificate",
    "alert bad certificate",
    "alert_unknown_ca",
    "alert unknown ca",
    "certificate_required",
    "certificate required",
    "alert_certificate_unknown",
    "eof occurred in violation",
    "unexpected_eof",
    "unexpected eof",
)
_PLAIN_HTTP = (
    "wrong_version_number",
    "wrong version number",
    "record layer failure",
    "http_request",
    "packet length too long",
    "unknown protocol",
)


def diagnose(conn: EngineConnection, exc: BaseException) -> EngineUnavailable:
    """The one-line :class:`EngineUnavailable` for ``exc`` raised while talking to ``conn``'s engine."""
    text = _chain_text(exc).lower()
    reason, hint = _classify(conn, text, exc)
    return EngineUnavailable(conn.label, reason, hint)


def _classify(conn: EngineConnection, text: str, exc: BaseException) -> tuple[str, str]:
    ca = conn.tls_ca or "the CA file"
    if "client sent an http request to an https server" in text:
        return (
            "it speaks TLS but this connection has no TLS configured",
            (
                "Give its CA and a client certificate: --tls-ca/--tls-cert/--tls-key "
                "(or DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)."
            ),
        )
    if "certificate_verify_failed" in text or "certificate verify failed" in text:
        detail = _verify_detail(text)
        if "mismatch" in detail:
            return (
                f"its TLS certificate is not valid for {_host(conn)} ({detail})",
                (
                    "Connect with a name or IP listed in the certificate's subjectAltName, "
                    "or reissue the engine's certificate for this address."
                ),
            )
        if "expired" in detail:
            return (f"its TLS certificate has expired ({detail})", "Renew the engine's server certificate.")
        return (
            f"its TLS certificate is not signed by the CA in {ca} ({detail})",
            "Give the CA that signed the engine's certificate: --tls-ca (or ca.pem in DOCKER_CERT_PATH).",
        )
    if conn.uses_tls and any(marker in text for marker in _PLAIN_HTTP):
        return (
            "it answered in plain HTTP, not TLS",
            (
                "Use the engine's TLS port (dockerd --tlsverify, usually 2376), or drop the --tls-* options "
                "if this engine is meant to be reached without TLS."
            ),
        )
    if conn.uses_tls and any(marker in text for marker in _CLIENT_CERT_REJECTED):
        if not conn.tls_cert:
            return (
                "the engine requires a client certificate and none was given",
                "Give a client certificate signed by the engine's CA: --tls-cert and --tls-key.",
            )
        return (
            f"the engine rejected the client certificate {conn.tls_cert}",
            (
                "Use a client certificate signed by the CA the engine trusts (its --tlscacert), "
                "with extendedKeyUsage clientAuth."
            ),
        )
    if "connection refused" in text:
        return (
            f"connection refused at {conn.address}",
            "Check the address and port, and that dockerd listens there (--host tcp://0.0.0.0:2376).",
        )
    if "timed out" in text or "timeout" in type(exc).__name__.lower():
        return (
            f"no answer from {conn.address} (timed out)",
            "Check that the host is on and reachable from here (network, VPN, firewall).",
        )
    if "no route to host" in text or "network is unreachable" in text or "host is unreachable" in text:
        return (f"no route to {conn.address}", "Check the network between here and the engine.")
    if (
        "name or service not known" in text
        or "temporary failure in name resolution" in text
        or "nodename nor servname" in text
        or "getaddrinfo failed" in text
    ):
        return (f"cannot resolve the host name in {conn.url}", "Check the host name (or use its IP address).")
    if conn.scheme == "unix" and ("no such file or directory" in text or "filenotfounderror" in text):
        return (f"no socket at {conn.address}", "Start dockerd, or point DOCKER_HOST at a running engine.")
    if conn.scheme == "unix" and "permission denied" in text:
        return (f"permission denied on {conn.address}", "Run as a user in the docker group.")
    if "connection reset" in text or "connection aborted" in text or "remote end closed" in text:
        return (
            "the engine closed the connection",
            "Check that the URL points at a Docker engine and that TLS settings match the engine's.",
        )
    return (_first_line(exc), "Check the engine URL and TLS options.")


def _verify_detail(text: str) -> str:
    match = re.search(r"certificate verify failed: ([^(\]\"')]+)", text)
    return match.group(1).strip() if match else "certificate verify failed"


def _host(conn: EngineConnection) -> str:
    return conn.address.rsplit(":", 1)[0]


def _chain_text(exc: BaseException) -> str:
    parts, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException):
                parts.append(f"{type(arg).__name__}: {arg}")
        current = current.__cause__ or current.__context__
    return " | ".join(parts)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
