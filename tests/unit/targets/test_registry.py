"""The target registry: names, aliases, entry points, and clear errors for what is not there."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from nbdeploy.errors import TargetNotAvailable
from nbdeploy.targets import base
from nbdeploy.targets.base import Target, get_target_class, register_target, target_names
from nbdeploy.targets.process import ProcessTarget


class DummyTarget(Target):
    name = "dummy"

    def start(self, spec, previous=None):  # pragma: no cover - never started here
        return {}

    def status(self, handle):  # pragma: no cover
        raise NotImplementedError

    def logs(self, handle, num_lines=5000):  # pragma: no cover
        return ""

    def stop(self, handle):  # pragma: no cover
        pass


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(base, "_TARGETS", dict(base._TARGETS))
    monkeypatch.setattr(base, "_entry_points_loaded", False)


def test_builtin_names_and_aliases(clean_registry):
    assert {"process", "local", "aks"} <= set(target_names())
    assert get_target_class("subprocess") is ProcessTarget
    assert get_target_class("kubernetes") is get_target_class("aks")


def test_entry_points_extend_the_registry(clean_registry, monkeypatch):
    fake = EntryPoint(name="dummy", value=f"{__name__}:DummyTarget", group="nbdeploy.targets")
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group=None: [fake] if group == "nbdeploy.targets" else [])
    assert "dummy" in target_names()
    assert get_target_class("dummy") is DummyTarget


def test_register_target_with_a_class(clean_registry):
    register_target("dummy2", DummyTarget)
    assert get_target_class("dummy2") is DummyTarget


def test_unknown_and_unbuilt_targets_say_what_to_do(clean_registry):
    with pytest.raises(TargetNotAvailable, match="No target named 'mars'. Available: .*process"):
        get_target_class("mars")
    with pytest.raises(TargetNotAvailable, match="not available yet"):
        get_target_class("edge")
    register_target("needs-sdk", "nbdeploy_no_such_module.sub:Thing")
    with pytest.raises(TargetNotAvailable, match="needs the Python package 'nbdeploy_no_such_module'"):
        get_target_class("needs-sdk")
