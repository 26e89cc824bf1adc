"""A bound on request bodies for the HTTP API, enforced before the body is read.

An unauthenticated 300 MB POST once took the API to 1 GB of memory: FastAPI reads a whole
body before it checks the token. ``BodyLimit`` answers 413 at once when the declared
``Content-Length`` is over the limit, and counts the bytes of a body sent without one
(chunked), stopping at the first chunk past the limit.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 1024 * 1024  # 1 MiB: an order or a payment is a few hundred bytes


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` past the limit; FastAPI passes an HTTPException on as it is."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413, unread."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = JSONResponse({"detail": f"the request body is larger than {self.limit} bytes"}, 413,
                              headers={"Connection": "close"})
        await answer(scope, receive, send)
