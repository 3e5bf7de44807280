"""One worker process: load the script, call ``init()``, serve the ASGI app with uvicorn (httptools + uvloop)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import mmap
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from . import limits as limits_mod
from . import loader, logs, sockets, swagger
from .app import App, WorkerState

log = logging.getLogger("nbdeploy.server")
EXIT_INIT_FAILED = 3
EXIT_BIND_FAILED = 4


class Server(uvicorn.Server):
    """uvicorn's server with our signals: SIGTERM drains, SIGUSR1 binds the public port."""

    def __init__(
        self,
        config: uvicorn.Config,
        state: WorkerState,
        on_release: Callable[[], None],
        limits: limits_mod.Limits | None = None,
    ) -> None:
        super().__init__(config)
        self.state = state
        self.on_release = on_release
        self.limits = limits

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # handlers are installed on the loop in startup()

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets=sockets)
        loop = asyncio.get_running_loop()
        # plain handlers run even while run() blocks the loop, so that response already says Connection: close
        signal.signal(signal.SIGTERM, lambda *_: self.drain())
        signal.signal(signal.SIGINT, lambda *_: self.drain())
        loop.add_signal_handler(signal.SIGUSR1, self.on_release)
        if self.limits is not None:
            self._sweeper = loop.create_task(limits_mod.sweep(self.limits))

    def drain(self) -> None:
        self.state.draining = True
        self.should_exit = True

    async def add_socket(self, sock: Any) -> None:
        """Serve one more listening socket (the public port after SIGUSR1)."""
        config = self.config

        def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
            # uvicorn types the class as type[asyncio.Protocol]; its protocols take these arguments
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=_loop
            )

        server = await asyncio.get_running_loop().create_server(
            create_protocol, sock=sock, ssl=config.ssl, backlog=config.backlog
        )
        self.servers.append(server)


def _busy_slot(shm: mmap.mmap | None, index: int) -> tuple[memoryview[float], int] | None:
    """This worker's float in the shared hang-watchdog array (the master reads it with struct)."""
    if shm is None:
        return None
    return memoryview(shm).cast("d"), index


def run(settings: Any, index: int, report: Callable[[str, str], None], shm: mmap.mmap | None) -> int:
    """Worker body; returns the exit code."""
    logs.setup(settings.log_format)
    logs.capture_prints()
    try:
        script = loader.load(
            settings.entry_path,
            settings.app_root,
            settings.source_dir,
            (settings.batch_max_size, settings.batch_max_latency_ms),
        )
        loader.call_init(script)
    except BaseException as exc:  # noqa: BLE001 - anything here is the user's init failing
        log.error("User's init function failed\n%s", "".join(traceback.format_exception(exc)).rstrip())
        log.error(
            "Model directory listing (%s):\n%s",
            settings.model_dir,
            "\n".join(loader.model_dir_listing(settings.model_dir)),
        )
        report("failed", f"{type(exc).__name__}: {exc}")
        return EXIT_INIT_FAILED
    entry_dir = os.path.dirname(settings.entry_path) if settings.entry_path else None
    docs = swagger.build(
        script.run,
        script.style == loader.SCHEMA,
        settings.service_name,
        settings.service_version,
        settings.service_path_prefix,
        settings.app_root,
        entry_dir,
    )
    state = WorkerState()
    app = App(settings, script, docs, state, _busy_slot(shm, index))
    limits = limits_mod.Limits(settings.max_header_bytes, settings.header_timeout_s, settings.max_connections)
    config = uvicorn.Config(
        app,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http=limits_mod.protocol_class(limits),
        lifespan="off",
        access_log=False,
        server_header=False,
        log_config=None,
        timeout_keep_alive=settings.keep_alive_timeout_s,
        timeout_graceful_shutdown=settings.graceful_timeout_s,
        backlog=2048,
        ssl_certfile=settings.ssl_certfile,
        ssl_keyfile=settings.ssl_keyfile,
    )
    # several workers, a handover, or a port the master picked (port 0, reserved with SO_REUSEPORT)
    reuse = settings.reuse_port or settings.workers > 1 or settings.port_reserved
    listen: list[Any] = []
    try:
        if settings.admin_port is not None:
            listen.append(sockets.bind(settings.admin_host, settings.admin_port, reuse_port=True))
        if not settings.hold_public:
            listen.append(sockets.bind(settings.host, settings.port, reuse_port=reuse))
    except OSError as exc:
        log.error("Cannot bind: %s", exc)
        report("failed", f"cannot bind: {exc}")
        return EXIT_BIND_FAILED
    server: Server

    def release() -> None:
        async def bind_public() -> None:
            try:
                await server.add_socket(sockets.bind(settings.host, settings.port, reuse_port=reuse))
            except OSError as exc:
                log.error("Cannot bind the public port: %s", exc)
                report("failed", f"cannot bind: {exc}")
                return
            report("serving", "")

        if settings.hold_public and not state.draining:
            asyncio.get_running_loop().create_task(bind_public())

    server = Server(config, state, release, limits)
    state.ready = True
    report("ready" if settings.hold_public else "serving", "")
    where = ", ".join(f"{sock.getsockname()[0]}:{sock.getsockname()[1]}" for sock in listen)
    log.info("Worker %d (pid %d) ready for serving traffic on %s", index, os.getpid(), where)
    # Everything alive now (modules, the model) lives as long as the worker: move it out of the
    # collector's generations so that full collections while serving do not walk it (fewer, shorter
    # GC pauses in the latency tail).
    gc.collect()
    gc.freeze()
    server.run(sockets=listen)
    sys.stdout.flush()
    return 0
