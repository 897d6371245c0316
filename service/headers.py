"""Security and caching headers every response gets, in one ASGI middleware.

    >>> from fastapi import FastAPI
    >>> from service.headers import SecurityHeaders
    >>> app = FastAPI()
    >>> app.add_middleware(SecurityHeaders)

- `X-Content-Type-Options: nosniff` on everything: a browser never guesses a type we did not send.
- HTML without its own Content-Security-Policy gets DEFAULT_CSP (pages that need more set their own).
- `POST /generate` answers carry a Cache-Control that matches their determinism: the same (model,
  version, seed) is the same bytes for a precision, so a request naming all three is immutable; a seed
  without model and version can change when a new version is loaded or activated (revalidate); without
  a seed the images are random (never stored).
The uvicorn `Server` banner is turned off where uvicorn runs (service/__main__.py).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
GENERATED_PATH = "/generate"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, no-cache"
NO_STORE = "no-store"


def generated_cache_control(query_string: bytes) -> str:
    """Cache-Control of a successful /generate answer to this query."""
    query = parse_qs(query_string.decode("latin-1"))
    if "seed" not in query:
        return NO_STORE
    return IMMUTABLE if "model" in query and "version" in query else REVALIDATE


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if headers.get("content-type", "").startswith("text/html") and "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = DEFAULT_CSP
                if scope["path"] == GENERATED_PATH and "cache-control" not in headers:
                    ok = 200 <= message["status"] < 300
                    headers["Cache-Control"] = generated_cache_control(scope["query_string"]) if ok else NO_STORE
            await send(message)

        await self.app(scope, receive, send_with_headers)
