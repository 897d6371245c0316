"""The service's own errors, each naming the HTTP status it answers with, and the one place they become responses.

Modules raise these with a message for the user and routers let them through; `install(app)` (called
by service.main) registers the handlers that turn them, a client gone midway, and anything unexpected
into responses.

    >>> from fastapi import FastAPI
    >>> from fastapi.testclient import TestClient
    >>> app = FastAPI()
    >>> install(app)
    >>> @app.get("/train/{job_id}")
    ... def read_job(job_id: str):
    ...     raise JobNotFound(f"no job {job_id!r}")
    >>> response = TestClient(app).get("/train/abc")
    >>> response.status_code, response.json()
    (404, {'detail': "no job 'abc'"})
"""

from __future__ import annotations

import logging
from typing import ClassVar

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

log = logging.getLogger(__name__)

CLIENT_CLOSED = 499  # nginx's "client closed request": counted in /metrics, never sent


class ServiceError(Exception):
    """Base of the errors a request can meet: answered with `status`, `headers` and {"detail": message}."""

    status = 500
    headers: ClassVar[dict[str, str]] = {}

    @property
    def detail(self) -> str:
        return str(self)


class Invalid(ServiceError, ValueError):
    """A request field the service cannot accept (422), answered as FastAPI's own validation errors are.

    `field` is its location, e.g. ("query", "format"): given when raised, or fixed by a subclass.
    """

    status = 422
    field: tuple[str, str]

    def __init__(self, message: str, field: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        if field is not None:
            self.field = field


class ModelNotFound(ServiceError, LookupError):
    """The request names a model or version that is not loaded (404)."""

    status = 404


class NotReady(ServiceError, RuntimeError):
    """No model to serve yet: still loading, or the default model is missing (503)."""

    status = 503
    headers = {"Retry-After": "5"}  # seconds: about a model's load and warm-up


class QueueFull(ServiceError, RuntimeError):
    """Accepting the request would put more than queue_limit images in the queue (503)."""

    status = 503
    headers = {"Retry-After": "1"}

    @property
    def detail(self) -> str:
        return f"busy, try again shortly ({self})"


class ConditionError(Invalid):
    """The model cannot be asked for this condition; the message says what it can be asked for (422)."""

    field = ("query", "grains")  # the one condition a request sets


class JobNotFound(ServiceError, LookupError):
    """No job with that id (404)."""

    status = 404


class JobConflict(ServiceError, RuntimeError):
    """The job's state does not allow the request, or this process does not run jobs (409)."""

    status = 409


class ConfigRejected(Invalid):
    """The training CLI refused the preset or a config key (422); the message names it."""

    field = ("body", "config")


class DatasetNotFound(ServiceError, LookupError):
    """No dataset with that id (404)."""

    status = 404


class DatasetRejected(Invalid):
    """The upload is not a usable dataset (422); the message says why."""

    field = ("body", "file")


class UploadTooLarge(ServiceError):
    """The upload is above max_upload_bytes (413)."""

    status = 413


class UploadStalled(ServiceError):
    """The upload's body stopped arriving for upload_chunk_timeout_s (408)."""

    status = 408
    headers = {"Connection": "close"}  # the rest of the body may still come: drop it with the connection


def install(app: FastAPI) -> None:
    """Register the handlers: the service's errors, a client gone midway, anything else (a logged 500)."""
    app.add_exception_handler(Invalid, _invalid)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(ClientDisconnect, _client_disconnected)
    app.add_exception_handler(Exception, _internal_error)


async def _service_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ServiceError)
    return JSONResponse({"detail": error.detail}, status_code=error.status, headers=error.headers)


async def _invalid(request: Request, error: Exception) -> Response:
    assert isinstance(error, Invalid)
    location, name = error.field
    detail = {"type": "value_error", "loc": (location, name), "msg": str(error), "input": None}
    return await request_validation_exception_handler(request, RequestValidationError([detail]))


async def _client_disconnected(request: Request, error: Exception) -> Response:
    # Starlette raises ClientDisconnect when a request's body stops because the connection closed (an
    # upload cancelled halfway, a client killed): not a server error, so logged at info, not counted as 500.
    log.info("client closed the connection during %s %s", request.method, request.url.path)
    return Response(status_code=CLIENT_CLOSED)


async def _internal_error(request: Request, error: Exception) -> Response:
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=error)
    return JSONResponse({"detail": "internal error (logged)"}, status_code=500)
