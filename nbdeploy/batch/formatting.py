"""What ``run()`` returned -> (number of results, the append_row text), in v1's ``parallel_run_step.txt`` format.

v1 wrote one line per result: a DataFrame row as its values separated by spaces (no header, no index; a value
holding a space is quoted, as ``DataFrame.to_csv(sep=" ")`` does), a list element with ``str()``, and a list
or tuple element as its values separated by spaces. Downstream steps read it with
``pd.read_csv(path, delimiter=" ", header=None)``.
"""

from __future__ import annotations

import csv
import io
from typing import Any


class ResultTypeError(TypeError):
    """run() returned something that is neither a list nor a DataFrame."""


def count_results(result: Any) -> int:
    """How many inputs succeeded: the length of the list or DataFrame ``run()`` returned."""
    _check(result)
    return len(result)


def format_results(result: Any) -> tuple[int, bytes]:
    """(number of results, UTF-8 lines for the append_row file)."""
    kind = _check(result)
    if kind == "frame":
        if len(result) == 0:
            return 0, b""
        return len(result), result.to_csv(sep=" ", header=False, index=False, lineterminator="\n").encode()
    if kind == "series" or kind == "array":
        result = result.tolist()
    buf = io.StringIO()
    writer = None
    for item in result:
        if isinstance(item, (list, tuple)):
            writer = writer or csv.writer(buf, delimiter=" ", lineterminator="\n")
            writer.writerow(item)
        else:
            buf.write(str(item))
            buf.write("\n")
    return len(result), buf.getvalue().encode()


def _check(result: Any) -> str:
    if isinstance(result, (list, tuple)):
        return "list"
    name = type(result).__name__
    module = type(result).__module__
    if module.startswith("pandas") and name == "DataFrame":
        return "frame"
    if module.startswith("pandas") and name == "Series":
        return "series"
    if module.startswith("numpy") and name == "ndarray":
        if result.ndim >= 1:
            return "array"
    raise ResultTypeError(
        f"run() returned {name}; it must return a list or a pandas DataFrame with one element per input that succeeded"
    )
