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
