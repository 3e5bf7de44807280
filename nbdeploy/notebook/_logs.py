"""``%logs --follow``: print new log lines as they arrive."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbdeploy.service import Webservice

WINDOW = 200


def new_lines(previous: list[str], current: list[str]) -> list[str]:
    """The lines of ``current`` after its overlap with the end of ``previous`` (both are tails of one log)."""
    for k in range(min(len(previous), len(current)), 0, -1):
        if previous[-k:] == current[:k]:
            return current[k:]
    return current


def follow(service: Webservice, seen: list[str], seconds: float | None = None, interval: float = 0.5) -> None:
    """Print new lines every ``interval`` s until interrupted, ``seconds`` pass, or the service goes away."""
    from nbdeploy.errors import ServiceNotFound

    deadline = None if seconds is None else time.monotonic() + seconds
    previous = seen[-WINDOW:]
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(interval)
            try:
                current = service.get_logs(WINDOW).splitlines()
            except ServiceNotFound:
                print("(the service was deleted)")
                return
            for line in new_lines(previous, current):
                print(line, flush=True)
            previous = current
    except KeyboardInterrupt:
        print("(stopped following)")
