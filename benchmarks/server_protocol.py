"""What the connection limits (nbdeploy/server/limits.py) add per request, measured in one process.

End-to-end runs (benchmarks/server.py) on a loaded machine swing by more than the few percent this check is
about, so this drives uvicorn's httptools protocol and nbdeploy's subclass of it with the same request
bytes on the same event loop, in alternating blocks, with an in-memory transport, and compares the CPU time
per request (the fastest block of each, the least disturbed by other load). The app answers through
nbdeploy's single-write path, as the server does. Prints one table: anchor (uvicorn's protocol), ours
(with the limits), ratio, and the difference in microseconds per request.

    .venv/bin/python benchmarks/server_protocol.py [--requests 2000] [--blocks 40]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REQUEST = (b"POST /score HTTP/1.1\r\nHost: 127.0.0.1:5001\r\nUser-Agent: wrk\r\nContent-Type: application/json\r\n"
           b"Content-Length: 23\r\n\r\n{\"data\": [[1, 2, 3]]}\r\n")


class Transport:
    """Enough of an asyncio transport for uvicorn's protocol; writes are counted, not kept."""

    def __init__(self) -> None:
        self.written = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += 1

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 5001)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: object) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000, help="requests per block")
    ap.add_argument("--blocks", type=int, default=40, help="blocks per protocol (alternating)")
    args = ap.parse_args()
    import uvicorn
    import uvloop
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    from nbdeploy.server import fastsend, limits

    write = fastsend.make_writer()
    if write is None:
        sys.exit("this uvicorn has no single-write path; nothing comparable to measure")
    headers = [(b"content-type", b"application/json"), (b"x-ms-run-function-failed", b"False")]

    async def app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
        await receive()
        body = b'"{\\"data\\": [[1, 2, 3]]}"'
        if not write(send, 200, [*headers, (b"content-length", b"%d" % len(body))], body):
            raise RuntimeError("the single-write path was not taken")

    config = uvicorn.Config(app, http="httptools", lifespan="off", access_log=False, log_config=None)
    config.load()
    classes = {"uvicorn": HttpToolsProtocol, "limits": limits.protocol_class(limits.Limits())}

    async def block(cls: type, n: int) -> float:
        state = ServerState()
        proto = cls(config=config, server_state=state, app_state={}, _loop=asyncio.get_running_loop())
        transport = Transport()
        proto.connection_made(transport)  # type: ignore[arg-type]
        t0 = time.process_time()
        for _ in range(n):
            proto.data_received(REQUEST)
            while state.tasks:
                await asyncio.sleep(0)
        spent = time.process_time() - t0
        if transport.written != n or transport.closing:
            raise RuntimeError(f"{cls.__name__}: {transport.written} answers for {n} requests")
        proto.connection_lost(None)
        return spent / n

    async def run() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {name: [] for name in classes}
        for name, cls in classes.items():  # warm-up
            await block(cls, args.requests)
        gc.disable()  # a collection lands in whichever block happens to trigger it: collect between blocks
        try:
            for i in range(args.blocks):
                for name in (list(classes) if i % 2 == 0 else list(classes)[::-1]):
                    gc.collect()
                    out[name].append(await block(classes[name], args.requests))
        finally:
            gc.enable()
        return out

    results = uvloop.run(run())
    best = {name: min(v) * 1e6 for name, v in results.items()}
    med = {name: sorted(v)[len(v) // 2] * 1e6 for name, v in results.items()}
    print(f"\n{args.blocks} alternating blocks of {args.requests} requests per protocol, CPU time per request "
          f"(process_time), in-memory transport, uvloop, uvicorn {uvicorn.__version__}\n")
    print("| measure                         | uvicorn's protocol | with nbdeploy's limits | ratio | difference |")
    print("|---------------------------------|--------------------|------------------------|-------|------------|")
    for label, values in (("fastest block (us/request)", best), ("median block (us/request)", med)):
        a, o = values["uvicorn"], values["limits"]
        print(f"| {label:<31} | {a:>18.3f} | {o:>22.3f} | {o / a:>5.3f} | {o - a:>+8.3f} us |")


if __name__ == "__main__":
    main()
