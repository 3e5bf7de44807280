"""JSON encoding for the hot path: orjson when installed, the stdlib otherwise.

Encoding must match what ``json.dumps`` produces for the reference server (``", "`` / ``": "``
separators), so orjson is used only for *decoding*; encoding uses a pre-built stdlib encoder.
"""

from __future__ import annotations

import json
from typing import Any, Callable

_encoder = json.JSONEncoder(ensure_ascii=True, allow_nan=True)
encode_str: Callable[[Any], str] = _encoder.encode


def dumps(value: Any) -> bytes:
    """``json.dumps(value).encode()`` (the reference server's serialization)."""
    return _encoder.encode(value).encode()


try:  # pragma: no cover - depends on the environment
    import orjson as _orjson

    def loads(data: bytes | str) -> Any:
        """Parse JSON; orjson is strict like ``json.loads`` except for NaN, so fall back on error."""
        try:
            return _orjson.loads(data)
        except _orjson.JSONDecodeError:
            return json.loads(data)

except ImportError:  # pragma: no cover
    loads = json.loads
