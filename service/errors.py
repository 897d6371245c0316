"""The service's own errors: each names the HTTP status a request that meets it gets.

Modules raise these with a message for the user; the application turns them into responses in one
place (service/main.py), so routers do not catch them.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors a request can meet; `status` is the HTTP status it answers with."""

    status = 500


class ModelNotFound(ServiceError, LookupError):
    """The request names a model or version that is not loaded (404)."""

    status = 404


class NotReady(ServiceError, RuntimeError):
    """No model to serve yet: still loading, or the default model is missing (503)."""

    status = 503


class QueueFull(ServiceError, RuntimeError):
    """Accepting the request would put more than queue_limit images in the queue (503)."""

    status = 503


class ConditionError(ServiceError, ValueError):
    """The model cannot be asked for this condition; the message says what it can be asked for (422)."""

    status = 422


class JobNotFound(ServiceError, LookupError):
    """No job with that id (404)."""

    status = 404


class JobConflict(ServiceError, RuntimeError):
    """The job's state does not allow the request, or this process does not run jobs (409)."""

    status = 409


class ConfigRejected(ServiceError, ValueError):
    """The training CLI refused the preset or a config key (422); the message names it."""

    status = 422


class DatasetNotFound(ServiceError, LookupError):
    """No dataset with that id (404)."""

    status = 404


class DatasetRejected(ServiceError, ValueError):
    """The upload is not a usable dataset (422); the message says why."""

    status = 422
