from __future__ import annotations

import pytest

from nbdeploy.errors import Conflict, ModelInUse, ModelNotFound
from nbdeploy.registry import Model, record_usage, release_usage, usage
from nbdeploy.registry.blobs import BlobStore
from nbdeploy.workspace import Workspace


def test_add_and_remove_tags_persist(ws: Workspace, make_file) -> None:
    m = Model.register(make_file("m.bin"), "m", tags={"a": "1"}, workspace=ws)
    m.add_tags({"b": "2", "a": "3"})
    assert m.tags == {"a": "3", "b": "2"}
    m.remove_tags(["a", "missing"])
    assert m.tags == {"b": "2"} == Model.get("m", workspace=ws).tags
    m.remove_tags("b")
    assert Model.get("m", workspace=ws).tags == {}


def test_properties_are_add_only(ws: Workspace, make_file) -> None:
    m = Model.register(make_file("m.bin"), "m", properties={"k": "v"}, workspace=ws)
    m.add_properties({"k": "v", "n": "1"})  # same value: fine
    with pytest.raises(Conflict, match="cannot be changed"):
        m.add_properties({"k": "other", "z": "9"})
    assert Model.get("m", workspace=ws).properties == {"k": "v", "n": "1"}  # nothing of the refused call


def test_update_tags_properties(ws: Workspace, make_file) -> None:
    m = Model.register(make_file("m.bin"), "m", tags={"old": "x"}, workspace=ws)
    m.update_tags_properties(add_tags={"new": "y"}, remove_tags=["old"], add_properties={"p": "q"})
    again = Model.get("m", workspace=ws)
    assert (again.tags, again.properties) == ({"new": "y"}, {"p": "q"})


def test_delete_removes_version_and_never_reuses_its_number(ws: Workspace, make_file) -> None:
    src = make_file("m.bin")
    Model.register(src, "m", workspace=ws)
    m2 = Model.register(src, "m", workspace=ws)
    m2.delete()
    with pytest.raises(ModelNotFound, match="Existing versions of 'm': 1"):
        Model.get("m", 2, workspace=ws)
    assert Model.register(src, "m", workspace=ws).version == 3
    with pytest.raises(ModelNotFound):
        m2.add_tags({"a": "b"})


def test_delete_frees_unshared_blobs_only(ws: Workspace, make_file) -> None:
    shared = Model.register(make_file("a.bin", b"shared"), "a", workspace=ws)
    Model.register(make_file("b.bin", b"shared"), "b", workspace=ws)
    own = Model.register(make_file("c.bin", b"own"), "c", workspace=ws)
    blobs = BlobStore(ws)
    own_blob = blobs.path(own.file_entries()[0].digest)
    shared.delete()
    own.delete()
    assert not own_blob.exists()
    assert Model.get("b", workspace=ws).download(ws.path.parent / "out")  # its blob survived


def test_delete_refused_while_in_use_unless_forced(ws: Workspace, make_file) -> None:
    m = Model.register(make_file("m.bin"), "m", workspace=ws)
    record_usage("svc-a", [m.id], workspace=ws)
    record_usage("svc-b", [m.id], workspace=ws)
    assert usage(ws) == {"m:1": ["svc-a", "svc-b"]}
    assert m.used_by() == ["svc-a", "svc-b"]
    with pytest.raises(ModelInUse) as info:
        m.delete()
    assert info.value.services == ["svc-a", "svc-b"] and "force" in str(info.value)
    assert Model.get("m", 1, workspace=ws) == m
    release_usage("svc-a", workspace=ws)
    with pytest.raises(ModelInUse):
        m.delete()
    m.delete(force=True)
    assert Model.list(workspace=ws) == []


def test_release_usage_of_one_model(ws: Workspace, make_file) -> None:
    m = Model.register(make_file("m.bin"), "m", workspace=ws)
    record_usage("svc", ["m:1", "other:3"], workspace=ws)
    release_usage("svc", ["m:1"], workspace=ws)
    assert usage(ws) == {"other:3": ["svc"]}
    m.delete()
