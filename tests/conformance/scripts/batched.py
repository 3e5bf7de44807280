"""Adaptive batching: run() takes a list of request bodies and returns one result per body."""
import json
import os

from nbdeploy_batching import nbdeploy_batch

SIZES = []


def init():
    pass


@nbdeploy_batch(max_batch_size=16, max_latency_ms=5)
def run(inputs):
    SIZES.append(len(inputs))
    if any(i == "raise" for i in inputs):
        raise ValueError("bad input in batch")
    return [{"echo": json.loads(i)["x"], "batch": len(inputs), "pid": os.getpid()} for i in inputs]
