"""Rollout waves and retry backoff (pure)."""

from __future__ import annotations

from collections.abc import Sequence

MAX_BACKOFF_S = 300.0


def plan_waves(devices: Sequence[str], canary: int) -> list[list[str]]:
    """``canary`` devices first, then the rest; ``canary <= 0`` (or >= all) is one wave."""
    names = list(devices)
    if canary <= 0 or canary >= len(names):
        return [names] if names else []
    return [names[:canary], names[canary:]]


def backoff_delay(attempt: int, base_s: float, cap_s: float = MAX_BACKOFF_S) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)``, at most ``cap_s``."""
    if attempt < 1 or base_s <= 0:
        return 0.0
    return min(cap_s, base_s * 2 ** (attempt - 1))


def retry_schedule(max_retries: int, base_s: float, cap_s: float = MAX_BACKOFF_S) -> list[float]:
    """The waits before each retry: ``max_retries`` of them."""
    return [backoff_delay(i, base_s, cap_s) for i in range(1, max(0, max_retries) + 1)]
