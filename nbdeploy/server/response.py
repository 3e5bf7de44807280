"""``AMLResponse`` (what ``@rawhttp`` scripts may return) and turning any ``run()`` result into HTTP."""

from __future__ import annotations

from typing import Any

from . import jsonio
from .datastructures import Headers

_TEXT_DEFAULT = "text/html; charset=utf-8"


def _with_charset(mimetype: str) -> str:
    needs = mimetype.startswith("text/") or mimetype in ("application/xml", "application/javascript")
    return f"{mimetype}; charset=utf-8" if needs and "charset" not in mimetype else mimetype


class AMLResponse:
    """A response returned by ``run()`` as is (the subset of ``flask.Response`` scripts use)."""

    default_mimetype = "text/html"

    def __init__(
        self,
        message: Any,
        status_code: int = 200,
        response_headers: dict[str, Any] | None = None,
        json_str: bool = False,
        run_function_failed: bool = False,
    ) -> None:
        self.status_code = int(status_code)
        self.headers = Headers()
        body: bytes | bytearray
        if message is None:
            body, ctype = b"{}", "application/json"
        elif json_str:
            body, ctype = jsonio.dumps(message), "application/json"
        else:
            body = message if isinstance(message, (bytes, bytearray)) else str(message).encode("utf-8")
            ctype = _TEXT_DEFAULT
        self._data = bytes(body)
        self.headers.set("Content-Type", ctype)
        for key, value in (response_headers or {}).items():
            if key.lower() == "content-type":
                self.headers.set(key, value)
                continue
            for item in str(value).split(","):
                self.headers.add(key, item)
        self.headers.set("x-ms-run-function-failed", str(bool(run_function_failed)))

    @property
    def status(self) -> str:
        return str(self.status_code)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", _TEXT_DEFAULT)

    @content_type.setter
    def content_type(self, value: str) -> None:
        self.headers.set("Content-Type", value)

    @property
    def mimetype(self) -> str:
        return self.content_type.split(";", 1)[0].strip()

    @mimetype.setter
    def mimetype(self, value: str) -> None:
        self.headers.set("Content-Type", _with_charset(value))

    def get_data(self, as_text: bool = False) -> Any:
        return self._data.decode("utf-8", "replace") if as_text else self._data

    def set_data(self, value: str | bytes) -> None:
        self._data = value.encode("utf-8") if isinstance(value, str) else bytes(value)

    data = property(get_data, set_data)

    @property
    def json(self) -> Any:
        return jsonio.loads(self._data)

    def __repr__(self) -> str:
        return f"<AMLResponse {len(self._data)} bytes [{self.status_code}]>"


def is_response(value: Any) -> bool:
    """Ours, a real ``AMLResponse`` / ``flask.Response``, or anything shaped like one."""
    return isinstance(value, AMLResponse) or (
        hasattr(value, "status_code") and hasattr(value, "headers") and callable(getattr(value, "get_data", None))
    )


def response_parts(value: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    """(status, headers, body, run_failed) of a response object returned by ``run()``."""
    status = int(value.status_code)
    headers: list[tuple[bytes, bytes]] = []
    failed_header = None
    items = value.headers.items()
    for key, val in items:
        low = key.lower()
        if low == "content-length":
            continue
        if low == "x-ms-run-function-failed":
            failed_header = str(val)
            continue
        headers.append((low.encode("latin-1"), str(val).encode("latin-1")))
    failed = status >= 500 or failed_header == "True"
    return status, headers, value.get_data(), failed
