"""JSON encoding for the hot path: orjson when installed, the stdlib otherwise.

Encoding must match what ``json.dumps`` produces for the reference server (``", "`` / ``": "``
separators), so orjson is used only for *decoding*; encoding uses a pre-built stdlib encoder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_encoder = json.JSONEncoder(ensure_ascii=True, allow_nan=True)
encode_str: Callable[[Any], str] = _encoder.encode


def dumps(value: Any) -> bytes:
    """``json.dumps(value).encode()`` (the reference server's serialization)."""
    return _encoder.encode(value).encode()


class TooDeep(ValueError):
    """The JSON document is nested deeper than the parser goes (a ``ValueError``, like other bad JSON)."""


def _std_loads(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        raise TooDeep("JSON input is nested too deeply") from None


try:  # pragma: no cover - depends on the environment
    import orjson as _orjson

    def loads(data: bytes | str) -> Any:
        """Parse JSON; orjson is strict like ``json.loads`` except for NaN, so fall back on error.

        Never raises ``RecursionError``: a document nested too deeply raises :class:`TooDeep`.
        """
        try:
            return _orjson.loads(data)
        except _orjson.JSONDecodeError:
            return _std_loads(data)

except ImportError:  # pragma: no cover
    loads = _std_loads
