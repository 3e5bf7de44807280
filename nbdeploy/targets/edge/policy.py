"""Per-device states and the policy that turns them into one service state (pure; no engines)."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from nbdeploy.errors import InvalidSpec
from nbdeploy.targets.base import State


class DeviceState(str, enum.Enum):
    """What one device runs of one revision."""

    PENDING = "Pending"
    """Not started there yet, or init() still running."""
    HEALTHY = "Healthy"
    FAILED = "Failed"
    """Failed after its retries (rolled back to the last-known-good container where there was one)."""
    OFFLINE = "Offline"
    """The device's engine does not answer; it converges on the next reconcile after it is back."""

    def __str__(self) -> str:
        return self.value


@dataclass
class DeviceRecord:
    """One device's part of a revision (kept in the revision's fleet file, see ``records.py``)."""

    name: str
    state: DeviceState = DeviceState.PENDING
    reason: str = ""
    since: str | None = None
    """ISO time the device was first seen in this state (used for Offline)."""
    address: str | None = None
    """The device's host (its engine URL's), where its published port is reached."""
    port: int | None = None
    attempts: int = 0
    evidence: str = ""
    idle: bool = False
    """Pending with nothing converging there until a reconcile (it was offline during the rollout)."""
    runs: int | None = None
    """The revision of this service the device runs (serves) as last seen; None: none."""

    def describe(self) -> str:
        """``edge3 Offline since 17:05``, ``edge2 Failed: init() raised``, ``edge1 Healthy``."""
        if self.state == DeviceState.OFFLINE:
            return f"{self.name} Offline since {_clock(self.since)}"
        if self.reason and self.state != DeviceState.HEALTHY:
            return f"{self.name} {self.state}: {self.reason}"
        return f"{self.name} {self.state}"

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["state"] = str(self.state)
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DeviceRecord:
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        known["state"] = DeviceState(known.get("state", "Pending"))
        return cls(**known)


_AT_LEAST = re.compile(r"^(?:at\s*least\s*)?(\d+)$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")
POLICY_HELP = "'all', 'at least N' (or N), or 'N%' of the devices Healthy"


@dataclass(frozen=True)
class Policy:
    """When the service counts as Healthy: ``all`` devices, ``at least N`` of them, or ``N%`` of them."""

    kind: str  # "all" | "count" | "percent"
    value: float = 0

    @classmethod
    def parse(cls, text: str | int) -> Policy:
        """``"all"``, ``"at least 2"``, ``"2"``, ``"66%"``; InvalidSpec otherwise."""
        raw = str(text).strip().lower()
        if raw == "all":
            return cls("all")
        if match := _AT_LEAST.match(raw):
            count = int(match.group(1))
            if count < 1:
                raise InvalidSpec("policy", f"at least N needs N >= 1, got {text!r}")
            return cls("count", count)
        if match := _PERCENT.match(raw):
            percent = float(match.group(1))
            if not 0 < percent <= 100:
                raise InvalidSpec("policy", f"a percentage must be in (0, 100], got {text!r}")
            return cls("percent", percent)
        raise InvalidSpec("policy", f"{text!r} is not a policy; use {POLICY_HELP}")

    def required(self, total: int) -> int:
        """How many of ``total`` devices must be Healthy."""
        if self.kind == "all":
            return total
        if self.kind == "count":
            return int(self.value)
        return max(1, -(-int(self.value * total * 100) // 10000))  # ceil(value% of total), integer arithmetic

    def __str__(self) -> str:
        return {"all": "all", "count": f"at least {int(self.value)}"}.get(self.kind, f"{self.value:g}%")


@dataclass
class FleetSummary:
    """The service state a policy gives a set of device records."""

    state: State
    reason: str
    healthy: int
    total: int
    required: int
    devices: list[dict[str, Any]] = field(default_factory=list)


def summarize(records: Iterable[DeviceRecord], policy: Policy) -> FleetSummary:
    """Healthy when the policy is met; Transitioning while devices starting now can still meet it; Failed when
    they cannot (Offline devices, and Pending ones nothing is starting on, converge only on a reconcile).
    The reason names the count and every device that is not Healthy."""
    items = list(records)
    total = len(items)
    required = policy.required(total)
    healthy = sum(r.state == DeviceState.HEALTHY for r in items)
    possible = healthy + sum(r.state == DeviceState.PENDING and not r.idle for r in items)
    waiting = [r for r in items if r.state == DeviceState.OFFLINE or (r.state == DeviceState.PENDING and r.idle)]
    others = [r.describe() for r in items if r.state != DeviceState.HEALTHY]
    reason = "" if not others else "; ".join([f"{healthy}/{total} devices Healthy", *others])
    if required > total:
        state = State.FAILED
        reason = f"policy {policy} needs {required} devices but the service has {total}" + (
            f"; {reason}" if reason else ""
        )
    elif healthy >= required and total:
        state = State.HEALTHY
    elif possible >= required and total:
        state = State.TRANSITIONING
    else:
        state = State.FAILED
        reason = reason or "no devices"
        reason = f"policy {policy} cannot be met: {reason}"
        if waiting:
            reason += " (reconcile converges devices once they answer)"
    return FleetSummary(state, reason, healthy, total, required, [r.to_dict() for r in items])


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _clock(iso: str | None) -> str:
    """``17:05`` (UTC) for today's times, the date too for older ones."""
    if not iso:
        return "?"
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    today = datetime.now(timezone.utc).date()
    return when.strftime("%H:%M") + (" UTC" if when.date() == today else f" UTC {when.date().isoformat()}")
