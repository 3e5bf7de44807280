"""Undecorated run(raw): one branch per return-value rule of the contract (section 1.4)."""
import json
import logging

import numpy as np


def init():
    print("plain init")


def run(raw):
    logging.getLogger("plain").info("run called with %d chars", len(raw))
    if raw == "none":
        return None
    if raw == "str":
        return "hello"
    if raw == "tuple":
        return ({"a": 1}, 201)
    if raw == "npfloat":
        return np.float64(1.5)
    if raw == "ndarray":
        return np.arange(3)
    if raw == "bytes":
        return b"raw"
    if raw == "raise":
        raise ValueError("boom")
    if raw == "print":
        print("printed from run")
        return "printed"
    return {"got": raw}
