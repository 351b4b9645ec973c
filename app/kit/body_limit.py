"""One limit on request bodies (MAX_BODY_BYTES) for every route, before anything is parsed
or anyone is authenticated.

Pure ASGI, so it costs a header scan per request. A declared Content-Length over the limit
is refused at once, without reading the body. A body without one (chunked) is counted as
the app pulls it, and refused as soon as it goes over: the app never holds more than the
limit. A declared length within the limit is left alone, since the HTTP server frames the
body by it (it can't deliver more).

The answer is the project's JSON error, or Payletter's `{"code", "message"}` on the
callback URL (Payletter reads that shape). Starlette's own `max_body_size` answers plain
text, and only once the app starts reading.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge
from app.payments.endpoints import callback_answer

CALLBACK_PATH = "/payletter/callback"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.message = f"body larger than {limit} bytes"

    def refusal(self, scope: Scope) -> Response:
        # No "Connection: close": a client still sending would often get a reset instead
        # of this answer; the server discards the rest unbuffered (httptools) or closes (h11).
        if scope["path"] == CALLBACK_PATH:
            return callback_answer(413, self.message)  # the shape Payletter reads
        error = PayloadTooLarge(self.message)
        return JSONResponse(error.to_body(), status_code=error.status_code)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                # Unreadable counts as too large (h11 and httptools refuse it anyway);
                # beyond 18 digits it is, and int() would refuse 4,300 of them.
                if not value.isdigit() or len(value) > 18 or int(value) > self.limit:
                    await self.refusal(scope)(scope, receive, send)
                    return
                await self.app(scope, receive, send)
                return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = refused = answered = False

        async def counting_receive() -> Message:
            nonlocal received, refused, answered
            if refused:
                raise PayloadTooLarge(self.message)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    if not started:
                        await self.refusal(scope)(scope, receive, send)
                        answered = True
                    # The app stops reading here; its own answer to that is dropped below.
                    raise PayloadTooLarge(self.message)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except PayloadTooLarge:
            if not answered:
                raise
