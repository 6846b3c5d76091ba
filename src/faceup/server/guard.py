"""What a request must pass before any of its body is stored: the API key, and
the upload limit counted on the bytes as they arrive.

A plain ASGI middleware, because the checks must happen before Starlette's form
parser spools the body to a temporary file: a `Transfer-Encoding: chunked`
upload has no Content-Length to refuse up front, so the body is counted as it
is received and the request is cut off as soon as it passes the limit.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Room for the multipart framing and the small form fields around the files.
FORM_OVERHEAD = 64 * 1024


class UploadGuard:
    """Refuse a POST without the right X-API-Key (401) before reading its body,
    one that announces more than `max_body` bytes (413) before reading it, and
    one whose body passes `max_body` while it streams in (413, cut off there)."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int, api_key: str | None = None):
        self.app = app
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

        async def counted() -> Message:
            nonlocal received
            message = await receive()
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


def content_disposition(filename: str) -> str:
    """An attachment header for any file name (RFC 6266): a Latin-1 stand-in in
    `filename`, the real name percent-encoded as UTF-8 in `filename*`."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header
