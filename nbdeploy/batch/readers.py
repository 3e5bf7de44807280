"""Read one mini-batch into what ``run()`` receives: a list of paths, or a pandas DataFrame (runs in a worker).

A DataFrame has a fresh 0..n-1 index, so ``pd.Series(predictions)`` lines up with it as in v1.
"""

from __future__ import annotations

import io
from typing import Any

from nbdeploy.batch.plan import CSV, FILES, FRAME, JSONL, PARQUET, MiniBatch


def load_batch(batch: MiniBatch) -> Any:
    """The ``mini_batch`` argument of ``run()``."""
    if batch.kind == FILES:
        return list(batch.files)
    if batch.kind == FRAME:
        return batch.frame.reset_index(drop=True)
    import pandas as pd

    if batch.kind == PARQUET:
        return _parquet_rows(batch.path, batch.start, batch.end)
    with open(batch.path, "rb") as fh:
        fh.seek(batch.start)
        data = fh.read(batch.end - batch.start)
    if batch.kind == CSV:
        frame = pd.read_csv(io.BytesIO(batch.header + data))
    elif batch.kind == JSONL:
        frame = pd.read_json(io.BytesIO(data), lines=True)
    else:  # pragma: no cover - the planner makes only the kinds above
        raise ValueError(f"unknown mini-batch kind {batch.kind!r}")
    return frame


def _parquet_rows(path: str, start: int, stop: int) -> Any:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    groups, first, row = [], None, 0
    for i in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(i).num_rows
        if row + n > start and row < stop:
            groups.append(i)
            first = row if first is None else first
        row += n
    table = pf.read_row_groups(groups).slice(start - (first or 0), stop - start)
    return table.to_pandas()


def read_whole_table(path: str, fmt: str) -> Any:
    """A whole table file as a DataFrame (for ``partition_keys``)."""
    import pandas as pd

    if fmt == CSV:
        return pd.read_csv(path)
    if fmt == JSONL:
        return pd.read_json(path, lines=True)
    if fmt == PARQUET:
        return pd.read_parquet(path)
    raise ValueError(f"not a table format: {fmt!r}")
