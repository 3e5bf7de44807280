"""``%score``'s argument: inline JSON or ``$variable`` (a str/bytes body, or anything JSON-serializable)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError


def _jsonable(value: Any) -> Any:
    if callable(getattr(value, "to_numpy", None)):  # pandas frames and series
        value = value.to_numpy()
    if callable(getattr(value, "tolist", None)):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def request_body(text: str, namespace: Mapping[str, Any]) -> str | bytes:
    """The body to POST: ``$name`` looks ``name`` up in the user's namespace, anything else must be JSON."""
    text = text.strip()
    if not text:
        raise UsageError("%score needs a request body: %score NAME '{\"data\": [[1, 2]]}' or %score NAME $payload")
    if text.startswith("$"):
        name = text[1:]
        if name not in namespace:
            raise UsageError(
                f"No variable named {name!r} in the notebook; define it first (payload = {{'data': ...}})."
            )
        value = namespace[name]
        if isinstance(value, (str, bytes)):
            return value
        try:
            return json.dumps(value, default=_jsonable)
        except TypeError as exc:
            raise UsageError(f"${name} cannot be sent as JSON: {exc}. Pass a dict, list, str or bytes.") from None
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"The request body is not valid JSON ({exc.msg} at column {exc.colno}); "
            "quote it as JSON or pass a variable with $name."
        ) from None
    return text
