"""Inputs -> an ordered list of mini-batches, the same every time for the same inputs (so a job can resume).

A mini-batch never crosses a file (as in v1). File inputs: ``N`` paths per mini-batch. CSV and JSON lines: a
byte range of whole records, which the worker reads itself (the parent never parses the table). Parquet: a
row range. With ``partition_keys`` the parent reads the table and each distinct key is one mini-batch.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbdeploy.batch.config import (
    DEFAULT_FILES_PER_BATCH,
    DEFAULT_TABLE_BATCH_BYTES,
    BatchSize,
)
from nbdeploy.errors import InvalidInput, InvalidSpec

FILES, CSV, PARQUET, JSONL, FRAME = "files", "csv", "parquet", "jsonl", "frame"
INPUT_FORMATS = (FILES, CSV, PARQUET, JSONL)
_SUFFIXES = {".csv": CSV, ".parquet": PARQUET, ".pq": PARQUET, ".jsonl": JSONL, ".ndjson": JSONL}


@dataclass(frozen=True)
class MiniBatch:
    """One unit of work: what ``run()`` receives once."""

    index: int
    kind: str
    path: str = ""
    files: tuple[str, ...] = ()
    start: int = 0
    """Byte offset (csv, jsonl) or first row (parquet)."""
    end: int = 0
    first_row: int = 0
    """Number of the first data row in its file, from 0 (for naming failed rows)."""
    items: int = 0
    """Rows or files (as planned; the worker reports the exact count)."""
    header: bytes = b""
    frame: Any = field(default=None, compare=False)
    key: str = ""

    def describe(self) -> str:
        """Which inputs this is, for progress and failure reports."""
        if self.kind == FILES:
            names = ", ".join(self.files[:3])
            return names + (f" (+{len(self.files) - 3} more)" if len(self.files) > 3 else "")
        name = os.path.basename(self.path)
        if self.kind == FRAME:
            return f"{name} partition {self.key}"
        return f"{name} rows {self.first_row + 1}-{self.first_row + self.items}"

    def identity(self) -> list[Any]:
        """What the plan digest covers."""
        return [self.kind, self.path, list(self.files), self.start, self.end, self.key]


@dataclass(frozen=True)
class Plan:
    """The mini-batches of a job, and a digest of the inputs they came from."""

    input_format: str
    batches: list[MiniBatch]
    digest: str
    total_items: int

    def __len__(self) -> int:
        return len(self.batches)

    def shard(self, index: int, count: int) -> Plan:
        """Shard ``index`` of ``count``: a contiguous run of mini-batches, renumbered from 0."""
        from dataclasses import replace

        from nbdeploy.batch.kubernetes import shard_range

        part = [replace(self.batches[i], index=k) for k, i in enumerate(shard_range(len(self.batches), index, count))]
        return Plan(self.input_format, part, f"{self.digest}/{index}of{count}", sum(b.items for b in part))


def resolve_inputs(inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """Absolute file paths for paths, folders (every file under them, sorted) and globs, in the order given."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not items:
        raise InvalidInput("input: give at least one file, folder or glob")
    found: list[str] = []
    for item in items:
        text = os.fspath(item)
        if os.path.isdir(text):
            matches = sorted(str(p) for p in Path(text).rglob("*") if p.is_file() and not _hidden(p, Path(text)))
        elif os.path.isfile(text):
            matches = [text]
        elif glob.has_magic(text):
            matches = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
        else:
            raise InvalidInput(f"input {text!r} does not exist; give a file, a folder or a glob such as 'data/*.csv'")
        if not matches:
            raise InvalidInput(f"input {text!r} matches no files")
        found += [os.path.abspath(m) for m in matches]
    seen: set[str] = set()
    return [p for p in found if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def infer_format(paths: Sequence[str]) -> str:
    """csv/parquet/jsonl when every file has that suffix, else files."""
    kinds = {_SUFFIXES.get(Path(p).suffix.lower()) for p in paths}
    return kinds.pop() if len(kinds) == 1 and None not in kinds else FILES  # type: ignore[return-value]


def make_plan(
    paths: Sequence[str], input_format: str | None, size: BatchSize | None, partition_keys: Sequence[str] | None = None
) -> Plan:
    """Split ``paths`` into mini-batches."""
    fmt = input_format or infer_format(paths)
    if fmt not in INPUT_FORMATS:
        raise InvalidSpec("input_format", f"{fmt!r} is not an input format", allowed=INPUT_FORMATS)
    batches: list[MiniBatch] = []
    if fmt == FILES:
        if partition_keys:
            raise InvalidSpec("partition_keys", "needs a table input (csv, parquet or jsonl), not files")
        if size is not None and size.nbytes is not None:
            raise InvalidSpec("mini_batch_size", f"for file inputs is a number of files, not a size ({size})")
        per = size.count if size is not None and size.count else DEFAULT_FILES_PER_BATCH
        for i in range(0, len(paths), per):
            chunk = tuple(paths[i : i + per])
            batches.append(MiniBatch(len(batches), FILES, files=chunk, items=len(chunk)))
    else:
        for path in paths:
            if partition_keys:
                batches += _partitions(path, fmt, partition_keys, len(batches))
            elif fmt == PARQUET:
                batches += _parquet_batches(path, size, len(batches))
            else:
                batches += _text_batches(path, fmt, size, len(batches))
    digest = _digest(fmt, paths, batches)
    return Plan(fmt, batches, digest, sum(b.items for b in batches))


def _text_batches(path: str, fmt: str, size: BatchSize | None, first_index: int) -> list[MiniBatch]:
    from nbdeploy.batch.scan import header_end, split_ranges

    quoted = fmt == CSV
    start = header_end(path, quoted=True) if fmt == CSV else 0
    header = b""
    if fmt == CSV:
        with open(path, "rb") as fh:
            header = fh.read(start)
        if not header.strip():
            raise InvalidInput(f"{path} is empty: a CSV input needs a header line")
    rows = size.count if size is not None else None
    nbytes = (
        None if rows is not None else (size.nbytes if size is not None and size.nbytes else DEFAULT_TABLE_BATCH_BYTES)
    )
    batches: list[MiniBatch] = []
    row = 0
    for begin, end, count in split_ranges(path, start, rows, nbytes, quoted=quoted):
        batches.append(
            MiniBatch(
                first_index + len(batches),
                fmt,
                path=path,
                start=begin,
                end=end,
                first_row=row,
                items=count,
                header=header,
            )
        )
        row += count
    return batches


def _parquet_batches(path: str, size: BatchSize | None, first_index: int) -> list[MiniBatch]:
    pq = _pyarrow_parquet()
    meta = pq.ParquetFile(path).metadata
    total = meta.num_rows
    if size is not None and size.count:
        per = size.count
    else:
        nbytes = size.nbytes if size is not None and size.nbytes else DEFAULT_TABLE_BATCH_BYTES
        in_memory = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        per = max(1, int(nbytes * total / in_memory)) if in_memory else total or 1
    return [
        MiniBatch(
            first_index + k,
            PARQUET,
            path=path,
            start=a,
            end=min(a + per, total),
            first_row=a,
            items=min(a + per, total) - a,
        )
        for k, a in enumerate(range(0, total, per))
    ]


def _partitions(path: str, fmt: str, keys: Sequence[str], first_index: int) -> list[MiniBatch]:
    from nbdeploy.batch.readers import read_whole_table

    frame = read_whole_table(path, fmt)
    missing = [k for k in keys if k not in frame.columns]
    if missing:
        raise InvalidSpec(
            "partition_keys",
            f"{missing[0]!r} is not a column of {os.path.basename(path)}",
            allowed=[str(c) for c in frame.columns],
        )
    batches: list[MiniBatch] = []
    for key, group in frame.groupby(list(keys), sort=False, dropna=False):
        values = key if isinstance(key, tuple) else (key,)
        label = ",".join(f"{k}={v}" for k, v in zip(keys, values, strict=False))
        batches.append(
            MiniBatch(
                first_index + len(batches),
                FRAME,
                path=path,
                items=len(group),
                frame=group,
                key=label,
                first_row=int(group.index[0]),
            )
        )
    return batches


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise InvalidInput("Parquet inputs need pyarrow: pip install pyarrow") from exc
    return pq


def _digest(fmt: str, paths: Sequence[str], batches: Sequence[MiniBatch]) -> str:
    sha = hashlib.sha256()
    sha.update(fmt.encode())
    for path in paths:
        st = os.stat(path)
        sha.update(json.dumps([path, st.st_size, st.st_mtime_ns]).encode())
    for batch in batches:
        sha.update(json.dumps(batch.identity()).encode())
    return sha.hexdigest()
