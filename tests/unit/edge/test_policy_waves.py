"""Policy, per-device summaries, waves, backoff, the config and the platform check (pure)."""

from __future__ import annotations

import pytest

from nbdeploy.errors import InvalidSpec
from nbdeploy.remote.ship import PlatformMismatch
from nbdeploy.targets.base import State
from nbdeploy.targets.edge import EdgeDeploymentConfig
from nbdeploy.targets.edge.arch import platform_problems, refuse_foreign_platforms
from nbdeploy.targets.edge.policy import DeviceRecord, DeviceState, Policy, summarize
from nbdeploy.targets.edge.waves import backoff_delay, plan_waves, retry_schedule

H, P, F, O = DeviceState.HEALTHY, DeviceState.PENDING, DeviceState.FAILED, DeviceState.OFFLINE


def _records(*states: DeviceState) -> list[DeviceRecord]:
    return [DeviceRecord(f"edge{i}", s, "init() raised" if s == F else "", "2026-01-02T17:05:00+00:00")
            for i, s in enumerate(states, 1)]


@pytest.mark.parametrize("text, required", [("all", 3), ("at least 2", 2), ("2", 2), ("AT LEAST 1", 1),
                                            ("50%", 2), ("34%", 2), ("33%", 1), ("100%", 3)])
def test_policy_required_of_three(text: str, required: int) -> None:
    assert Policy.parse(text).required(3) == required


@pytest.mark.parametrize("text", ["most", "at least 0", "0%", "101%", "-1", ""])
def test_bad_policy_is_refused(text: str) -> None:
    with pytest.raises(InvalidSpec, match="policy"):
        Policy.parse(text)


def test_met_policy_is_healthy_and_names_the_offline_device() -> None:
    summary = summarize(_records(H, H, O), Policy.parse("at least 2"))
    assert summary.state == State.HEALTHY
    assert summary.reason.startswith("2/3 devices Healthy; edge3 Offline since 17:05")


def test_all_healthy_has_no_reason() -> None:
    assert summarize(_records(H, H, H), Policy.parse("all")).reason == ""


def test_policy_that_devices_starting_now_can_meet_is_transitioning() -> None:
    assert summarize(_records(H, P, H), Policy.parse("all")).state == State.TRANSITIONING


def test_offline_and_idle_devices_do_not_converge_by_themselves() -> None:
    records = _records(H, P, O)
    summary = summarize(records, Policy.parse("all"))
    assert summary.state == State.FAILED and "reconcile converges" in summary.reason
    records[1].idle = True
    assert summarize(records, Policy.parse("at least 2")).state == State.FAILED
    assert summarize(_records(H, P, O), Policy.parse("at least 2")).state == State.TRANSITIONING


def test_policy_that_cannot_be_met_fails_with_the_device_reasons() -> None:
    summary = summarize(_records(H, F, O), Policy.parse("all"))
    assert summary.state == State.FAILED
    assert "cannot be met" in summary.reason and "edge2 Failed: init() raised" in summary.reason


def test_more_required_than_devices_fails() -> None:
    assert summarize(_records(H, H), Policy.parse("at least 3")).state == State.FAILED


def test_waves_canary_first() -> None:
    assert plan_waves(["a", "b", "c"], 1) == [["a"], ["b", "c"]]
    assert plan_waves(["a", "b", "c"], 0) == [["a", "b", "c"]]
    assert plan_waves(["a", "b"], 5) == [["a", "b"]]
    assert plan_waves([], 1) == []


def test_backoff_doubles_and_is_capped() -> None:
    assert retry_schedule(4, 2.0) == [2.0, 4.0, 8.0, 16.0]
    assert backoff_delay(20, 2.0) == 300.0
    assert retry_schedule(0, 2.0) == [] and backoff_delay(1, 0) == 0.0


def test_config_reads_flags_and_v1_device_id() -> None:
    config = EdgeDeploymentConfig(devices="edge1, edge2", policy="at least 1")
    assert config.devices == ["edge1", "edge2"]
    doc = EdgeDeploymentConfig.from_dict({"computeType": "IOT", "deviceId": "cam-17", "routes": {"r": "FROM /* INTO $upstream"}}).to_dict()
    assert doc["devices"] == ["cam-17"] and "deviceId" not in doc
    assert EdgeDeploymentConfig.from_dict(doc).devices == ["cam-17"]


@pytest.mark.parametrize("kwargs, key", [
    ({"devices": ["a"], "device_selector": "site=x"}, "devices"),
    ({"device_selector": "nokey"}, "device_selector"),
    ({"policy": "many"}, "policy"),
    ({"canary": -1}, "canary"),
    ({"max_retries": 1.5}, "max_retries"),
    ({"retry_backoff_s": -1}, "retry_backoff_s"),
    ({"restart_policy": "sometimes"}, "restart_policy"),
])
def test_bad_config_is_refused_naming_the_key(kwargs: dict, key: str) -> None:
    with pytest.raises(InvalidSpec, match=key):
        EdgeDeploymentConfig(**kwargs)


def test_platform_mismatch_names_the_devices_before_shipping() -> None:
    devices = {"edge1": ("linux", "amd64"), "pi": ("linux", "arm64"), "old": ("", "")}
    assert platform_problems("img:1", ("linux", "amd64"), devices) == ["pi runs linux/arm64"]
    with pytest.raises(PlatformMismatch, match=r"built for linux/amd64 but pi runs linux/arm64; nothing was shipped"):
        refuse_foreign_platforms("img:1", ("linux", "amd64"), devices)
