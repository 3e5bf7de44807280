"""Journal recovery and the append_row format (pure file logic, no workers)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nbdeploy.batch.formatting import ResultTypeError, format_results
from nbdeploy.batch.journal import Entry, Journal
from nbdeploy.batch.runner import Limits
from nbdeploy.errors import Conflict

JOB = {"plan": "abc", "batches": 3}


def test_format_matches_v1_append_row():
    frame = pd.DataFrame({"file": ["a b.png", "c.png"], "score": [0.5, 2.0]})
    assert format_results(frame) == (2, b'"a b.png" 0.5\nc.png 2.0\n')
    assert format_results(["x:1", 2.5, ("a", 3)]) == (3, b"x:1\n2.5\na 3\n")
    assert format_results(np.array([1.0, 2.0])) == (2, b"1.0\n2.0\n")
    assert format_results(np.array([[1, 2], [3, 4]])) == (2, b"1 2\n3 4\n")
    assert format_results([]) == (0, b"")
    with pytest.raises(ResultTypeError, match="must return a list or a pandas DataFrame"):
        format_results({"a": 1})
    with pytest.raises(ResultTypeError):
        format_results(None)


def test_commit_then_resume_truncates_rows_written_after_the_last_commit(tmp_path):
    journal = Journal.open(tmp_path, "out.txt", JOB)
    journal.commit([(Entry(0, 0, 2, 2), b"1\n2\n"), (Entry(1, 0, 2, 2), b"3\n4\n")])
    journal.close()
    with open(tmp_path / "out.txt", "ab") as fh:
        fh.write(b"5\n")  # a crash after writing rows, before the journal line
    with open(journal.path, "ab") as fh:
        fh.write(b'{"i":2,"end":1')  # and a torn journal line
    again = Journal.open(tmp_path, "out.txt", JOB)
    assert again.done == 2 and [e.end for e in again.entries] == [4, 8]
    assert (tmp_path / "out.txt").read_bytes() == b"1\n2\n3\n4\n"
    again.commit([(Entry(2, 0, 1, 1), b"5\n")])
    again.close()
    lines = journal.path.read_bytes().splitlines()
    assert [json.loads(x)["i"] for x in lines[1:]] == [0, 1, 2]


def test_another_job_or_a_changed_output_is_refused(tmp_path):
    Journal.open(tmp_path, "out.txt", JOB).close()
    with pytest.raises(Conflict, match="another job's journal \\(plan differ"):
        Journal.open(tmp_path, "out.txt", {**JOB, "plan": "xyz"})
    Journal.open(tmp_path, "out.txt", {**JOB, "plan": "xyz"}, overwrite=True).close()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "out.txt").write_text("someone's file\n")
    with pytest.raises(Conflict, match="no journal says which job wrote it"):
        Journal.open(tmp_path / "other", "out.txt", JOB)


def test_output_shorter_than_the_journal_is_refused(tmp_path):
    journal = Journal.open(tmp_path, "out.txt", JOB)
    journal.commit([(Entry(0, 0, 1, 1), b"1\n")])
    journal.close()
    (tmp_path / "out.txt").write_bytes(b"")
    with pytest.raises(Conflict, match="shorter than its journal"):
        Journal.open(tmp_path, "out.txt", JOB)


def test_limits():
    assert Limits(error_threshold=5).exceeded(5, 1, 10, False) == ""
    assert "error_threshold=5" in Limits(error_threshold=5).exceeded(6, 1, 10, False)
    assert Limits(error_threshold=-1).exceeded(10**9, 10, 10, True) == ""
    assert "allowed_failed_count=1" in Limits(-1, allowed_failed_count=1).exceeded(0, 2, 10, False)
    assert Limits(-1, allowed_failed_percent=10).exceeded(0, 2, 10, all_dispatched=False) == ""
    assert "allowed_failed_percent=10" in Limits(-1, allowed_failed_percent=10).exceeded(0, 2, 10, all_dispatched=True)


def test_two_runs_into_one_output_folder_are_refused(tmp_path):
    first = Journal.open(tmp_path, "out.txt", JOB)
    with pytest.raises(Conflict, match="another batch job is writing to"):
        Journal.open(tmp_path, "out.txt", JOB)
    first.close()
    Journal.open(tmp_path, "out.txt", JOB).close()
