from __future__ import annotations

import pytest

from nbdeploy.errors import InvalidInput, ModelNotFound
from nbdeploy.registry import Model
from nbdeploy.workspace import Workspace


@pytest.fixture
def populated(ws: Workspace, make_file) -> Workspace:
    src = make_file("m.bin")
    Model.register(src, "alpha", tags={"stage": "dev", "team": "a"}, workspace=ws)               # alpha:1
    Model.register(src, "alpha", tags={"stage": "prod", "team": "a"}, properties={"auc": "0.9"}, workspace=ws)  # alpha:2
    Model.register(src, "alpha", tags={"stage": "dev"}, workspace=ws)                             # alpha:3
    Model.register(src, "beta", tags={"stage": "prod"}, model_framework="Onnx", workspace=ws)     # beta:1
    return ws


def ids(models: list[Model]) -> list[str]:
    return [m.id for m in models]


def test_get_latest_and_specific(populated: Workspace) -> None:
    assert Model.get("alpha", workspace=populated).version == 3
    assert Model.get("alpha", 2, workspace=populated).tags == {"stage": "prod", "team": "a"}
    assert Model.get("alpha", "1", workspace=populated).version == 1
    assert Model.get("alpha:2", workspace=populated).version == 2
    assert Model("beta", workspace=populated).id == "beta:1"


def test_unknown_name_suggests_close_matches(populated: Workspace) -> None:
    with pytest.raises(ModelNotFound) as info:
        Model.get("alpah", workspace=populated)
    assert info.value.close_matches == ["alpha"]
    assert "Did you mean 'alpha'" in str(info.value)


def test_unknown_version_lists_existing_versions(populated: Workspace) -> None:
    with pytest.raises(ModelNotFound, match=r"Existing versions of 'alpha': 1, 2, 3\."):
        Model.get("alpha", 9, workspace=populated)


@pytest.mark.parametrize("version", [0, -1, "x", 1.5, True])
def test_bad_version_is_invalid_input(populated: Workspace, version) -> None:
    with pytest.raises(InvalidInput):
        Model.get("alpha", version, workspace=populated)


def test_list_all_ordered(populated: Workspace) -> None:
    assert ids(Model.list(workspace=populated)) == ["alpha:1", "alpha:2", "alpha:3", "beta:1"]
    assert ids(Model.list(name="beta", workspace=populated)) == ["beta:1"]
    assert Model.list(name="gamma", workspace=populated) == []


@pytest.mark.parametrize("tags, expected", [
    ("stage=prod", ["alpha:2", "beta:1"]),
    (["stage=prod"], ["alpha:2", "beta:1"]),
    ([["stage", "prod"]], ["alpha:2", "beta:1"]),
    ({"stage": "prod"}, ["alpha:2", "beta:1"]),
    (["team"], ["alpha:1", "alpha:2"]),
    (["team", "stage=prod"], ["alpha:2"]),           # AND
    (["team", "stage"], ["alpha:1", "alpha:2"]),     # v1: a list of keys means every key
    (["stage=prod", "team=b"], []),
    (["stage=prod=x"], []),                          # value may hold '='
])
def test_list_tag_filters(populated: Workspace, tags, expected) -> None:
    assert ids(Model.list(tags=tags, workspace=populated)) == expected


def test_list_property_and_framework_filters(populated: Workspace) -> None:
    assert ids(Model.list(properties=["auc"], workspace=populated)) == ["alpha:2"]
    assert ids(Model.list(properties=[["auc", "0.9"]], tags=["stage=prod"], workspace=populated)) == ["alpha:2"]
    assert ids(Model.list(properties=["auc=0.1"], workspace=populated)) == []
    assert ids(Model.list(model_framework="Onnx", workspace=populated)) == ["beta:1"]


def test_latest_is_newest_matching_version_per_name(populated: Workspace) -> None:
    assert ids(Model.list(latest=True, workspace=populated)) == ["alpha:3", "beta:1"]
    assert ids(Model.list(tags=["stage=prod"], latest=True, workspace=populated)) == ["alpha:2", "beta:1"]
    assert ids(Model.list(name="alpha", tags=["stage=dev"], latest=True, workspace=populated)) == ["alpha:3"]


@pytest.mark.parametrize("bad", [[""], [["k", 1]], [["a", "b", "c"]], [3], 5, ["=v"]])
def test_malformed_filters(populated: Workspace, bad) -> None:
    with pytest.raises(InvalidInput, match="Malformed"):
        Model.list(tags=bad, workspace=populated)


def test_repr_serialize_and_html(populated: Workspace) -> None:
    m = Model.get("alpha", 2, workspace=populated)
    assert "alpha:2" in repr(m) and "stage" in repr(m)
    data = m.serialize()
    for key in ("createdTime", "createdBy", "description", "id", "name", "framework", "frameworkVersion",
                "tags", "properties", "version"):
        assert key in data
    assert data["id"] == "alpha:2" and data["version"] == 2 and data["files"] == ["m.bin"]
    assert Model.deserialize(populated, data) == m
    html = m._repr_html_()
    assert "<table" in html and "alpha:2" in html and "stage=prod" in html


def test_html_is_escaped(ws: Workspace, make_file) -> None:
    m = Model.register(make_file("m.bin"), "x", description="<script>", workspace=ws)
    assert "<script>" not in m._repr_html_() and "&lt;script&gt;" in m._repr_html_()
