"""The raw ASGI application: routing, the contract headers, calling ``run()`` and serializing its result.

Hot path notes: headers are scanned once into locals, constant header pairs are pre-encoded, ``run()``
is called inline on the event loop thread (one request at a time per worker, like azmlinfsrv's sync
workers) under a SIGALRM scoring timeout, and a shared-memory slot tells the master when a ``run()``
started so that one stuck in C code past the timeout gets its worker replaced.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from . import SERVER_VERSION, errors, fastsend, jsonio, loader, logs
from .auth import KeyAuth
from .batching import Batcher
from .errors import HTTPError
from .metrics import Metrics
from .request import AMLRequest, header_dict
from .response import is_response, response_parts

log = logging.getLogger("nbdeploy.server")
access = logging.getLogger("nbdeploy.server.access")

Send = Callable[[dict], Awaitable[None]]
Receive = Callable[[], Awaitable[dict]]

_JSON = (b"content-type", b"application/json")
_HTML = (b"content-type", b"text/html; charset=utf-8")
_TEXT = (b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
_FAILED = (b"x-ms-run-function-failed", b"True")
_OK = (b"x-ms-run-function-failed", b"False")
_CLOSE = (b"connection", b"close")
_ROUTES = {
    "/": "/",
    "/score": "/score",
    "/swagger.json": "/swagger.json",
    "/health/live": "/health/live",
    "/health/ready": "/health/ready",
    "/metrics": "/metrics",
}
_PLAIN_TYPES = frozenset((str, list, dict, int, float, bool, type(None)))
_FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")
_ALLOW_OTHER = b"GET, HEAD, OPTIONS"


def request_ids() -> Callable[[], bytes]:
    """A generator of uuid4-shaped request ids: a random per-process prefix and a counter.

    ``str(uuid.uuid4())`` costs a urandom call and a UUID object per request; this costs a counter step
    and one format. Call it in the worker (after fork) so that every process gets its own prefix.
    """
    r = int.from_bytes(os.urandom(16), "big")
    prefix = f"{r >> 96:08x}-{(r >> 80) & 0xFFFF:04x}-4{(r >> 68) & 0xFFF:03x}-{0x8000 | ((r >> 54) & 0x3FFF):04x}-"
    counter = itertools.count(r & 0xFFFFFFFFFFFF)
    template = prefix.encode() + b"%012x"

    def next_id() -> bytes:
        return template % (next(counter) & 0xFFFFFFFFFFFF)

    return next_id


class ScoringTimeout(BaseException):
    """Raised inside ``run()`` by SIGALRM (a BaseException so user ``except Exception`` cannot swallow it)."""


class ClientGone(Exception):
    """The client disconnected before the body was complete."""


def query_dict(query_string: bytes) -> dict[str, Any]:
    """Query parameters parsed as JSON where possible; repeated keys become lists (the reference's rule)."""
    grouped: dict[str, list[Any]] = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        try:
            parsed = jsonio.loads(value)
        except jsonio.TooDeep:
            raise errors.too_deep() from None
        except ValueError:
            parsed = value
        grouped.setdefault(key, []).append(parsed)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


_NO_HEADERS: list[tuple[bytes, bytes]] = []  # shared, never modified
_REGEX_HINTS = frozenset("*\\]?$^[]()")


class CorsPolicy:
    """``AML_CORS_ORIGINS`` with the reference's rules (flask-cors' defaults, methods GET and POST).

    An allowed ``Origin`` (compared case-insensitively; an entry with regex characters, like ``*``, is a
    pattern) is echoed in ``Access-Control-Allow-Origin``; other origins get no CORS headers. Without an
    ``Origin`` header the answer still carries one: ``*`` when ``*`` is configured, else the first
    configured origin in sorted order. A preflight (``OPTIONS`` with ``Access-Control-Request-Method`` GET
    or POST) also gets ``Access-Control-Allow-Methods: GET, POST`` and the requested headers, sorted, in
    ``Access-Control-Allow-Headers``. ``Vary: Origin`` goes with an echoed origin when more than one origin
    could match.
    """

    def __init__(self, origins: list[str]) -> None:
        import re

        plain = [o for o in origins if _REGEX_HINTS.isdisjoint(o)]
        self.exact = {o.lower() for o in plain}
        self.patterns = [
            re.compile(".*" if o == "*" else o, re.IGNORECASE) for o in origins if not _REGEX_HINTS.isdisjoint(o)
        ]
        self.wildcard = "*" in origins
        self.default = b"*" if self.wildcard else sorted(plain)[0].encode("latin-1") if plain else None
        self.vary = len(origins) > 1 or bool(self.patterns)

    def allows(self, origin: str) -> bool:
        return origin.lower() in self.exact or any(p.match(origin) for p in self.patterns)

    def headers(self, method: str, get: Callable[[bytes], bytes | None]) -> list[tuple[bytes, bytes]]:
        origin = get(b"origin")
        if origin:
            if not self.allows(origin.decode("latin-1")):
                return _NO_HEADERS
        else:
            origin = self.default
            if origin is None:
                return _NO_HEADERS
        out = [(b"access-control-allow-origin", origin)]
        if method == "OPTIONS":
            requested = (get(b"access-control-request-method") or b"").upper()
            if requested and requested in b"GET, POST":  # flask-cors' test, on the joined string
                names = get(b"access-control-request-headers")
                if names:
                    allow = b", ".join(sorted(h.strip() for h in names.split(b",")))
                    if allow:
                        out.append((b"access-control-allow-headers", allow))
                out.append((b"access-control-allow-methods", b"GET, POST"))
        if self.vary and origin != b"*":
            out.append((b"vary", b"Origin"))
        return out


class WorkerState:
    """Worker state the app reports: ready once init() succeeded; draining after SIGTERM."""

    def __init__(self) -> None:
        self.ready = False
        self.draining = False


class App:
    """ASGI entry point for one worker."""

    def __init__(
        self,
        settings: Any,
        script: loader.Script,
        swagger: dict[str, bytes | None],
        state: WorkerState,
        busy: tuple[memoryview[float], int] | None = None,
        fast_send: bool = True,
    ) -> None:
        self.s = settings
        self.script = script
        self.run = script.run
        self.swagger = swagger
        self.state = state
        self.metrics = Metrics()
        self.auth = KeyAuth(settings.auth_keys_file, settings.primary_key, settings.secondary_key)
        # the hang watchdog's slot: a float in shared memory, the monotonic time run() started (0: idle)
        self._busy: memoryview[float] | list[float]
        self._busy, self._busy_index = busy if busy is not None else ([0.0], 0)
        self.timeout_ms = int(settings.scoring_timeout_ms)
        self.timeout_s = self.timeout_ms / 1000.0
        self.limit = int(settings.body_limit)
        self._access_log = bool(settings.access_log)
        self._write = fastsend.make_writer() if fast_send else None
        self._new_id = request_ids()
        self._in_run = False
        self._deadline = 0.0  # monotonic time at which the current run() times out
        self._alarm_at = 0.0  # monotonic time at which the pending SIGALRM fires (0: none pending)
        self._use_alarm = self.timeout_ms > 0
        if self._use_alarm:
            signal.signal(signal.SIGALRM, self._on_alarm)
        self._version = [(b"x-ms-server-version", SERVER_VERSION.encode())] if settings.version_header else []
        self._ok_head = [_JSON, _OK]  # the constant head of a successful /score answer
        self._cors = CorsPolicy(settings.cors_origins) if settings.cors_origins else None
        self._score_allow = b"GET, HEAD, OPTIONS, POST" if script.style == loader.RAWHTTP else b"GET, OPTIONS, POST"
        self.batcher: Batcher | None = None
        if script.batch:
            self.batcher = Batcher(
                self._timed_batch, int(script.batch["max_batch_size"]), float(script.batch["max_latency_ms"])
            )

    # -- ASGI ---------------------------------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            start = time.perf_counter()
            metrics = self.metrics
            metrics.in_flight += 1
            status = 500
            try:
                status = await self.handle(scope, receive, send)
            finally:
                metrics.in_flight -= 1
                path = scope["path"]
                elapsed = time.perf_counter() - start
                metrics.observe(_ROUTES.get(path, "other"), status, elapsed)
                if self._access_log:
                    access.info("%s %s %d %.3fms", scope["method"], path, status, elapsed * 1000)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def handle(self, scope: dict, receive: Receive, send: Send) -> int:
        """Answer one request; returns the status (499 when the client left mid-body)."""
        path, method = scope["path"], scope["method"]
        # one C-level pass over the headers; like the loop it replaces, the last of repeated headers wins
        hdrs = dict(scope["headers"])
        get = hdrs.get
        rid = get(b"x-request-id")
        cid = get(b"x-ms-client-request-id")
        legacy = get(b"x-ms-request-id")
        trace = get(b"traceid")
        value = get(b"content-length")
        clen = int(value) if value is not None and value.isdigit() else -1
        ids: list[tuple[bytes, bytes]] = []
        cors: list[tuple[bytes, bytes]] = _NO_HEADERS
        try:
            if path == "/score":
                if method not in ("POST", "GET", "OPTIONS", "HEAD"):
                    raise errors.method_not_allowed(self._score_allow)
            elif path in _ROUTES:
                if method not in ("GET", "HEAD", "OPTIONS"):
                    raise errors.method_not_allowed(_ALLOW_OTHER)
            else:
                raise errors.not_found()
            if self._cors is not None:  # like flask-cors on the reference's blueprint: every route it has
                cors = self._cors.headers(method, get)
            if (
                self.auth.enabled
                and path != "/"
                and not path.startswith("/health/")
                and not self.auth.check(get(b"authorization"))
            ):
                raise errors.unauthorized()
            # request ids (the reference's blueprint hooks)
            if rid is None:
                rid = self._new_id()
            elif len(rid) > 100:
                raise errors.request_id_too_long()
            ids.append((b"x-request-id", rid))
            # the reference's rule: x-ms-request-id echoes the legacy header when sent, else the client id,
            # else x-request-id; x-ms-client-request-id echoes the client id, else the legacy header
            client = cid if cid is not None else legacy
            if (client is not None and len(client) > 100) or (legacy is not None and len(legacy) > 100):
                raise errors.client_id_too_long()
            ids.append((b"x-ms-request-id", legacy if legacy is not None else client if client is not None else rid))
            if client is not None:
                ids.append((b"x-ms-client-request-id", client))
            if trace is not None:
                ids.append((b"traceid", trace))  # uvicorn lower-cases header names anyway
            if legacy is not None and cid is None:
                log.warning("x-ms-request-id is deprecated; send x-ms-client-request-id")
            if path == "/score":
                token = logs.request_id.set(rid.decode("latin-1"))
                try:
                    return await self.score(scope, receive, send, method, ids, cors, get(b"content-type"), clen)
                finally:
                    logs.request_id.reset(token)
            return await self.other(scope, send, path, method, ids + cors if cors else ids)
        except HTTPError as exc:
            return await self.error(send, exc, ids, cors)
        except ClientGone:
            return 499

    async def respond(
        self, send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, ours: bool = True
    ) -> int:
        """Send a complete response; ``ours``: the headers are the server's (lower-case names, no framing)."""
        headers.append((b"content-length", b"%d" % len(body)))
        if self.state.draining:
            headers.append(_CLOSE)
        if ours and self._write is not None and self._write(send, status, headers, body):
            return status
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return status

    async def error(
        self, send: Send, exc: HTTPError, ids: list[tuple[bytes, bytes]], cors: list[tuple[bytes, bytes]] = _NO_HEADERS
    ) -> int:
        headers = [_JSON, _FAILED if exc.run_failed else _OK]
        if exc.with_ids or exc.status == 431:
            headers += self._version
        if exc.with_ids:
            headers += ids
        if exc.headers:
            headers += exc.headers
        if exc.close:
            headers.append(_CLOSE)
        if cors:
            headers += cors
        return await self.respond(send, exc.status, headers, exc.body())

    # -- routes other than /score -------------------------------------------------------------------
    async def other(self, scope: dict, send: Send, path: str, method: str, ids: list) -> int:
        if method == "OPTIONS":
            allow = b"HEAD, GET, OPTIONS"
            return await self.respond(send, 200, [_HTML, (b"allow", allow), *self._version, *ids], b"")
        if path == "/":
            return await self.respond(send, 200, [_HTML, *self._version, *ids], b"Healthy")
        if path == "/swagger.json":
            return await self.swagger_doc(scope, send, ids)
        if path == "/health/live":
            return await self.respond(send, 200, [_JSON, *ids], b'{"status": "alive"}')
        if path == "/health/ready":
            if self.state.ready and not self.state.draining:
                return await self.respond(send, 200, [_JSON, *ids], b'{"status": "ready"}')
            raise errors.not_ready()
        return await self.respond(send, 200, [_TEXT], self.metrics.render())  # /metrics

    async def swagger_doc(self, scope: dict, send: Send, ids: list) -> int:
        version = "2"
        # like Werkzeug's args.get: the first value, blank included (?version= and ?version are 404s)
        for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            if key == "version":
                version = value
                break
        key = {"2": "2", "2.0": "2", "3": "3", "3.0": "3", "3.1": "3.1"}.get(version)
        supported = ", ".join(sorted(k for k, v in self.swagger.items() if v is not None))
        if key is None:
            raise errors.swagger_invalid(version, supported)
        doc = self.swagger.get(key)
        if doc is None:
            raise errors.swagger_unsupported(version, supported)
        return await self.respond(send, 200, [_JSON, _OK, *self._version, *ids], doc)

    # -- /score ---------------------------------------------------------------------------------------
    async def read_body(self, receive: Receive, clen: int) -> bytes:
        if clen > self.limit:
            raise errors.body_too_large(self.limit)
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        body = message.get("body", b"")
        if len(body) > self.limit:
            raise errors.body_too_large(self.limit)
        if not message.get("more_body"):
            return body
        parts, size = [body], len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise errors.body_too_large(self.limit)
            parts.append(chunk)
            if not message.get("more_body"):
                return b"".join(parts)

    async def score(
        self,
        scope: dict,
        receive: Receive,
        send: Send,
        method: str,
        ids: list,
        cors: list,
        ctype: bytes | None,
        clen: int,
    ) -> int:
        body = await self.read_body(receive, clen) if method == "POST" or clen > 0 else b""
        style = self.script.style
        if method == "HEAD" and style != loader.RAWHTTP:  # Flask routed it (GET implies HEAD); run() is not called
            raise errors.score_method_not_allowed()
        if method == "OPTIONS" and style != loader.RAWHTTP:
            return await self.respond(send, 200, [_HTML, _OK, *self._version, *ids, *cors], b"")
        if style == loader.PLAIN:
            if method == "GET":
                query = query_dict(scope.get("query_string", b""))
                try:
                    arg: Any = jsonio.encode_str(query)
                except RecursionError:  # parsed, but deeper than the encoder goes
                    raise errors.too_deep() from None
            elif ctype is not None and ctype.split(b";", 1)[0].strip().lower() in _FORM_TYPES:
                arg = ""  # the reference's quirk: Werkzeug consumed the form body
            else:
                try:
                    arg = body.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise errors.not_utf8(exc) from None
            if self.batcher is not None:
                try:
                    t0 = time.perf_counter()
                    result = await self.batcher.submit(arg)
                    elapsed = time.perf_counter() - t0
                except ScoringTimeout:
                    raise self._run_error(ScoringTimeout()) from None
                except Exception as exc:  # noqa: BLE001
                    raise self._run_error(exc) from None
                return await self.result(send, result, elapsed, ids, cors)
            args: tuple = (arg,)
            kwargs: dict[str, Any] = {}
        elif style == loader.SCHEMA:
            args, kwargs = (), self.schema_kwargs(scope, method, ctype, body)
        else:
            args, kwargs = (AMLRequest(scope, body),), {}
        if self.script.wants_headers:
            kwargs["request_headers"] = header_dict(scope["headers"])
        result, elapsed = self.call(args, kwargs)
        return await self.result(send, result, elapsed, ids, cors)

    def schema_kwargs(self, scope: dict, method: str, ctype: bytes | None, body: bytes) -> dict[str, Any]:
        """Map the JSON body (or query) onto ``run``'s parameters, with the reference's 400/415 answers."""
        if method == "GET":
            data: Any = query_dict(scope.get("query_string", b""))
        else:
            mt = (ctype or b"").split(b";", 1)[0].strip().lower()
            if not (mt == b"application/json" or (mt.startswith(b"application/") and mt.endswith(b"+json"))):
                raise errors.expects_json()
            if not body:
                raise errors.empty_body()
            try:
                data = jsonio.loads(body)
            except ValueError as exc:
                raise errors.bad_json(exc) from None
            if not isinstance(data, dict):
                raise errors.not_a_dict()
        kwargs = {}
        for param in self.script.params:
            if param.name in data:
                kwargs[param.name] = data[param.name]
            elif param.default is param.empty:
                raise errors.missing_param(param.name)
            else:  # passed explicitly: inference-schema's decorator looks for every parameter by name
                kwargs[param.name] = param.default
        return kwargs

    def _on_alarm(self, signum: int, frame: Any) -> None:
        # The timer is armed lazily: one pending SIGALRM may belong to an earlier run() (see _timed), so
        # check the current run()'s deadline and, when it is still ahead, re-arm for what is left.
        self._alarm_at = 0.0
        if not self._in_run:
            return
        left = self._deadline - time.monotonic()
        if left > 0.0005:
            self._alarm_at = self._deadline
            signal.setitimer(signal.ITIMER_REAL, left)
            return
        self._in_run = False
        raise ScoringTimeout()

    def call(self, args: tuple, kwargs: dict[str, Any]) -> tuple[Any, float]:
        """Call ``run()`` inline under the scoring timeout; HTTPError on failure."""
        t0 = time.perf_counter()
        try:
            return self._timed(self.run, args, kwargs), time.perf_counter() - t0
        except ScoringTimeout:
            raise self._run_error(ScoringTimeout()) from None
        except Exception as exc:  # noqa: BLE001 - user code
            raise self._run_error(exc) from None
        finally:
            self.metrics.run_time.observe(time.perf_counter() - t0)

    def _timed(self, func: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
        """Call ``func`` with the scoring timeout armed and the hang-watchdog slot set.

        No syscall per call: a SIGALRM already pending fires no later than this call's deadline (it was
        armed for an earlier, earlier-ending call), so it is left alone and the handler re-arms it for
        the rest; the timer is not disarmed after the call (the handler ignores it when idle).
        """
        now = time.monotonic()
        self._busy[self._busy_index] = now
        if self._use_alarm:
            self._deadline = now + self.timeout_s
            # none pending, or it should have fired long ago (user code cancelled or replaced the timer)
            if not self._alarm_at or now > self._alarm_at + 1.0:
                self._alarm_at = self._deadline
                signal.setitimer(signal.ITIMER_REAL, self.timeout_s)
        self._in_run = True
        try:
            return func(*args, **kwargs)
        finally:
            self._in_run = False
            self._busy[self._busy_index] = 0.0

    def _timed_batch(self, inputs: list[Any]) -> list[Any]:
        self.metrics.batch_sizes.observe(len(inputs))
        t0 = time.perf_counter()
        try:
            return list(self._timed(self.run, (inputs,), {}))
        finally:
            self.metrics.run_time.observe(time.perf_counter() - t0)

    def _run_error(self, exc: BaseException) -> HTTPError:
        if isinstance(exc, ScoringTimeout):
            self.metrics.timeouts += 1
            return errors.scoring_timeout(self.timeout_ms)
        self.metrics.run_failures += 1
        log.error("Encountered Exception in run()", exc_info=exc)
        return errors.run_failed(f"{type(exc).__name__}: {exc}" if self.s.detailed_errors else None)

    async def result(self, send: Send, value: Any, elapsed: float, ids: list, cors: list) -> int:
        """Serialize what ``run()`` returned (the reference's rules, section 1.4)."""
        exec_ms = (b"x-ms-run-fn-exec-ms", b"%.3f" % (elapsed * 1000))
        if type(value) not in _PLAIN_TYPES and is_response(value):
            try:
                status, headers, body, failed = response_parts(value)
            except Exception as exc:
                log.error("Could not read the response run() returned", exc_info=exc)
                raise errors.internal() from None
            headers.insert(1, _FAILED if failed else _OK)
            return await self.respond(send, status, [*headers, exec_ms, *self._version, *ids, *cors], body, ours=False)
        try:
            body = jsonio.dumps({} if value is None else value)
        except (TypeError, ValueError, RecursionError) as exc:
            log.error("run() returned a value that is not JSON serializable", exc_info=exc)
            raise errors.internal(f"{type(exc).__name__}: {exc}" if self.s.detailed_errors else None) from None
        headers = self._ok_head + [exec_ms]
        headers += self._version
        headers += ids
        if cors:
            headers += cors
        return await self.respond(send, 200, headers, body)
