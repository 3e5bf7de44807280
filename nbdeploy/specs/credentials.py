"""Credentials in package index URLs: split them off, so a stored environment never holds a password.

``https://user:secret@pypi.example.com/simple`` is stored as ``https://pypi.example.com/simple``; the
credentials are found again at build time by reference (pip reads ``~/.netrc`` and keyring itself, or an
environment variable the user names), never from the workspace database.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_index_url(url: str) -> tuple[str, bool]:
    """``(url without user name and password, whether it had any)``.

    Only the user-info part of the URL's authority is removed; scheme, host, port (IPv6 included), path,
    query and fragment are kept exactly. Strings that are not URLs with an authority (a local path, a
    ``file:`` URL without one) come back unchanged with ``False``.
    """
    if not isinstance(url, str):
        raise TypeError(f"expected an index URL string, got {type(url).__name__}")
    parts = urlsplit(url)
    if not parts.netloc or "@" not in parts.netloc:
        return url, False
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), True


__all__ = ["redact_index_url"]
