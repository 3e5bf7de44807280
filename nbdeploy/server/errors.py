"""Every response the server itself makes on error: one place mapping a condition to status and body."""

from __future__ import annotations

from . import jsonio


class HTTPError(Exception):
    """An answer the server makes instead of ``run()``'s; ``with_ids`` says if request-id headers go along."""

    def __init__(
        self,
        status: int,
        message: str,
        run_failed: bool = False,
        with_ids: bool = True,
        close: bool = False,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.run_failed = run_failed
        self.with_ids = with_ids
        self.close = close
        self.headers = headers

    def body(self) -> bytes:
        return jsonio.dumps({"message": self.message})


NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please check "
    "your spelling and try again."
)


def not_found() -> HTTPError:
    return HTTPError(404, NOT_FOUND, with_ids=False)


def method_not_allowed(allow: bytes) -> HTTPError:
    """405 with the ``Allow`` header RFC 9110 asks for (the reference sends none)."""
    return HTTPError(
        405, "The method is not allowed for the requested URL.", with_ids=False, headers=((b"allow", allow),)
    )


def unauthorized() -> HTTPError:
    return HTTPError(
        401, "Authorization failed: send 'Authorization: Bearer <key>' with a valid service key.", with_ids=False
    )


def request_id_too_long() -> HTTPError:
    return HTTPError(431, "x-request-id must not exceed 100 characters", with_ids=False)


def client_id_too_long() -> HTTPError:
    return HTTPError(431, "x-ms-request-id and x-ms-client-request-id must not exceed 100 characters")


def body_too_large(limit: int) -> HTTPError:
    return HTTPError(413, f"Request body exceeds the limit of {limit} bytes.", close=True)


def not_utf8(exc: Exception) -> HTTPError:
    return HTTPError(400, f"Input cannot be decoded as UTF-8: {exc}")


def too_deep() -> HTTPError:
    """JSON nested deeper than the parser (or the encoder) goes."""
    return HTTPError(400, "JSON input is nested too deeply.")


def expects_json() -> HTTPError:
    return HTTPError(415, "Expects Content-Type to be application/json")


def empty_body() -> HTTPError:
    return HTTPError(400, "POST body is empty. Expecting a JSON dictionary.")


def bad_json(exc: Exception) -> HTTPError:
    return HTTPError(400, f"POST body could not be decoded as JSON: {exc}")


def not_a_dict() -> HTTPError:
    return HTTPError(400, "POST body should be a JSON dictionary.")


def missing_param(name: str) -> HTTPError:
    return HTTPError(400, f"A value is not provided for the '{name}' parameter.")


def run_failed(detail: str | None = None) -> HTTPError:
    msg = "An unexpected error occurred in scoring script. Check the logs for more info."
    return HTTPError(500, f"{msg} {detail}" if detail else msg, run_failed=True)


def internal(detail: str | None = None) -> HTTPError:
    msg = "An unexpected internal error occurred. Check the logs for more info."
    return HTTPError(500, f"{msg} {detail}" if detail else msg)


def scoring_timeout(ms: int) -> HTTPError:
    return HTTPError(500, f"Scoring timeout after {ms} ms", run_failed=True)


def swagger_invalid(version: str, supported: str = "2, 3, 3.1") -> HTTPError:
    return HTTPError(404, f"Swagger version [{version}] is not valid. Supported versions: [{supported}].")


def swagger_unsupported(version: str, supported: str) -> HTTPError:
    return HTTPError(
        404,
        f"Swagger version [{version}] is not supported for the scoring script. "
        f"Supported swagger versions: [{supported}].",
    )


def score_method_not_allowed() -> HTTPError:
    """HEAD on ``/score`` (Flask routes it with GET) for a script that is not ``@rawhttp``."""
    return HTTPError(405, "Method not allowed", headers=((b"allow", b"GET, OPTIONS, POST"),))


def not_ready() -> HTTPError:
    return HTTPError(503, "Not ready")
