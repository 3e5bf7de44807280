"""What the connection limits (nbdeploy/server/limits.py) add per request, measured in one process.

End-to-end runs (benchmarks/server.py) on a loaded machine swing by more than the few percent this check is
about, so this drives uvicorn's httptools protocol and nbdeploy's subclass of it with the same request
bytes on the same event loop, in alternating blocks, with an in-memory transport, and compares the CPU time
per request (the fastest block of each, the least disturbed by other load). The app answers through
nbdeploy's single-write path, as the server does. Prints one table: anchor (uvicorn's protocol), ours
(with the limits), ratio, and the difference in microseconds per request.

With ``--baseline DIR`` (another checkout, e.g. ``git worktree add /tmp/base main``) it also compares the
whole worker path, nbdeploy's App answering ``POST /score`` for an echo ``run()`` on its protocol, between
DIR's server package and this one (the kernel's share of a request, the same for both, is left out).

    .venv/bin/python benchmarks/server_protocol.py [--requests 2000] [--blocks 40] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import shutil
import sys
import tempfile
import time
import types
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
    ap.add_argument("--baseline", type=Path, default=None, help="a checkout to compare the whole worker path with")
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

    def configured(asgi: object) -> uvicorn.Config:
        config = uvicorn.Config(asgi, http="httptools", lifespan="off", access_log=False, log_config=None)
        config.load()
        return config

    config = configured(app)
    classes = {"uvicorn": HttpToolsProtocol, "limits": limits.protocol_class(limits.Limits())}
    configs = {"uvicorn": config, "limits": config}

    async def block(cls: type, n: int, config: uvicorn.Config = config) -> float:
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

    def worker_path(package: types.ModuleType) -> tuple[type, uvicorn.Config]:
        """A server package's App (echo run()) and the protocol its worker serves it with."""
        app_mod = importlib.import_module(package.__name__ + ".app")
        settings = importlib.import_module(package.__name__ + ".settings").Settings()
        script = types.SimpleNamespace(run=lambda data: data, batch=None, style="plain", wants_headers=False,
                                       params=[])
        asgi = app_mod.App(settings, script, {}, app_mod.State())
        try:
            lim = importlib.import_module(package.__name__ + ".limits")
            cls = lim.protocol_class(lim.Limits())
        except ImportError:  # a server without connection limits: uvicorn's protocol
            cls = HttpToolsProtocol
        return cls, configured(asgi)

    pairs = [("uvicorn", "limits")]
    if args.baseline is not None:
        source = args.baseline.resolve() / "nbdeploy" / "server"
        if not (source / "app.py").is_file():
            sys.exit(f"--baseline {args.baseline}: no nbdeploy/server/app.py there")
        tmp = Path(tempfile.mkdtemp(prefix="nbdeploy-baseline-"))
        shutil.copytree(source, tmp / "nbdeploy_baseline_server")  # the package is self-contained
        sys.path.insert(0, str(tmp))
        import nbdeploy.server as ours_pkg

        for name, package in (("baseline", importlib.import_module("nbdeploy_baseline_server")), ("this", ours_pkg)):
            classes[name], configs[name] = worker_path(package)
        pairs.append(("baseline", "this"))

    async def run() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {name: [] for name in classes}
        for name, cls in classes.items():  # warm-up
            await block(cls, args.requests, configs[name])
        gc.disable()  # a collection lands in whichever block happens to trigger it: collect between blocks
        try:
            for i in range(args.blocks):
                for a, o in pairs:
                    for name in ((a, o) if i % 2 == 0 else (o, a)):
                        gc.collect()
                        out[name].append(await block(classes[name], args.requests, configs[name]))
        finally:
            gc.enable()
        return out

    results = uvloop.run(run())
    best = {name: min(v) * 1e6 for name, v in results.items()}
    med = {name: sorted(v)[len(v) // 2] * 1e6 for name, v in results.items()}
    print(f"\n{args.blocks} alternating blocks of {args.requests} requests each, CPU time per request "
          f"(process_time), in-memory transport, uvloop, uvicorn {uvicorn.__version__}\n")
    print(f"| {'measure (CPU us/request)':<48} | anchor   | anchor value | nbdeploy | ratio | difference |")
    print(f"|{'-' * 50}|----------|--------------|----------|-------|------------|")
    labels = {("uvicorn", "limits"): ("protocol with limits vs uvicorn's", "uvicorn"),
              ("baseline", "this"): ("worker path vs --baseline", "baseline")}
    for a, o in pairs:
        what, anchor = labels[(a, o)]
        for stat, values in (("fastest block", best), ("median block", med)):
            va, vo = values[a], values[o]
            print(f"| {what + ', ' + stat:<48} | {anchor:<8} | {va:>12.3f} | {vo:>8.3f} | "
                  f"{vo / va:>5.3f} | {vo - va:>+7.3f} us |")


if __name__ == "__main__":
    main()
