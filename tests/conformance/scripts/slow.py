"""run() that sleeps (Python code) or hangs (in C) or crashes the worker, on request."""
import os
import time


def init():
    print(f"slow init pid={os.getpid()}")


def run(data):
    if data.startswith("sleep:"):
        time.sleep(float(data.split(":")[1]))
        return "slept"
    if data == "spin":
        while True:
            pass
    if data == "hang-c":
        # simulates C code that never returns to the interpreter: the SIGALRM handler cannot run
        import signal
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(1000)
        return "never"
    if data == "crash":
        os._exit(17)
    if data == "pid":
        return os.getpid()
    return data
