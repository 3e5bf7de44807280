"""``AMLRequest``: the request object ``@rawhttp`` scripts receive (the Flask/Werkzeug API they use).

Also the ``rawhttp`` decorator. Both are published to old scripts as
``azureml.contrib.services.aml_request`` by :mod:`.shims`.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from . import jsonio
from .datastructures import FileStorage, Headers, MultiDict

# Set by @rawhttp, like the real module's flag; the loader also reads the function attribute.
_rawHttpRequested = False


def rawhttp(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``run()`` as wanting the raw request object instead of the body string."""
    global _rawHttpRequested
    _rawHttpRequested = True
    func.__nbdeploy_rawhttp__ = True  # type: ignore[attr-defined]
    return func


def header_dict(raw_headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """``dict(request.headers)`` as Werkzeug builds it: Title-Cased names, repeated values joined by ``,``."""
    out: dict[str, str] = {}
    for name, value in raw_headers:
        key = name.decode("latin-1").title()
        text = value.decode("latin-1")
        out[key] = f"{out[key]},{text}" if key in out else text
    return out


class BadRequest(Exception):
    """Raised by ``get_json`` on invalid JSON (Werkzeug raises a 400 the same way)."""

    code = 400


class AMLRequest:
    """A request with the Werkzeug attributes published entry scripts use."""

    def __init__(self, scope: dict[str, Any], body: bytes) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope.get("root_path", "") + scope["path"]
        self.query_string: bytes = scope.get("query_string", b"")
        self.headers = Headers(header_dict(scope["headers"]).items())
        self._body = body
        self._form: tuple[MultiDict, MultiDict] | None = None
        self._json_cache: Any = ...

    # -- url parts -------------------------------------------------------------------------------
    @property
    def full_path(self) -> str:
        return f"{self.path}?{self.query_string.decode('latin-1')}"

    @property
    def host(self) -> str:
        return self.headers.get("Host", "")

    @property
    def scheme(self) -> str:
        return self.scope.get("scheme", "http")

    @property
    def host_url(self) -> str:
        return f"{self.scheme}://{self.host}/"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}"

    @property
    def url(self) -> str:
        qs = self.query_string.decode("latin-1")
        return self.base_url + (f"?{qs}" if qs else "")

    @property
    def remote_addr(self) -> str | None:
        client = self.scope.get("client")
        return client[0] if client else None

    @property
    def args(self) -> MultiDict:
        return MultiDict(parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True))

    @property
    def cookies(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in self.headers.get("Cookie", "").split(";"):
            if "=" in part:
                key, value = part.split("=", 1)
                out[key.strip()] = value.strip()
        return out

    @property
    def environ(self) -> dict[str, Any]:
        env = {
            "REQUEST_METHOD": self.method,
            "PATH_INFO": self.path,
            "QUERY_STRING": self.query_string.decode("latin-1"),
            "REMOTE_ADDR": self.remote_addr,
        }
        for key, value in self.headers.items():
            env["HTTP_" + key.upper().replace("-", "_")] = value
        return env

    # -- content -----------------------------------------------------------------------------------
    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    @property
    def mimetype(self) -> str:
        return (self.content_type or "").split(";", 1)[0].strip().lower()

    @property
    def mimetype_params(self) -> dict[str, str]:
        params = {}
        for part in (self.content_type or "").split(";")[1:]:
            if "=" in part:
                key, value = part.split("=", 1)
                params[key.strip().lower()] = value.strip().strip('"')
        return params

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value and value.isdigit() else None

    @property
    def is_json(self) -> bool:
        mt = self.mimetype
        return mt == "application/json" or (mt.startswith("application/") and mt.endswith("+json"))

    def _is_form(self) -> bool:
        return self.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded")

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False) -> Any:
        """The raw body (``bytes``, or ``str`` with ``as_text``); empty once form data was parsed."""
        if parse_form_data and self._is_form():
            self._parse_form()
        data = b"" if (self._form is not None and self._is_form()) else self._body
        if not cache:  # Werkzeug reads the stream without keeping it: later reads see nothing
            self._body = b""
        return data.decode(self.mimetype_params.get("charset", "utf-8"), "replace") if as_text else data

    @property
    def data(self) -> bytes:
        return self.get_data()

    @property
    def stream(self) -> Any:
        from io import BytesIO

        return BytesIO(self.get_data())

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """Parse the body as JSON (only when ``is_json`` unless ``force``), like Flask."""
        if self._json_cache is not ... and cache:
            return self._json_cache
        if not (force or self.is_json):
            if silent:
                return None
            raise BadRequest(
                "Did not attempt to load JSON data because the request Content-Type was not 'application/json'."
            )
        try:
            value = jsonio.loads(self._body)
        except ValueError as exc:
            if silent:
                return None
            raise BadRequest(f"Failed to decode JSON object: {exc}") from exc
        if cache:
            self._json_cache = value
        return value

    @property
    def json(self) -> Any:
        return self.get_json()

    # -- forms ------------------------------------------------------------------------------------
    def _parse_form(self) -> tuple[MultiDict, MultiDict]:
        if self._form is None:
            if self.mimetype == "application/x-www-form-urlencoded":
                form = MultiDict(parse_qsl(self._body.decode("utf-8", "replace"), keep_blank_values=True))
                self._form = (form, MultiDict())
            elif self.mimetype == "multipart/form-data":
                self._form = parse_multipart(self.content_type or "", self._body)
            else:
                self._form = (MultiDict(), MultiDict())
        return self._form

    @property
    def form(self) -> MultiDict:
        return self._parse_form()[0]

    @property
    def files(self) -> MultiDict:
        return self._parse_form()[1]

    @property
    def values(self) -> MultiDict:
        out = self.args.copy()
        for key, value in self.form.items(multi=True):
            out.add(key, value)
        return out

    def __repr__(self) -> str:
        return f"<AMLRequest {self.url!r} [{self.method}]>"


def parse_multipart(content_type: str, body: bytes) -> tuple[MultiDict, MultiDict]:
    """Split a ``multipart/form-data`` body into (form fields, files) with the stdlib email parser."""
    form, files = MultiDict(), MultiDict()
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return form, files
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, tuple):  # an RFC 2231 (charset, language, value) parameter
            name = email.utils.collapse_rfc2231_value(name)
        if name is None:
            continue  # a part without a name cannot be looked up (it used to be filed under None)
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):  # a nested multipart: not a field
            payload = b""
        if filename is not None:
            files.add(name, FileStorage(payload, filename, name, part.get("Content-Type")))
        else:
            charset = part.get_content_charset() or "utf-8"
            form.add(name, payload.decode(charset, "replace"))
    return form, files


# The real module's name for the class; scripts sometimes annotate with it.
Request = AMLRequest
