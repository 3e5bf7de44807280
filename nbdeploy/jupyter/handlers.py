"""Authenticated REST handlers and the event stream behind the side panel, under ``{base_url}nbdeploy/api/``.

Every handler is a jupyter_server :class:`APIHandler` with ``@web.authenticated`` and ``@authorized``: the
server's own token/cookie auth and XSRF check apply, and nothing answers without them (403). Work that
touches the database or an engine runs in thread pools, never on the server's event loop; deploy, update,
roll back and delete use their own pool so they never starve the reads. Errors are mapped to HTTP in one
place, :func:`nbdeploy.jupyter.api.error_doc` (``NbdeployError.status_code``).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

from nbdeploy.errors import NbdeployError
from nbdeploy.jupyter import api
from nbdeploy.jupyter.watcher import stop_all, subscribe_to, watcher_for
from nbdeploy.workspace import Workspace, as_workspace

log = logging.getLogger(__name__)
KEEPALIVE_S = 15.0
SETTINGS_KEY = "nbdeploy"


class NbdeployHandler(APIHandler):
    """Shared plumbing: the workspace of a request, running calls off the event loop, the error mapping."""

    auth_resource = "nbdeploy"

    @property
    def nbdeploy(self) -> dict[str, Any]:
        return self.settings[SETTINGS_KEY]

    def resolve_workspace(self) -> Workspace:
        """``?workspace=PATH``, else ``c.NbdeployLab.workspace``, else nbdeploy's default workspace."""
        return as_workspace(self.get_query_argument("workspace", None) or self.nbdeploy["workspace"])

    def json_body(self) -> dict[str, Any]:
        return api.parse_body(self.request.body)

    async def answer(self, fn: Callable[..., Any], *args: Any, status: int = 200, long: bool = False) -> None:
        """Run ``fn(workspace, *args)`` in a worker thread and answer its JSON, or the mapped error."""
        pool = self.nbdeploy["long_pool" if long else "read_pool"]
        try:
            body = self.json_body() if self.request.method in ("POST", "PUT") else {}
            result = await asyncio.get_running_loop().run_in_executor(
                pool, partial(self._with_workspace, fn, *(body if a is _BODY else a for a in args))
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON error answer
            self.send_error_doc(exc)
            return
        self.set_status(status)
        self.finish(json.dumps(result, default=str))

    def _with_workspace(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(self.resolve_workspace(), *args)

    def send_error_doc(self, exc: BaseException) -> None:
        code, doc = api.error_doc(exc)
        if not isinstance(exc, NbdeployError):
            self.log.error("nbdeploy: %s %s failed", self.request.method, self.request.path, exc_info=exc)
        self.set_status(code)
        self.finish(json.dumps(doc, default=str))


_BODY = object()
"""Placeholder in :meth:`NbdeployHandler.answer` args: the parsed JSON body goes there."""


class VersionHandler(NbdeployHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(json.dumps(api.version_doc()))


class TargetsHandler(NbdeployHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.answer(
            lambda ws: {
                "targets": api.target_names(),
                "environments": api.environment_names(ws),
                "workspace": str(ws.path),
            }
        )


class ModelsHandler(NbdeployHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        try:
            text = await asyncio.get_running_loop().run_in_executor(
                self.nbdeploy["read_pool"], partial(self._with_workspace, api.models_json)
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON error answer
            self.send_error_doc(exc)
            return
        self.finish(text)


class ModelVersionsHandler(NbdeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        await self.answer(lambda ws: api.models_doc(ws, name)[0])


class ServicesHandler(NbdeployHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The services as the workspace's watcher last observed them (a fresh read with ``?fresh=1``)."""
        fresh = self.get_query_argument("fresh", "0") == "1"

        def read(ws: Workspace) -> dict[str, Any]:
            if fresh:
                services = api.services_doc(ws)
            else:
                services = watcher_for(ws, **self.nbdeploy["watch"]).snapshot()
            return {"services": services, "workspace": str(ws.path)}

        await self.answer(read)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Deploy: answers 202 once the service started; its state then arrives on the event stream."""
        root = Path(self.nbdeploy["root_dir"])
        wait_pool = self.nbdeploy["long_pool"]

        def start(ws: Workspace, body: dict[str, Any]) -> dict[str, Any]:
            svc = api.deploy(ws, root, body)
            wait_pool.submit(_wait_quietly, svc)  # records the outcome in the history, like the CLI does
            return api.service_summary(svc, observe=False)

        await self.answer(start, _BODY, status=202, long=True)


def _wait_quietly(svc: Any) -> None:
    try:
        svc.wait_for_deployment()
    except NbdeployError as exc:
        log.info("nbdeploy: %s did not become Healthy: %s", svc.name, str(exc).splitlines()[0])
    except Exception:
        log.exception("nbdeploy: waiting for %s failed", svc.name)


class ServiceHandler(NbdeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        await self.answer(api.service_detail, name)

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.answer(api.delete, name, long=True)


class LogsHandler(NbdeployHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        try:
            lines = int(self.get_query_argument("lines", "200"))
        except ValueError:
            lines = -1
        await self.answer(api.service_logs, name, lines)


class ScoreHandler(NbdeployHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """``{"payload": "<request body as typed>"}`` -> ``{"result": ...}``; a scoring error carries the server's answer."""

        def run(ws: Workspace, body: dict[str, Any]) -> dict[str, Any]:
            payload = body.get("payload")
            if not isinstance(payload, str):
                payload = json.dumps(payload)
            return api.score(ws, name, payload)

        await self.answer(run, _BODY, long=True)


class UpdateHandler(NbdeployHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """``{"models": ["m:2"]}`` updates to those models; ``{}`` reloads the entry script."""
        await self.answer(lambda ws, body: api.update(ws, name, body.get("models") or None), _BODY, long=True)


class RollbackHandler(NbdeployHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        def roll(ws: Workspace, body: dict[str, Any]) -> dict[str, Any]:
            revision = body.get("revision")
            if not isinstance(revision, int) or isinstance(revision, bool):
                from nbdeploy.errors import InvalidInput

                raise InvalidInput('revision: give the number of an earlier revision, e.g. {"revision": 2}')
            return api.rollback(ws, name, revision)

        await self.answer(roll, _BODY, long=True)


class EventsHandler(NbdeployHandler):
    """Server-sent events: the workspace watcher's snapshot, then every change (see nbdeploy.jupyter.watcher)."""

    _track_activity = False  # an open panel is not user activity (lets idle culling work)

    @web.authenticated
    @authorized
    async def get(self) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        def push(event: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        try:
            ws = await loop.run_in_executor(self.nbdeploy["read_pool"], self.resolve_workspace)
            unsubscribe = await loop.run_in_executor(
                self.nbdeploy["read_pool"], partial(subscribe_to, ws, push, **self.nbdeploy["watch"])
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON error answer
            self.send_error_doc(exc)
            return
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        try:
            self.write("retry: 1000\n\n")
            await self.flush()
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    self.write(": keep-alive\n\n")
                else:
                    self.write(f"data: {json.dumps(event, default=str)}\n\n")
                await self.flush()
        except StreamClosedError:
            pass
        finally:
            unsubscribe()

    def finish(self, *args: Any, **kwargs: Any) -> Any:
        # APIHandler.finish stamps application/json; an event stream keeps its type
        if self._headers.get("Content-Type") == "text/event-stream":
            return web.RequestHandler.finish(self, *args, **kwargs)
        return super().finish(*args, **kwargs)


ROUTES: list[tuple[str, type[NbdeployHandler]]] = [
    ("version", VersionHandler),
    ("targets", TargetsHandler),
    ("models", ModelsHandler),
    ("models/([^/]+)", ModelVersionsHandler),
    ("services", ServicesHandler),
    ("services/([^/]+)", ServiceHandler),
    ("services/([^/]+)/logs", LogsHandler),
    ("services/([^/]+)/score", ScoreHandler),
    ("services/([^/]+)/update", UpdateHandler),
    ("services/([^/]+)/rollback", RollbackHandler),
    ("events", EventsHandler),
]


def setup_handlers(serverapp: Any) -> None:
    """Register the routes and the shared settings (workspace, thread pools, watcher timing)."""
    web_app = serverapp.web_app
    config = serverapp.config.get("NbdeployLab", {})
    web_app.settings[SETTINGS_KEY] = {
        "workspace": config.get("workspace") or None,
        "root_dir": str(Path(serverapp.root_dir).expanduser()),
        "read_pool": ThreadPoolExecutor(4, thread_name_prefix="nbdeploy-read"),
        "long_pool": ThreadPoolExecutor(int(config.get("max_operations", 4)), thread_name_prefix="nbdeploy-op"),
        "watch": {k: float(config[k]) for k in ("check_s", "fast_poll_s", "slow_poll_s", "linger_s") if k in config},
    }
    base = url_path_join(web_app.settings["base_url"], "nbdeploy", "api")
    web_app.add_handlers(".*$", [(url_path_join(base, route), handler) for route, handler in ROUTES])
    atexit.register(stop_all)
    settings = web_app.settings[SETTINGS_KEY]
    settings["read_pool"].submit(_prewarm, settings)


def _prewarm(settings: dict[str, Any]) -> None:
    """While JupyterLab loads in the browser: the default workspace's first scan and registry document,
    so the panel's first open answers from memory."""
    try:
        ws = as_workspace(settings["workspace"])
        if not ws.exists():
            return
        watcher_for(ws, **settings["watch"])
        api.models_json(ws)
        api.target_names()
    except Exception as exc:  # noqa: BLE001 - a broken workspace shows when the panel asks, with its message
        log.info("nbdeploy: prewarm skipped: %s", exc)
