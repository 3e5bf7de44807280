"""Logging: the reference's text format (UTC) or JSON lines, the request id on every record, and
``print()`` from user code turned into records on ``nbdeploy.server.print``."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import sys
import time
import traceback

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

TEXT_FORMAT = "%(asctime)s %(levelname).1s [%(process)d] %(name)s - %(message)s"


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class TextFormatter(logging.Formatter):
    """The azmlinfsrv line format, with ``[request <id>]`` appended when a request is in progress."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rid = getattr(record, "request_id", "")
        if rid:
            first, sep, rest = text.partition("\n")
            text = f"{first} [request {rid}]{sep}{rest}"
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, pid, logger, message, request_id, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", "")
        if rid:
            out["request_id"] = rid
        if record.exc_info:
            out["exc_info"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(out, ensure_ascii=False)


def setup(log_format: str = "text", level: int = logging.INFO) -> None:
    """Configure the root logger to write to the real stderr."""
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


class PrintToLog(io.TextIOBase):
    """A ``sys.stdout`` replacement: each complete line becomes an INFO record."""

    def __init__(self, logger_name: str = "nbdeploy.server.print") -> None:
        self._log = logging.getLogger(logger_name)
        self._buf = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buf += text
        if "\n" in self._buf:
            *lines, self._buf = self._buf.split("\n")
            for line in lines:
                self._log.info("%s", line)
        return len(text)

    def flush(self) -> None:
        if self._buf:
            self._log.info("%s", self._buf)
            self._buf = ""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def isatty(self) -> bool:
        return False


def capture_prints() -> None:
    """Route ``print()`` to the log (stdout of the worker becomes log records)."""
    sys.stdout = PrintToLog()
