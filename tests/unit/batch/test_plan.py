"""Planning: record boundaries (quotes, blank lines, CRLF), mini-batch sizes, stable digests."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from nbdeploy.batch.config import BatchSize
from nbdeploy.batch.plan import (
    CSV,
    FILES,
    JSONL,
    infer_format,
    make_plan,
    resolve_inputs,
)
from nbdeploy.batch.readers import load_batch
from nbdeploy.batch.scan import record_ends
from nbdeploy.errors import InvalidInput, InvalidSpec


def ends(path, start=0, quoted=True, block=7):
    return [int(e) for arr in record_ends(str(path), start, quoted=quoted, block=block) for e in arr]


def test_newlines_inside_quotes_are_not_record_ends_across_blocks(tmp_path):
    text = 'a,b\n1,"x\ny"\n2,"he said ""hi""\nthere"\n\n3,z'
    path = tmp_path / "q.csv"
    path.write_bytes(text.encode())
    found = ends(path)
    assert [text[:e].count("\n") for e in found[:-1]] == [1, 3, 5]
    assert found[-1] == len(text)  # the last record has no newline
    for block in (1, 2, 3, 64):
        assert ends(path, block=block) == found


def test_blank_lines_and_crlf(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"h\r\n1\r\n\r\n2\r\n\n\n3\r\n\r\n")
    assert ends(path, start=3) == [6, 11, 16]


@pytest.mark.parametrize("size", [BatchSize(count=7), BatchSize(count=1), BatchSize(nbytes=64), BatchSize(nbytes=1)])
def test_csv_batches_cover_every_row_once_in_order(tmp_path, size):
    frame = pd.DataFrame({"id": range(50), "text": [f"line {i}\nwith, \"quotes\"" if i % 7 == 0 else f"v{i}" for i in range(50)]})
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    plan = make_plan(resolve_inputs(path), None, size)
    assert plan.input_format == CSV
    assert plan.total_items == 50
    parts = [load_batch(b) for b in plan.batches]
    assert pd.concat(parts)["id"].tolist() == list(range(50))
    assert all(list(p.index) == list(range(len(p))) for p in parts)  # a fresh index per mini-batch, as in v1
    if size.count:
        assert [len(p) for p in parts[:-1]] == [size.count] * (len(parts) - 1)
    assert plan.batches[1].describe().startswith("t.csv rows ")


def test_jsonl_by_size(tmp_path):
    path = tmp_path / "t.jsonl"
    pd.DataFrame({"id": range(100), "x": [1.5] * 100}).to_json(path, orient="records", lines=True)
    plan = make_plan([str(path)], None, BatchSize(nbytes=200))
    assert plan.input_format == JSONL and len(plan) > 5
    assert pd.concat(load_batch(b) for b in plan.batches)["id"].tolist() == list(range(100))


def test_parquet_row_ranges_cross_row_groups(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "t.parquet"
    pd.DataFrame({"id": range(95)}).to_parquet(path, row_group_size=20)
    plan = make_plan([str(path)], None, BatchSize(count=30))
    assert [(b.start, b.end) for b in plan.batches] == [(0, 30), (30, 60), (60, 90), (90, 95)]
    assert pd.concat(load_batch(b) for b in plan.batches)["id"].tolist() == list(range(95))


def test_partition_keys_one_batch_per_key(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"store": ["b", "a", "b", "c", "a"], "v": range(5)}).to_csv(path, index=False)
    plan = make_plan([str(path)], None, None, partition_keys=["store"])
    assert [b.key for b in plan.batches] == ["store=b", "store=a", "store=c"]
    assert load_batch(plan.batches[0])["v"].tolist() == [0, 2]
    with pytest.raises(InvalidSpec, match="'shop' is not a column"):
        make_plan([str(path)], None, None, partition_keys=["shop"])


def test_files_inputs_folders_globs_and_errors(tmp_path):
    for name in ("b.png", "a.png", ".hidden", "sub/c.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    paths = resolve_inputs(tmp_path)
    assert [os.path.relpath(p, tmp_path) for p in paths] == ["a.png", "b.png", "sub/c.png"]
    assert resolve_inputs(str(tmp_path / "*.png")) == paths[:2]
    plan = make_plan(paths, None, BatchSize(count=2))
    assert plan.input_format == FILES and [b.items for b in plan.batches] == [2, 1]
    with pytest.raises(InvalidInput, match="does not exist"):
        resolve_inputs(tmp_path / "nope.csv")
    with pytest.raises(InvalidInput, match="matches no files"):
        resolve_inputs(str(tmp_path / "*.jpg"))
    with pytest.raises(InvalidSpec, match="number of files"):
        make_plan(paths, "files", BatchSize(nbytes=10))
    with pytest.raises(InvalidSpec, match="allowed: csv, files, jsonl, parquet"):
        make_plan(paths, "xml", None)


def test_digest_is_stable_and_follows_inputs(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"id": range(10)}).to_csv(path, index=False)
    first = make_plan([str(path)], None, BatchSize(count=3))
    assert make_plan([str(path)], None, BatchSize(count=3)).digest == first.digest
    assert make_plan([str(path)], None, BatchSize(count=4)).digest != first.digest
    with open(path, "a") as fh:
        fh.write("10\n")
    assert make_plan([str(path)], None, BatchSize(count=3)).digest != first.digest


def test_infer_format():
    assert infer_format(["a.csv", "b.CSV"]) == "csv"
    assert infer_format(["a.csv", "b.parquet"]) == "files"
    assert infer_format(["a.png"]) == "files"
