"""Key auth: ``Authorization: Bearer <primary or secondary key>``.

Keys come from ``NBDEPLOY_AUTH_KEYS_FILE`` (JSON ``{"primaryKey", "secondaryKey"}``, re-read when its
mtime changes, checked at most once a second) and/or ``NBDEPLOY_PRIMARY_KEY`` / ``NBDEPLOY_SECONDARY_KEY``.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time

log = logging.getLogger("nbdeploy.server")


class KeyAuth:
    """Answers whether a request's ``Authorization`` header carries a valid key."""

    def __init__(self, keys_file: str | None, primary: str | None = None, secondary: str | None = None) -> None:
        self.keys_file = keys_file
        self._env_keys = [k.encode() for k in (primary, secondary) if k]
        self._file_keys: list[bytes] = []
        self._mtime: float | None = None
        self._checked = 0.0
        self._reload()

    @property
    def enabled(self) -> bool:
        return bool(self.keys_file or self._env_keys)

    def _reload(self) -> None:
        if not self.keys_file:
            return
        try:
            mtime = os.stat(self.keys_file).st_mtime_ns
        except OSError:
            self._file_keys, self._mtime = [], None
            return
        if mtime == self._mtime:
            return
        try:
            with open(self.keys_file) as fh:
                data = json.load(fh)
            keys = [data.get("primaryKey"), data.get("secondaryKey")]
            self._file_keys = [str(k).encode() for k in keys if k]
            self._mtime = mtime
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("Could not read auth keys file %s: %s", self.keys_file, exc)

    def keys(self) -> list[bytes]:
        now = time.monotonic()
        if self.keys_file and now - self._checked >= 1.0:
            self._checked = now
            self._reload()
        return self._file_keys + self._env_keys

    def check(self, authorization: bytes | None) -> bool:
        """True when the header is ``Bearer <a current key>`` (compared in constant time)."""
        keys = self.keys()
        if not keys:
            return not self.keys_file  # a keys file that is missing or empty lets nobody in
        if not authorization or not authorization[:7].lower() == b"bearer ":
            return False
        token = authorization[7:].strip()
        ok = False
        for key in keys:
            ok |= hmac.compare_digest(token, key)
        return ok
