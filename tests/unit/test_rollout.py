"""The update protocol (nbdeploy.rollout) on every exit path, against the scripted FakeTarget.

The invariant on every failure: the old revision keeps serving, the new one is not running, the history says
why. On success: the new revision serves, the old one is retired, the history switched.
"""

from __future__ import annotations

import pytest

from nbdeploy.errors import BuildError, Conflict, UpdateFailed
from nbdeploy.rollout import roll_out
from nbdeploy.testing import FakeBuilder, FakeTarget, MemoryRecorder, NullSink


def update(target: FakeTarget, recorder: MemoryRecorder | None = None, timeout: float = 2.0):
    old = target.serve(1)
    recorder = recorder or MemoryRecorder()
    return roll_out(target, target.spec(2), old, 1, recorder, NullSink(), timeout, smoke=target.smoke), recorder


def assert_old_keeps_serving(target: FakeTarget, recorder: MemoryRecorder) -> None:
    assert target.serving == 1 and target.running == {1}
    assert recorder.current is None and 2 in recorder.outcomes


def test_success_promotes_then_retires_the_old_revision():
    target = FakeTarget()
    handle, recorder = update(target)
    assert handle == {"revision": 2, "promoted": True}
    assert target.serving == 2 and target.running == {2} and recorder.current == 2
    verbs = [verb for verb, _ in target.events]
    assert verbs.index("smoke") < verbs.index("promote") < verbs.index("retire")
    assert ("retire", 1) in target.events and ("abort", 2) not in target.events


def test_first_revision_has_nothing_to_retire():
    target = FakeTarget()
    recorder = MemoryRecorder()
    roll_out(target, target.spec(1), None, 0, recorder, NullSink(), 1, smoke=target.smoke)
    assert target.serving == 1 and not any(verb == "retire" for verb, _ in target.events)


def test_start_failure_is_an_update_failure_and_nothing_runs():
    target = FakeTarget()
    target.script(2, fail={"start": Conflict("port taken")})
    with pytest.raises(UpdateFailed, match="revision 2 could not start: port taken; revision 1 keeps serving"):
        update(target)
    assert target.serving == 1 and target.running == {1}


def test_interrupt_during_start_is_recorded_and_reraised():
    target, recorder = FakeTarget(), MemoryRecorder()
    target.script(2, fail={"start": KeyboardInterrupt()})
    with pytest.raises(KeyboardInterrupt):
        update(target, recorder)
    assert recorder.outcomes[2][1] == "could not start: KeyboardInterrupt"
    assert target.serving == 1


def test_failed_revision_is_aborted_with_its_evidence():
    target, recorder = FakeTarget(), MemoryRecorder()
    target.script(2, states=["Transitioning", "Failed"], reason="init() raised ValueError")
    with pytest.raises(UpdateFailed) as err:
        update(target, recorder)
    assert err.value.state == "Failed" and "init() raised ValueError" in str(err.value)
    assert "revision 1 keeps serving" in str(err.value) and not str(err.value).startswith("Service")
    assert recorder.outcomes[2] == ("Failed", "Failed: init() raised ValueError", "log of 2")
    assert_old_keeps_serving(target, recorder)


def test_timeout_while_transitioning_is_aborted():
    target, recorder = FakeTarget(), MemoryRecorder()
    target.script(2, states=["Transitioning"], reason="init() is running")
    with pytest.raises(UpdateFailed, match="still Transitioning after 0s"):
        update(target, recorder, timeout=0.05)
    assert_old_keeps_serving(target, recorder)


def test_failing_smoke_request_is_aborted_as_unhealthy():
    target, recorder = FakeTarget(), MemoryRecorder()
    target.script(2, smoke="smoke request POST /score answered 500: boom")
    with pytest.raises(UpdateFailed) as err:
        update(target, recorder)
    assert err.value.state == "Unhealthy" and "answered 500" in err.value.reason
    assert_old_keeps_serving(target, recorder)
    assert ("promote", 2) not in target.events


def test_promote_failure_is_aborted():
    target, recorder = FakeTarget(), MemoryRecorder()
    target.script(2, fail={"promote": Conflict("did not take the public port")})
    with pytest.raises(UpdateFailed, match=r"was not promoted \(did not take the public port\)"):
        update(target, recorder)
    assert_old_keeps_serving(target, recorder)


@pytest.mark.parametrize("step", ["status", "smoke", "promote"])
def test_interrupt_at_each_step_aborts_and_reraises(step):
    target, recorder = FakeTarget(), MemoryRecorder()
    target.script(2, fail={step: KeyboardInterrupt()})
    with pytest.raises(KeyboardInterrupt):
        update(target, recorder)
    assert_old_keeps_serving(target, recorder)
    assert recorder.outcomes[2][1] == "update stopped: KeyboardInterrupt"


def test_abort_that_fails_does_not_hide_the_reason():
    target, recorder = FakeTarget(), MemoryRecorder()
    target.script(2, states=["Failed"], reason="missing module", fail={"abort": RuntimeError("engine gone")})
    with pytest.raises(UpdateFailed, match="missing module"):
        update(target, recorder)
    assert target.serving == 1 and recorder.current is None


