"""A batch worker process: import the entry script as v1 did, call ``init()`` once, then ``run()`` per mini-batch.

Started by :mod:`nbdeploy.batch.pool` as ``python -m nbdeploy.batch.worker --fd N`` with the app root as its
working directory and ``AZUREML_MODEL_DIR`` set; its stdout and stderr go to its log file. Messages on the
connection (pickled):

- parent -> worker: the setup dict, then ``(index, MiniBatch)`` per mini-batch, then ``None`` to stop;
- worker -> parent: ``("ready",)`` or ``("init_failed", traceback)``, then per mini-batch
  ``("done", index, items, results, text)`` or ``("error", index, items, traceback)``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

from nbdeploy.batch.config import APPEND_ROW


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the runner dies (a SIGKILLed runner leaves no orphans)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _load_script(setup: dict[str, Any]) -> Any:
    from nbdeploy.batch import user_shims
    from nbdeploy.server.loader import load

    user_shims.register()
    sys.argv = [setup["entry_script"], *setup.get("arguments", ())]
    script = load(setup["entry_script"], setup["app_root"], setup.get("source_dir"))
    return script.module


def serve(conn: Connection) -> int:
    """Run the worker loop on ``conn`` until told to stop or the parent goes away."""
    setup = conn.recv()
    logging.basicConfig(
        level=setup.get("logging_level", "INFO"),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        module = _load_script(setup)
        module.init()
    except BaseException:  # noqa: BLE001 - the traceback goes to the runner, which stops the job
        conn.send(("init_failed", traceback.format_exc()))
        return 1
    conn.send(("ready",))
    from nbdeploy.batch.formatting import count_results, format_results
    from nbdeploy.batch.readers import load_batch

    append = setup.get("output_action") == APPEND_ROW
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return 0
        if message is None:
            break
        index, batch = message
        items = batch.items
        try:
            mini_batch = load_batch(batch)
            items = len(mini_batch)
            result = module.run(mini_batch)
            if append:
                count, text = format_results(result)
            else:
                count, text = count_results(result), b""
        except BaseException:  # noqa: BLE001 - reported per mini-batch
            conn.send(("error", index, items, traceback.format_exc()))
            continue
        conn.send(("done", index, items, count, text))
    shutdown = getattr(module, "shutdown", None)
    if callable(shutdown):
        shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbdeploy.batch.worker")
    parser.add_argument("--fd", type=int, required=True, help="connection file descriptor from the runner")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner decides how Ctrl-C stops the job
    _die_with_parent()
    conn = Connection(args.fd)
    try:
        return serve(conn)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
