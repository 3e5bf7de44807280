"""A script whose folder carries its own swagger2.json (returned verbatim for version 2)."""


def init():
    pass


def run(data):
    return data