def test_retire_failure_keeps_the_new_revision_serving():
    target, recorder = FakeTarget(), MemoryRecorder()
    target.script(1, fail={"retire": RuntimeError("container stuck")})
    sink = NullSink()
    roll_out(target, target.spec(2), target.serve(1), 1, recorder, sink, 1, smoke=target.smoke)
    assert target.serving == 2 and recorder.current == 2
    assert any("revision 1 could not be stopped: container stuck" in line for line in sink.lines)


def test_fake_builder_reuses_and_fails():
    builder = FakeBuilder()
    target = FakeTarget()
    from nbdeploy.builders.base import BuildRequest

    request = BuildRequest("svc", 1, target.spec(1).bundle, target.spec(1).config)
    assert not builder.build(request).cached and builder.build(request).cached and builder.builds == 1
    builder.fail = "pip could not find the package 'nope'"
    with pytest.raises(BuildError, match="nope"):
        builder.build(request)


# -- smoke requests: what a new revision must answer before it takes traffic -----------------------------

def test_smoke_input_is_the_only_smoke_request_when_given():
    from nbdeploy.rollout import smoke_requests

    assert smoke_requests('{"a": 1}', {"data": [1]}, b'{"old": 1}') == [("the smoke input", '{"a": 1}')]


def test_without_smoke_input_the_example_and_the_last_answered_request_are_checked():
    from nbdeploy.rollout import smoke_requests

    got = smoke_requests(None, {"data": [1]}, b'{"data": [2]}')
    assert got == [("the swagger example", '{"data": [1]}'), ("the last request the serving revision answered", b'{"data": [2]}')]
    assert smoke_requests(None, None, b"raw") == [("the last request the serving revision answered", b"raw")]
    assert smoke_requests(None, None, None) == []


# -- reconcile: under the lock, whatever a dead operation left running is stopped first ------------------

@pytest.fixture
def fake_service(tmp_path, monkeypatch):
    """A service on one shared FakeTarget, deployed through nbdeploy.service with a real workspace database."""
    import nbdeploy
    from nbdeploy.targets import registry

    target = FakeTarget()
    monkeypatch.setitem(registry._TARGETS.entries, "fake", FakeTarget)
    monkeypatch.setattr("nbdeploy.service.get_target", lambda name, ws: target)
    monkeypatch.setattr("nbdeploy.service.smoke_check", lambda t, handle, spec, sample=None: target.smoke(t, handle, spec))
    ws = nbdeploy.Workspace.create(tmp_path / "ws")
    (tmp_path / "score.py").write_text("def init():\n    pass\ndef run(raw):\n    return raw\n")
    svc = nbdeploy.deploy("svc", [], nbdeploy.InferenceConfig(str(tmp_path / "score.py")), target.config_class(), workspace=ws)
    svc._target_obj = target
    return svc, target


def test_a_revision_left_starting_by_a_dead_operation_is_stopped_and_recorded_aborted(fake_service):
    svc, target = fake_service
    store = svc._store
    # an update killed during init(): revision 2 runs, recorded "starting", never finished
    orphan = store.add_revision("svc", store.revision("svc", 1).spec)
    target.start(target.spec(orphan), previous={"revision": 1})
    store.set_handle("svc", orphan, {"revision": orphan})
    assert target.running == {1, 2}
    svc.reload()
    assert ("reconcile", 2) in target.events
    assert target.events.index(("reconcile", 2)) < target.events.index(("start", 3))
    assert target.running == {3} and target.serving == 3
    outcomes = {r["revision"]: r["outcome"] for r in svc.revisions()}
    assert outcomes == {1: "replaced", 2: "aborted", 3: "serving"}


def test_a_replaced_revision_still_running_is_stopped_by_the_next_operation(fake_service):
    svc, target = fake_service
    store = svc._store
    # killed after the record switched, before retire: revision 1 is "replaced" but still runs
    new = store.add_revision("svc", store.revision("svc", 1).spec)
    target.start(target.spec(new), previous={"revision": 1})
    target.serving = new
    store.set_handle("svc", new, {"revision": new})
    store.switch("svc", new, 1, [])
    svc.refresh()
    svc.reconcile()
    assert target.running == {2}
    assert {r["revision"]: r["outcome"] for r in svc.revisions()} == {1: "replaced", 2: "serving"}


def test_lifecycle_operations_are_refused_while_another_process_holds_the_lock(fake_service, monkeypatch):
    import subprocess
    import sys

    from nbdeploy.errors import Conflict as BusyConflict

    svc, target = fake_service
    code = ("import sys, time; from nbdeploy import Workspace; from nbdeploy.locks import service_lock\n"
            f"ws = Workspace({str(svc.workspace.path)!r})\n"
            "with service_lock(ws, 'svc', 'update'):\n    print('held', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    monkeypatch.setenv("NBDEPLOY_LOCK_WAIT_S", "0.2")
    try:
        assert holder.stdout.readline().strip() == "held"
        sink = NullSink()
        for operation in (lambda: svc.reload(sink=sink), svc.delete, lambda: svc.update(sink=sink)):
            with pytest.raises(BusyConflict, match=rf"busy: update \(pid {holder.pid}"):
                operation()
        assert any("waiting for update" in line for line in sink.lines)
    finally:
        holder.kill()
        holder.wait()
    assert ("start", 2) not in target.events and target.running == {1}
