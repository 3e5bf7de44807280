"""docs/targets.md carries the table generated from the target registry (`nbdeploy service targets --markdown`)."""

from __future__ import annotations

from pathlib import Path

from nbdeploy.cli.service import targets_markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "targets.md"


def test_docs_table_is_generated_from_the_registry():
    text = DOC.read_text()
    table = text.split("<!-- targets:begin -->\n", 1)[1].split("\n<!-- targets:end -->", 1)[0]
    assert table == targets_markdown(), "regenerate it: nbdeploy service targets --markdown"
