"""Name rules and the parsing of tag/property arguments (``key``, ``key=value``, ``['key', 'value']``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from nbdeploy.errors import InvalidInput, InvalidName

MODEL_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-\._]{0,254}$")
MODEL_NAME_RULE = (
    r"model names must match ^[a-zA-Z0-9][a-zA-Z0-9\-\._]{0,254}$ "
    "(start with a letter or digit; then letters, digits, '-', '_' or '.'; at most 255 characters)"
)

#: A filter: (key, None) means "has the key"; (key, value) means "key equals value".
Filter = tuple[str, str | None]


def check_model_name(name: object) -> str:
    """Return ``name`` if it follows v1's model name rule, else raise InvalidName."""
    if not isinstance(name, str) or not MODEL_NAME_RE.fullmatch(name):
        raise InvalidName("model", str(name), MODEL_NAME_RULE)
    return name


def printable(text: str) -> str:
    """``text`` safe to print anywhere: bytes that are not UTF-8 (surrogates from ``os.fsdecode`` or the
    command line) appear as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def check_text(what: str, value: str) -> str:
    """``value`` if it is valid UTF-8 text, else InvalidInput naming ``what`` (tags, descriptions, ... are text)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{what} {printable(value)!r} is not valid UTF-8 text; use UTF-8 for names, tags, "
            "properties and descriptions (file names may be any bytes)."
        ) from None
    return value


def _check_key(kind: str, key: object) -> str:
    if not isinstance(key, str) or not key or "=" in key or key != key.strip():
        raise InvalidInput(f"Malformed {kind} key {key!r}: keys are non-empty strings without '=' or edge spaces.")
    return check_text(f"{kind} key", key)


def check_pairs(kind: str, pairs: Mapping[str, Any] | None) -> dict[str, str]:
    """Validate a tags/properties dict: string keys (no '='), string values."""
    if pairs is None:
        return {}
    if not isinstance(pairs, Mapping):
        raise InvalidInput(f"Malformed {kind}: expected a dict of str to str, got {type(pairs).__name__}.")
    out: dict[str, str] = {}
    for key, value in pairs.items():
        _check_key(kind[:-1] if kind.endswith("s") else kind, key)
        if not isinstance(value, str):
            raise InvalidInput(f"Malformed {kind[:-1]} {key!r}: the value must be a string, got {value!r}.")
        out[key] = check_text(f"{kind[:-1]} {key!r} value", value)
    return out


def parse_assignment(kind: str, text: str) -> tuple[str, str]:
    """Parse ``key=value`` (the value may be empty or contain '='); raise InvalidInput otherwise."""
    if not isinstance(text, str) or "=" not in text:
        raise InvalidInput(f"Malformed {kind} {text!r}: expected key=value.")
    key, value = text.split("=", 1)
    return _check_key(kind, key), check_text(f"{kind} {key!r} value", value)


def parse_filters(kind: str, spec: Any) -> list[Filter]:
    """Turn ``'k'``, ``'k=v'``, ``['k', 'v']`` items (or a dict, or one string) into filters.

    As in v1, a top-level list holds filters: ``['a', 'b']`` means "has a AND has b" and
    ``[['a', 'b']]`` means "a equals b".
    """
    if spec is None:
        return []
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, Mapping):
        return [
            (_check_key(kind, k), None if v is None else check_text(f"{kind} {k!r} value", str(v)))
            for k, v in spec.items()
        ]
    if not isinstance(spec, Iterable):
        raise InvalidInput(f"Malformed {kind} filter {spec!r}: use 'key', 'key=value' or ['key', 'value'].")
    out: list[Filter] = []
    for item in spec:
        if isinstance(item, str):
            if "=" in item:
                out.append(parse_assignment(kind, item))
            else:
                out.append((_check_key(kind, item), None))
        elif isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], str):
            out.append((_check_key(kind, item[0]), check_text(f"{kind} {item[0]!r} value", item[1])))
        elif isinstance(item, (list, tuple)) and len(item) == 1:
            out.append((_check_key(kind, item[0]), None))
        else:
            raise InvalidInput(f"Malformed {kind} filter {item!r}: use 'key', 'key=value' or ['key', 'value'].")
    return out


def parse_model_ref(ref: str, require_version: bool = False) -> tuple[str, int | None]:
    """Split ``NAME[:VERSION]`` (the id form); the version must be a positive integer."""
    name, sep, version = ref.partition(":")
    check_model_name(name)
    if not sep:
        if require_version:
            raise InvalidInput(f"Expected NAME:VERSION, got {ref!r}.")
        return name, None
    return name, parse_version(version)


def parse_version(version: object) -> int:
    """A model version: a positive integer (``3`` or ``"3"``)."""
    if isinstance(version, bool):
        raise InvalidInput(f"Invalid model version {version!r}: versions are positive integers.")
    if isinstance(version, int):
        v = version
    elif isinstance(version, str) and version.strip().isdigit():
        v = int(version)
    else:
        raise InvalidInput(f"Invalid model version {version!r}: versions are positive integers.")
    if v < 1:
        raise InvalidInput(f"Invalid model version {version!r}: versions are positive integers.")
    return v
