"""Small Werkzeug-like containers used by :class:`~.request.AMLRequest` and :class:`~.response.AMLResponse`."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Iterator
from io import BytesIO
from typing import Any


class MultiDict(dict):
    """A dict of lists that behaves like Werkzeug's ``MultiDict`` (``d[k]`` is the first value)."""

    def __init__(self, pairs: Iterable[tuple[str, Any]] = ()) -> None:
        super().__init__()
        for key, value in pairs:
            self.add(key, value)

    def add(self, key: str, value: Any) -> None:
        dict.setdefault(self, key, []).append(value)

    def __getitem__(self, key: str) -> Any:
        return dict.__getitem__(self, key)[0]

    def __setitem__(self, key: str, value: Any) -> None:
        dict.__setitem__(self, key, [value])

    def get(self, key: str, default: Any = None, type: Callable[[Any], Any] | None = None) -> Any:  # noqa: A002
        try:
            value = self[key]
        except KeyError:
            return default
        if type is None:
            return value
        try:
            return type(value)
        except (ValueError, TypeError):
            return default

    def getlist(self, key: str, type: Callable[[Any], Any] | None = None) -> list[Any]:  # noqa: A002
        values = list(dict.get(self, key, []))
        return values if type is None else [type(v) for v in values]

    def items(self, multi: bool = False) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        for key, values in dict.items(self):
            if multi:
                for value in values:
                    yield key, value
            else:
                yield key, values[0]

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        for values in dict.values(self):
            yield values[0]

    def lists(self) -> Iterator[tuple[str, list[Any]]]:
        return iter(dict.items(self))

    def to_dict(self, flat: bool = True) -> dict[str, Any]:
        if flat:
            return dict(self.items())
        return {k: list(v) for k, v in dict.items(self)}

    def copy(self) -> MultiDict:
        return MultiDict(self.items(multi=True))

    def __repr__(self) -> str:
        return f"MultiDict({list(self.items(multi=True))!r})"


class Headers:
    """Case-insensitive, ordered, multi-valued headers (the Werkzeug ``Headers`` methods scripts use)."""

    def __init__(self, pairs: Iterable[tuple[str, str]] | dict[str, str] | None = None) -> None:
        self._list: list[tuple[str, str]] = []
        if pairs:
            items = pairs.items() if isinstance(pairs, dict) else pairs
            for key, value in items:
                self.add(key, value)

    def add(self, key: str, value: Any) -> None:
        self._list.append((str(key), str(value)))

    def set(self, key: str, value: Any) -> None:
        self.remove(key)
        self.add(key, value)

    __setitem__ = set

    def remove(self, key: str) -> None:
        low = key.lower()
        self._list = [(k, v) for k, v in self._list if k.lower() != low]

    __delitem__ = remove

    def get(self, key: str, default: Any = None, type: Callable[[str], Any] | None = None) -> Any:  # noqa: A002
        low = key.lower()
        for k, v in self._list:
            if k.lower() == low:
                return v if type is None else type(v)
        return default

    def getlist(self, key: str) -> list[str]:
        low = key.lower()
        return [v for k, v in self._list if k.lower() == low]

    get_all = getlist

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._list))

    def __len__(self) -> int:
        return len(self._list)

    def items(self) -> list[tuple[str, str]]:
        return list(self._list)

    def keys(self) -> list[str]:
        return [k for k, _ in self._list]

    def values(self) -> list[str]:
        return [v for _, v in self._list]

    def extend(self, other: Any) -> None:
        items = other.items() if hasattr(other, "items") else other
        for key, value in items:
            self.add(key, value)

    def to_wsgi_list(self) -> list[tuple[str, str]]:
        return list(self._list)

    def __repr__(self) -> str:
        return f"Headers({self._list!r})"


class FileStorage:
    """An uploaded file (Werkzeug's ``FileStorage``): ``filename``, ``stream``, ``read()``, ``save()``."""

    def __init__(self, data: bytes, filename: str | None, name: str | None, content_type: str | None) -> None:
        self.stream = BytesIO(data)
        self.filename = filename
        self.name = name
        self.content_type = content_type or "application/octet-stream"
        self.headers = Headers({"Content-Type": self.content_type})

    @property
    def mimetype(self) -> str:
        return self.content_type.split(";", 1)[0].strip().lower()

    def read(self, *args: Any) -> bytes:
        return self.stream.read(*args)

    def save(self, dst: Any, buffer_size: int = 16384) -> None:
        if isinstance(dst, (str, bytes)) or hasattr(dst, "__fspath__"):
            with open(dst, "wb") as fh:
                shutil.copyfileobj(self.stream, fh, buffer_size)
        else:
            shutil.copyfileobj(self.stream, dst, buffer_size)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.stream)

    def __bool__(self) -> bool:
        return bool(self.filename)

    def __repr__(self) -> str:
        return f"<FileStorage: {self.filename!r} ({self.content_type!r})>"
