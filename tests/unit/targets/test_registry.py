"""The target registry: names, aliases, entry points, declared surfaces, and clear errors for what is not there."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import ClassVar

import pytest

from nbdeploy.errors import InvalidInput, TargetNotAvailable
from nbdeploy.specs.deployment import DeploymentConfig
from nbdeploy.targets import registry
from nbdeploy.targets.base import Target
from nbdeploy.targets.options import COMMON_OPTIONS, Option, merge_options, refuse_foreign_options
from nbdeploy.targets.process import ProcessTarget
from nbdeploy.targets.registry import (
    config_class_for,
    get_target_class,
    register_target,
    target_classes,
    target_names,
)


@dataclass
class DummyConfig(DeploymentConfig):
    target: ClassVar[str] = "dummy"
    compute_type: ClassVar[str] = "Dummy"
    level: int = 1


class DummyTarget(Target):
    name = "dummy"
    description = "A target for tests."
    config_class = DummyConfig
    options = (Option("--level", "level", int, "How much."),)

    def start(self, spec, previous=None):  # pragma: no cover - never started here
        return {}

    def status(self, handle):  # pragma: no cover
        raise NotImplementedError

    def logs(self, handle, num_lines=5000):  # pragma: no cover
        return ""

    def stop(self, handle):  # pragma: no cover
        pass

    def endpoint(self, handle):  # pragma: no cover
        return None


@pytest.fixture
def clean_registry(monkeypatch):
    from nbdeploy.plugins import PluginRegistry

    fresh = PluginRegistry("nbdeploy.targets", {
        name: entry for name, entry in registry._TARGETS.entries.items() if name in ("process", "local", "aks")})
    monkeypatch.setattr(registry, "_TARGETS", fresh)


def test_builtin_names_and_aliases(clean_registry):
    assert set(target_names()) == {"process", "local", "aks"}  # targets not built are never offered
    assert get_target_class("subprocess") is ProcessTarget
    assert get_target_class("kubernetes") is get_target_class("aks")


def test_every_target_declares_its_surface(clean_registry):
    for cls in target_classes():
        assert cls.description and cls.config_class.target == cls.name
        fields = {f for f in cls.config_class.__dataclass_fields__}
        assert {o.field for o in (*COMMON_OPTIONS, *cls.options)} <= fields, cls.name
    merge_options((c.name, c.options) for c in target_classes())  # one meaning per flag across targets


def test_entry_points_extend_the_registry(clean_registry, monkeypatch):
    fake = EntryPoint(name="dummy", value=f"{__name__}:DummyTarget", group="nbdeploy.targets")
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group=None: [fake] if group == "nbdeploy.targets" else [])
    assert "dummy" in target_names()
    assert get_target_class("dummy") is DummyTarget
    assert config_class_for("DUMMY") is DummyConfig


def test_register_target_with_a_class(clean_registry):
    register_target("dummy", DummyTarget)
    assert get_target_class("dummy") is DummyTarget


def test_unknown_targets_say_what_to_do(clean_registry):
    with pytest.raises(TargetNotAvailable, match="No target named 'mars'. Available: aks, local, process"):
        get_target_class("mars")
    with pytest.raises(TargetNotAvailable, match="No target named 'edge'"):
        get_target_class("edge")
    register_target("needs-sdk", "nbdeploy_no_such_module.sub:Thing")
    with pytest.raises(TargetNotAvailable, match="module 'nbdeploy_no_such_module.sub' is not installed"):
        get_target_class("needs-sdk")


def test_a_plugin_whose_name_disagrees_is_refused(clean_registry):
    register_target("other", DummyTarget)
    register_target("other", f"{__name__}:DummyTarget")
    with pytest.raises(TargetNotAvailable, match="registered as 'other' but calls itself 'dummy'"):
        get_target_class("other")


def test_foreign_options_are_refused_naming_the_targets_own(clean_registry):
    with pytest.raises(InvalidInput, match=r"--replicas is not an option of target 'process' \(it is one of aks\); "
                                            r"process's own options: --port, --host, --workers, --isolated"):
        refuse_foreign_options(ProcessTarget, {"num_replicas": 3, "port": 1})
    refuse_foreign_options(ProcessTarget, {"port": 1, "auth_enabled": True, "num_replicas": None})


def test_conflicting_flags_across_targets_are_a_plugin_error():
    a = (Option("--size", "size", int, "x"),)
    b = (Option("--size", "size_gb", float, "y"),)
    with pytest.raises(ValueError, match="--size means size"):
        merge_options([("a", a), ("b", b)])
    assert merge_options([("a", a), ("c", a)])[0][1] == ["a", "c"]


def test_a_target_contributes_its_own_cli_group():
    from click.testing import CliRunner

    from nbdeploy.cli.main import cli, target_commands

    assert "edge" in target_commands()  # declared by the edge target (Target.commands), not listed in cli/main.py
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "edge" in result.output
    assert CliRunner().invoke(cli, ["edge", "--help"]).exit_code == 0
