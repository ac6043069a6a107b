"""The service's failures: each request gets an id, and every failure is logged with it.

A log line names the request and the exception's type and frames, never the exception's message
or a text: a message may quote what a client sent (a validation error quotes its input).
"""

from __future__ import annotations

import logging
import traceback
import uuid

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("pipeline.serving")

HEADER = "X-Request-ID"
INTERNAL = "internal error; see the server's log"  # the whole answer of a 500: no details


def log_failure(what: str, err: BaseException) -> None:
    """Log that `what` failed with `err`: its type and the frames it went through (file, line,
    function), without its message or the source lines (a test's may quote a text)."""
    frames = traceback.extract_tb(err.__traceback__)
    where = "".join(f"\n  {f.filename}:{f.lineno} in {f.name}" for f in frames)
    log.error("%s failed: %s%s", what, type(err).__name__, where)


class RequestIds:
    """ASGI middleware: each HTTP request gets an id (`request.state.request_id`, and the
    X-Request-ID header of its answer); an error no handler took is logged with that id and
    answered with a 500 that has no details, so nothing a client sent reaches the log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                header = (HEADER.lower().encode(), request_id.encode())
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as err:
            log_failure(f"request {request_id}", err)
            if not started:  # else the answer is cut short: the client sees the connection close
                await JSONResponse({"error": INTERNAL}, 500)(scope, receive, send_with_id)
