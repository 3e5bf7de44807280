"""Batch progress rendering: the terminal bar, plain lines through a ProgressSink."""

from __future__ import annotations

import io

from nbdeploy.batch.progress import SinkProgress, Snapshot, TerminalBar, default_progress
from nbdeploy.progress import PlainSink


def snap(done: int, failed: int = 0, elapsed: float = 10.0) -> Snapshot:
    return Snapshot("score", "rows", done, 200_000, failed, done // 1000, 200, elapsed)


def test_snapshot_text_has_counts_rate_eta_and_failures():
    assert snap(50_000, failed=3).text() == "50,000/200,000 rows, 50/200 mini-batches, 5,000 rows/s, ETA 30s, 3 failed"
    assert "ETA" not in snap(200_000).text()


def test_terminal_bar_redraws_one_line_and_ends_with_the_state():
    out = io.StringIO()
    bar = TerminalBar(out, width=10, interval_s=0)
    bar.update(snap(100_000))
    bar.finish(snap(200_000), "Succeeded")
    text = out.getvalue()
    assert text.startswith("\rscore [#####-----]  50.0% 100,000/200,000 rows")
    assert "\rscore [##########] 100.0% 200,000/200,000 rows" in text
    assert text.endswith("score: Succeeded\n")


def test_plain_lines_are_throttled_and_the_end_is_reported():
    out = io.StringIO()
    progress = SinkProgress(PlainSink(out), interval_s=3600)
    for done in range(0, 200_000, 1000):
        progress.update(snap(done))
    progress.finish(snap(150_000, failed=2), "Failed", "2 failed inputs > error_threshold=1")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("score: Running - 0/200,000 rows, 0/200 mini-batches, 0 rows/s, 0 failed")
    assert "score: ended Failed - 150,000/200,000 rows" in lines[1] and "error_threshold=1" in lines[1]


def test_default_progress_is_plain_lines_off_a_tty():
    assert isinstance(default_progress(True, io.StringIO()), SinkProgress)


def test_notebook_widget_shows_fraction_state_and_reason():
    from nbdeploy.notebook.batch_magic import BatchProgressWidget

    widget = BatchProgressWidget(display=False, interval_s=0)
    widget.update(snap(50_000))
    assert widget.bar.value == 0.25 and "50,000/200,000 rows" in widget.label.value
    widget.finish(snap(60_000, failed=7), "Failed", "7 failed inputs > error_threshold=0")
    assert widget.bar.bar_style == "danger" and "Failed" in widget.label.value and "error_threshold=0" in widget.label.value
