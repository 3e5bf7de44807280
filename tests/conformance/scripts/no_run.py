"""No run(): a load error (exit 3)."""


def init():
    pass
