"""Fakes for people who write targets and builders: test the protocols around your code in milliseconds.

:class:`FakeTarget` runs nothing: each revision follows a script (the states it reports, whether its smoke
request passes, which verb fails or is interrupted) and every verb is logged in ``events``, so a test can
assert what the rollout protocol did. :class:`FakeBuilder` builds nothing and can be told to fail.
:class:`MemoryRecorder` keeps a revision history in memory. They are fakes of *our* interfaces, for unit
tests of the protocols; tests of a real target use its real engine.

Example (``nbdeploy.rollout``)::

    target = FakeTarget()
    target.script(2, states=["Transitioning", "Failed"], reason="init() raised")
    with pytest.raises(UpdateFailed):
        roll_out(target, target.spec(2), old_handle, 1, MemoryRecorder(), NullSink(), timeout=1, smoke=target.smoke)
    assert target.serving == 1 and target.running == {1}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from nbdeploy.builders.base import Artifact, Builder, BuildRequest
from nbdeploy.builders.bundle import Bundle
from nbdeploy.errors import BuildError, Conflict
from nbdeploy.specs.deployment import DeploymentConfig
from nbdeploy.targets.base import Handle, RevisionSpec, State, Status, Target
from nbdeploy.targets.endpoint import Endpoint


@dataclass
class FakeConfig(DeploymentConfig):
    """The deployment config of :class:`FakeTarget`."""

    target: ClassVar[str] = "fake"
    compute_type: ClassVar[str] = "fake"


@dataclass
class RevisionScript:
    """How one revision behaves on a :class:`FakeTarget`."""

    states: Sequence[str] = ("Transitioning", "Healthy")
    """Reported one per status() call; the last one repeats."""
    reason: str = ""
    smoke: str = ""
    """What the smoke check answers ('' = passes)."""
    fail: dict[str, BaseException] = field(default_factory=dict)
    """verb -> exception raised when that verb runs for this revision (``start``, ``status``, ``smoke``,
    ``promote``, ``abort``, ``retire``); a KeyboardInterrupt simulates Ctrl-C at that step."""


def _fake_bundle() -> Bundle:
    return Bundle(
        Path("/nonexistent/fake-bundle"), "0" * 64, "0" * 64, "0" * 64, "score.py", "azureml-models", None, ()
    )


class FakeTarget(Target):
    """A target that runs nothing and follows per-revision scripts; ``events`` records every verb."""

    name = "fake"
    description = "Runs nothing: a scripted target for unit tests of protocols."
    config_class = FakeConfig

    def __init__(self, workspace: Any = None) -> None:
        super().__init__(workspace)
        self.scripts: dict[int, RevisionScript] = {}
        self.events: list[tuple[str, int]] = []
        self.running: set[int] = set()
        self.serving: int | None = None
        self._calls: dict[int, int] = {}

    # -- scripting -----------------------------------------------------------------------------------
    def script(self, revision: int, **behaviour: Any) -> RevisionScript:
        """Set how ``revision`` behaves (see :class:`RevisionScript`); returns the script."""
        self.scripts[revision] = RevisionScript(**behaviour)
        return self.scripts[revision]

    def spec(self, revision: int, service: str = "svc", **config: Any) -> RevisionSpec:
        """A RevisionSpec for ``revision`` (a placeholder bundle: nothing is read from it)."""
        return RevisionSpec(service, revision, _fake_bundle(), FakeConfig(**config))

    def serve(self, revision: int) -> Handle:
        """Pretend ``revision`` is already running and serving (the old side of an update)."""
        self.running.add(revision)
        self.serving = revision
        return {"revision": revision}

    def _step(self, verb: str, revision: int) -> RevisionScript:
        self.events.append((verb, revision))
        behaviour = self.scripts.setdefault(revision, RevisionScript())
        if verb in behaviour.fail:
            raise behaviour.fail[verb]
        return behaviour

    # -- verbs ---------------------------------------------------------------------------------------
    def start(self, spec: RevisionSpec, previous: Handle | None = None) -> Handle:
        self._step("start", spec.revision)
        self.running.add(spec.revision)
        if previous is None:
            self.serving = spec.revision
        return {"revision": spec.revision}

    def status(self, handle: Handle) -> Status:
        revision = handle["revision"]
        behaviour = self._step("status", revision)
        if revision not in self.running:
            return Status(State.FAILED, "not running")
        n = self._calls[revision] = self._calls.get(revision, 0) + 1
        state = State(behaviour.states[min(n, len(behaviour.states)) - 1])
        return Status(state, "" if state == State.HEALTHY else behaviour.reason, evidence=f"log of {revision}")

    def smoke(self, target: Target, handle: Handle, spec: RevisionSpec) -> str:
        """A smoke check for ``nbdeploy.rollout.roll_out(..., smoke=target.smoke)``."""
        return self._step("smoke", handle["revision"]).smoke

    def logs(self, handle: Handle, num_lines: int = 5000) -> str:
        return f"log of {handle['revision']}"

    def stop(self, handle: Handle) -> None:
        self.events.append(("stop", handle["revision"]))
        self.running.discard(handle["revision"])
        if self.serving == handle["revision"]:
            self.serving = None

    def endpoint(self, handle: Handle) -> Endpoint | None:
        return Endpoint(f"http://fake.invalid/{handle['revision']}")

    def promote(self, new: Handle, old: Handle | None) -> Handle:
        self._step("promote", new["revision"])
        if new["revision"] not in self.running:
            raise Conflict(f"revision {new['revision']} is not running")
        self.serving = new["revision"]
        return {**new, "promoted": True}

    def retire(self, old: Handle, new: Handle) -> None:
        self._step("retire", old["revision"])
        self.running.discard(old["revision"])

    def reconcile(self, service: str, current: Handle | None, others: Mapping[int, Handle | None]) -> dict[int, str]:
        """Stop every running revision in ``others`` (as ``process`` and ``local`` do); ``events`` logs it."""
        done = {}
        for revision in others:
            self.events.append(("reconcile", revision))
            if revision in self.running:
                self.running.discard(revision)
                done[revision] = "stopped"
            else:
                done[revision] = "was not running"
        return done

    def abort(self, new: Handle, old: Handle | None) -> None:
        self._step("abort", new["revision"])
        self.running.discard(new["revision"])
        if old is not None:
            self.serving = old["revision"]


class FakeBuilder(Builder):
    """Builds nothing; ``fail`` makes the next builds raise BuildError; ``builds`` counts real builds."""

    kind = "fake"

    def __init__(self, workspace: Any = None, progress: Any = None) -> None:
        super().__init__(workspace, progress)
        self.fail: str | None = None
        self.builds = 0
        self._built: set[str] = set()

    def build(self, request: BuildRequest) -> Artifact:
        if self.fail:
            raise BuildError(self.fail, ["step 1/1", self.fail], step="fake build")
        digest = request.bundle.digest
        cached = digest in self._built
        if not cached:
            self.builds += 1
            self._built.add(digest)
        return Artifact(self.kind, f"fake:{digest[:12]}", digest, cached=cached)


class MemoryRecorder:
    """A revision history in memory (``nbdeploy.rollout.RevisionRecorder``)."""

    def __init__(self) -> None:
        self.handles: dict[int, Handle] = {}
        self.outcomes: dict[int, tuple[str, str, str]] = {}
        """revision -> (state, reason, evidence) of revisions that were not promoted."""
        self.current: int | None = None

    def started(self, revision: int, handle: Handle) -> None:
        self.handles[revision] = handle

    def failed(self, revision: int, state: str, reason: str, evidence: str = "") -> None:
        self.outcomes[revision] = (state, reason, evidence)

    def promoted(self, revision: int, handle: Handle) -> None:
        self.handles[revision] = handle
        self.current = revision


class NullSink:
    """A progress sink that keeps what it is told (``lines``, ``states``, ``finished``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.states: list[tuple[str, str]] = []
        self.finished: list[tuple[str, str]] = []

    def state(self, name: str, state: str, reason: str = "") -> None:
        self.states.append((state, reason))

    def line(self, name: str, text: str) -> None:
        self.lines.append(text)

    def finish(self, name: str, state: str, reason: str = "", scoring_uri: str | None = None) -> None:
        self.finished.append((state, reason))
