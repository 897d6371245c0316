"""A client that goes away in the middle of its request is not a server error.

    from starlette.requests import ClientDisconnect
    app.add_exception_handler(ClientDisconnect, client_disconnected)   # in service.main

Starlette raises ClientDisconnect when the body of a request stops because the connection closed (an
upload cancelled halfway, a client killed). Without a handler it would be logged as an unhandled error
and counted as a 500; it is logged at info and counted under CLIENT_CLOSED (nginx's "client closed
request"), a status no client ever receives.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger(__name__)

CLIENT_CLOSED = 499


async def client_disconnected(request: Request, error: Exception) -> Response:
    log.info("client closed the connection during %s %s", request.method, request.url.path)
    return Response(status_code=CLIENT_CLOSED)
