"""What a request must pass before any of its body is stored: the API key, and
the upload limit counted on the bytes as they arrive.

A plain ASGI middleware, because the checks must happen before Starlette's form
parser spools the body to a temporary file: a `Transfer-Encoding: chunked`
upload has no Content-Length to refuse up front, so the body is counted as it
is received and the request is cut off as soon as it passes the limit.
"""

from __future__ import annotations

import hmac
import math
import time
from urllib.parse import quote

import anyio
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Room for the multipart framing and the small form fields around the files.
FORM_OVERHEAD = 64 * 1024


class UploadGuard:
    """Refuse a POST without the right X-API-Key (401) before reading its body,
    one that announces more than `max_body` bytes (413) before reading it, and
    one whose body passes `max_body` while it streams in (413, cut off there)."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int, api_key: str | None = None,
                 body_timeout: float = math.inf):
        self.app = app
        self.body_timeout = body_timeout
        self.max_upload_bytes = max_upload_bytes
        self.max_body = max_upload_bytes + FORM_OVERHEAD
        self.api_key = api_key.encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self.api_key is not None and not hmac.compare_digest(headers.get(b"x-api-key", b""), self.api_key):
            await _refuse(401, "missing or wrong API key: send it in the X-API-Key header", scope, receive, send)
            return
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            await _refuse(413, f"upload of {int(length):,} bytes is above the limit of {self.max_upload_bytes:,} bytes",
                          scope, receive, send)
            return
        received = 0
        deadline = time.monotonic() + self.body_timeout

        async def counted() -> Message:
            nonlocal received
            try:
                with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, f"the request's body took longer than {self.body_timeout:g} s to "
                                         "arrive; send it again") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    # raised inside the form parser: FastAPI passes an HTTPException
                    # through, and the app's handler answers it as JSON
                    raise HTTPException(413, f"upload is above the limit of {self.max_upload_bytes:,} bytes")
            return message

        await self.app(scope, counted, send)


async def _refuse(status: int, message: str, scope: Scope, receive: Receive, send: Send) -> None:
    # Connection: close, so the client's unread body is not taken for the next request.
    await JSONResponse({"error": message}, status_code=status, headers={"Connection": "close"})(scope, receive, send)


class TimedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol (h11) with a deadline for each request's
    headers: a connection that has not sent a whole request line and headers
    within `header_timeout` seconds of opening (or of its last answer) is
    closed, so slow clients cannot hold the server's connections. The deadline
    is FACEUP_HEADER_TIMEOUT (Settings.header_timeout), read once."""

    header_timeout: float | None = None
    _header_timer = None
    _armed_for = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if TimedH11Protocol.header_timeout is None:
            from faceup.settings import Settings

            TimedH11Protocol.header_timeout = Settings().header_timeout
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._armed_for = self.cycle
        self._header_timer = self.loop.call_later(TimedH11Protocol.header_timeout, self._too_slow)

    def _too_slow(self) -> None:
        self._header_timer = None
        waiting = self.cycle is self._armed_for and (self.cycle is None or self.cycle.response_complete)
        if waiting and not self.transport.is_closing():
            self.transport.close()


def content_disposition(filename: str) -> str:
    """An attachment header for any file name (RFC 6266): a Latin-1 stand-in in
    `filename`, the real name percent-encoded as UTF-8 in `filename*`."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header
