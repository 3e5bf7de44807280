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
    """Answers whether a request's ``Authorization`` header carries a valid key.

    A configured keys file that is missing, empty, unreadable, not JSON or holds no key lets nobody in
    (not even with the ``NBDEPLOY_*_KEY`` variables), and the reason is logged once per change of the file.
    """

    def __init__(self, keys_file: str | None, primary: str | None = None, secondary: str | None = None) -> None:
        self.keys_file = keys_file
        self._env_keys = [k.encode() for k in (primary, secondary) if k]
        self._file_keys: list[bytes] = []
        self._file_ok = False
        self._stamp: tuple[int, int, int] | None = None  # (mtime, size, inode) of the file last read
        self._refusal: tuple[object, str] | None = None  # the last refusal logged
        self._checked = 0.0
        self._reload()

    @property
    def enabled(self) -> bool:
        return bool(self.keys_file or self._env_keys)

    def _refuse(self, stamp: tuple[int, int, int] | None, reason: str) -> None:
        if (stamp, reason) != self._refusal:
            log.error("Auth keys file %s %s: every request that needs a key gets 401", self.keys_file, reason)
            self._refusal = (stamp, reason)
        self._file_keys, self._file_ok, self._stamp = [], False, stamp

    def _reload(self) -> None:
        if not self.keys_file:
            return
        try:
            st = os.stat(self.keys_file)
        except OSError as exc:
            self._refuse(None, f"cannot be read ({exc.strerror or exc})")
            return
        # size and inode too: a file emptied and refilled within one mtime tick is still seen as changed
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return
        try:
            with open(self.keys_file, "rb") as fh:
                data = json.loads(fh.read() or b"null")
        except (OSError, ValueError) as exc:
            self._refuse(stamp, f"is not valid JSON ({exc})")
            return
        if not isinstance(data, dict):
            self._refuse(stamp, 'is empty or not a JSON object {"primaryKey": ..., "secondaryKey": ...}')
            return
        keys = [str(k).encode() for k in (data.get("primaryKey"), data.get("secondaryKey")) if k]
        if not keys:
            self._refuse(stamp, "holds no primaryKey or secondaryKey")
            return
        if not self._file_ok:
            log.info("Auth keys read from %s", self.keys_file)
        self._file_keys, self._file_ok, self._stamp, self._refusal = keys, True, stamp, None

    def keys(self) -> list[bytes]:
        """The keys that open the door now (empty: nobody gets in)."""
        now = time.monotonic()
        if self.keys_file and now - self._checked >= 1.0:
            self._checked = now
            self._reload()
        if self.keys_file and not self._file_ok:
            return []
        return self._file_keys + self._env_keys

    def check(self, authorization: bytes | None) -> bool:
        """True when the header is ``Bearer <a current key>`` (compared in constant time)."""
        keys = self.keys()
        if not keys or not authorization or authorization[:7].lower() != b"bearer ":
            return False
        token = authorization[7:].strip()
        ok = False
        for key in keys:
            ok |= hmac.compare_digest(token, key)
        return ok
